import pytest

from occ_hf.obman import ObManSplit, generate_obman_split

from .hub_server import hub_server  # noqa: F401 (a fixture, used by name)


@pytest.fixture(scope="session")
def synth_obman(tmp_path_factory):
    """A generated ObMan root with a 24-sample test split; returns (root, summary)."""
    root = tmp_path_factory.mktemp("obman")
    summary = generate_obman_split(root, n=24, seed=7, split="test", batch_size=10, progress=False)
    return root, summary


@pytest.fixture(scope="session")
def synth_split(synth_obman):
    root, summary = synth_obman
    return ObManSplit(root, "test", shapenet_root=summary.shapenet_root)
