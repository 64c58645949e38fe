import shutil

import pytest

from occ_hf.obman import generate_obman_split
from occ_hf.views import view_name


MISSING_VIEWS = {"00000002", "00000005"}


@pytest.fixture(scope="session")
def obman_root(tmp_path_factory):
    """A generated ObMan root with train (24) and test (12) splits."""
    root = tmp_path_factory.mktemp("obman_for_dataset")
    generate_obman_split(root, n=24, seed=11, split="train", progress=False)
    generate_obman_split(root, n=12, seed=11, split="test", progress=False)
    return root


@pytest.fixture(scope="session")
def views_dir(obman_root, tmp_path_factory):
    """3D views named as the seed names them, for every sample but `MISSING_VIEWS` (object-only renders)."""
    views = tmp_path_factory.mktemp("views")
    for split in ("train", "test"):
        for image in sorted((obman_root / split / "rgb_obj").iterdir()):
            sample_id = image.stem
            if sample_id not in MISSING_VIEWS:
                shutil.copy(image, views / view_name(sample_id, split))
    return views


@pytest.fixture
def hf_cache(tmp_path):
    return str(tmp_path / "hf_cache")
