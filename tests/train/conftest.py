import shutil

import pytest

from occ_hf.obman import generate_obman_split


@pytest.fixture(scope="session")
def recipe_workdir(tiny_dir, tmp_path_factory):
    """A folder laid out as the tiny recipes expect: `runs/tiny` (the tiny checkpoint) and `data/obman-tiny` (16
    generated train samples)."""
    workdir = tmp_path_factory.mktemp("recipe_workdir")
    shutil.copytree(tiny_dir, workdir / "runs" / "tiny")
    generate_obman_split(workdir / "data" / "obman-tiny", n=16, seed=5, split="train", progress=False)
    return workdir


@pytest.fixture
def in_recipe_workdir(recipe_workdir, tmp_path_factory, monkeypatch):
    """Runs the test inside `recipe_workdir`, with datasets' cache in a session folder (the rows are built once)."""
    import datasets

    monkeypatch.chdir(recipe_workdir)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", recipe_workdir / "hf_datasets_cache")
    return recipe_workdir
