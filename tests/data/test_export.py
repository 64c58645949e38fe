import filecmp
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

import occ_hf  # noqa: F401
from occ_hf.cli import main
from occ_hf.data.export import export_dataset
from occ_hf.obman import generate_obman_split, read_id_list

from ..testing_utils import seed_file


def _undigested(name: str) -> str:
    """A shard's name without the content digest the export puts in it (`train-<12 hex>-00000-of-00001.parquet`)."""
    return re.sub(r"^(\w+)-[0-9a-f]{12}-", r"\1-", name)


def test_exported_parquet_loads_without_occ_hf(obman_root, views_dir, tmp_path):
    dataset_dicts = {
        name: load_dataset(
            "occ-obman-cot", name, data_dir=str(obman_root), views_dir=str(views_dir), cache_dir=str(tmp_path / "c")
        )
        for name in ("reflection", "preference", "test")
    }
    out = export_dataset(dataset_dicts, tmp_path / "occ-obman-cot", repo_id="org/occ-obman-cot")
    card = (out / "README.md").read_text()
    assert "config_name: reflection" in card and "config_name: test" in card and "hasson19_obman" in card
    assert "Built with occ-hf" in card and "github.com/occ-hf" not in card  # the project declares no URL
    # Images are embedded as bytes, not paths to files that would not travel.
    table = pq.read_table(next((out / "test").glob("test-*.parquet")))
    assert all(cell["bytes"] for cell in table.column("image").to_pylist())

    code = (
        "import sys, datasets\n"
        # By the name of a local folder (cwd is tmp_path), which plain datasets resolves after its packaged modules.
        f"ds = datasets.load_dataset('occ-obman-cot', 'preference', split='train', cache_dir={str(tmp_path)!r})\n"
        "assert 'occ_hf' not in sys.modules\n"
        "print(ds.num_rows, ds.features['label'].names[0], ds[0]['images'][0].size)\n"
    )
    # Switch off occ-hf's start-up hook, which would import occ_hf with datasets (as `trl sft` needs).
    env = {**os.environ, "OCC_HF_AUTOLOAD": "0"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path, env=env
    )
    assert result.stdout.split() == [str(dataset_dicts["preference"]["train"].num_rows), "jar", "(256,", "256)"]


def test_build_dataset_cli(obman_root, tmp_path, capsys):
    out = tmp_path / "built"
    main(
        [
            "build-dataset",
            "--obman-root",
            str(obman_root),
            "--config",
            "description,cot",
            "--out",
            str(out),
            "--max_samples",
            "4",
        ]
    )
    assert f"Wrote {out}" in capsys.readouterr().out
    assert sorted(_undigested(p.name) for p in (out / "description").iterdir()) == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
    ]
    with pytest.raises(ValueError, match="Unknown configs"):
        main(["build-dataset", "--obman-root", str(obman_root), "--config", "nonsense", "--out", str(out)])


@pytest.mark.parametrize(
    "name",
    [
        "train_Q1_10140.head20.jsonl",
        "train_Q1_Q6_10140.head40.jsonl",
        "train_Q1_Q6_Q0_4_balanced_10140.head20.jsonl",
        "train_Q1_Q6_balanced_dpo_10140.head40.jsonl",
    ],
)
def test_seed_round_trip_is_byte_identical(name, tmp_path):
    path = seed_file(name)
    ids, classes = read_id_list(path)
    generate_obman_split(tmp_path / "obman", split="train", ids=ids, classes=classes, progress=False)
    main(["seed", "import", str(path), "--obman_root", str(tmp_path / "obman"), "--out", str(tmp_path / "ds")])
    main(["seed", "export", str(tmp_path / "ds"), "--out", str(tmp_path / "back.jsonl")])
    assert filecmp.cmp(path, tmp_path / "back.jsonl", shallow=False)


def test_seed_import_names_a_missing_image(tmp_path):
    path = seed_file("train_Q1_10140.head20.jsonl")
    ids, classes = read_id_list(path)
    generate_obman_split(tmp_path / "obman", split="train", ids=ids[:-1], classes=classes[:-1], progress=False)
    with pytest.raises(Exception, match=rf"{path.name}:20: .*{ids[-1]}\.pkl"):
        main(["seed", "import", str(path), "--obman_root", str(tmp_path / "obman"), "--out", str(tmp_path / "ds")])


def test_dataset_script(obman_root, tmp_path):
    script = Path(__file__).resolve().parents[2] / "dataset_scripts" / "build_occ_obman_cot.py"
    out = tmp_path / "from-script"
    command = [sys.executable, str(script), "--obman_root", str(obman_root), "--config", "description"]
    command += ["--out", str(out), "--max_samples", "3", "--cache_dir", str(tmp_path / "cache")]
    subprocess.run(command, check=True, capture_output=True)
    rows = load_dataset(str(out), "description", split="train", cache_dir=str(tmp_path / "load"))
    assert rows["id"] == ["00000000", "00000001", "00000002"]


def test_build_dataset_pushes_to_the_hub(obman_root, tmp_path, hub_server, capsys):
    from huggingface_hub import DatasetCard

    out = tmp_path / "to-push"
    main(
        ["build-dataset", "--obman-root", str(obman_root), "--config", "reflection,preference", "--out", str(out)]
        + ["--push-to-hub", "occ/occ-obman-cot", "--cache_dir", str(tmp_path / "cache")]
    )
    assert "occ/occ-obman-cot" in capsys.readouterr().out
    pushed = hub_server.files("dataset", "occ/occ-obman-cot")
    assert {"README.md", "reflection/train-00000-of-00001.parquet", "preference/test-00000-of-00001.parquet"} <= {
        "/".join(map(_undigested, name.split("/"))) for name in pushed
    }
    card = DatasetCard.load("occ/occ-obman-cot", repo_type="dataset")
    assert [c["config_name"] for c in card.data.configs] == ["reflection", "preference"]
    rows = load_dataset("occ/occ-obman-cot", "reflection", split="test")
    local = load_dataset(str(out), "reflection", split="test", cache_dir=str(tmp_path / "local"))
    assert rows["id"] == local["id"] and rows["messages"] == local["messages"]
    assert rows.features["label"].names[:2] == ["jar", "bottle"]


def _build(obman_root, out, cache, *extra):
    main(["build-dataset", "--obman-root", str(obman_root), "--out", str(out), "--cache_dir", str(cache), *extra])


def test_build_dataset_refuses_a_non_empty_out_and_overwrite_leaves_no_stale_shard(obman_root, tmp_path):
    out, cache = tmp_path / "built", tmp_path / "cache"
    _build(obman_root, out, cache, "--config", "description,cot", "--max_samples", "4")
    # A shard an earlier build left (another shard count), which the card's glob would match.
    stale = out / "description" / "test-00001-of-00002.parquet"
    stale.write_bytes(next((out / "description").glob("test-*-00000-of-00001.parquet")).read_bytes())
    (out / ".git").mkdir()  # a cloned Hub repository: not occ-hf's to remove
    card = (out / "README.md").read_text()
    with pytest.raises(FileExistsError, match=r"built: not empty .*--overwrite"):
        _build(obman_root, out, cache, "--config", "description")
    assert stale.exists() and (out / "README.md").read_text() == card  # refused before anything was written

    _build(obman_root, out, cache, "--config", "description", "--overwrite")
    assert sorted(_undigested(p.name) for p in (out / "description").iterdir()) == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
    ]
    assert not (out / "cot").exists() and (out / ".git").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built", "cache"]  # no staging folder left
    rows = load_dataset(str(out), "description", split="test", cache_dir=str(tmp_path / "load"))
    assert rows.num_rows == 12


def test_build_dataset_refuses_max_samples_below_one(obman_root, tmp_path):
    with pytest.raises(ValueError, match="max_samples must be a whole number >= 1"):
        _build(obman_root, tmp_path / "built", tmp_path / "cache", "--config", "description", "--max_samples", "-1")
    assert not (tmp_path / "built").exists()


def test_push_deletes_shards_of_an_earlier_build(obman_root, tmp_path, hub_server):
    from huggingface_hub import HfApi

    out = tmp_path / "to-push"
    _build(obman_root, out, tmp_path / "cache", "--config", "description")
    api = HfApi()
    api.create_repo("occ/rebuilt", repo_type="dataset")
    stale = "description/train-00001-of-00002.parquet"
    api.upload_file(path_or_fileobj=b"stale", path_in_repo=stale, repo_id="occ/rebuilt", repo_type="dataset")
    _build(
        obman_root, out, tmp_path / "cache", "--config", "description", "--overwrite", "--push-to-hub", "occ/rebuilt"
    )
    pushed = hub_server.files("dataset", "occ/rebuilt")
    assert stale not in pushed
    assert "description/train-00000-of-00001.parquet" in {"/".join(map(_undigested, n.split("/"))) for n in pushed}


def test_a_rebuild_in_place_is_read_back_not_the_cache_of_the_first_build(obman_root, tmp_path):
    # datasets keys a local folder's cache by its name, its card's dataset_info and data_files patterns. The two
    # builds differ only in their `clear` flags (another clarity threshold): same rows, features and sizes, so only
    # the content digest in the patterns tells them apart.
    out, cache, load_cache = tmp_path / "built", tmp_path / "cache", str(tmp_path / "load")
    _build(obman_root, out, cache, "--config", "description", "--max_samples", "4", "--occlusion_threshold", "0.01")
    first = load_dataset(str(out), "description", split="test", cache_dir=load_cache)
    args = ("--config", "description", "--max_samples", "4", "--occlusion_threshold", "0.99", "--overwrite")
    _build(obman_root, out, cache, *args)
    again = load_dataset(str(out), "description", split="test", cache_dir=load_cache)
    assert again["messages"] == first["messages"] and not any(first["clear"])
    assert all(again["clear"]), "the second build's rows were read from the first build's cache"
