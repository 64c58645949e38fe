import pytest

from occ_hf.obman import ObManSplit, generate_obman_split

from .hub_server import hub_server  # noqa: F401 (a fixture, used by name)


def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.gpu` tests skip, with the reason, where torch sees no CUDA device."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marked gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny random OccInternVL checkpoint written by `init_tiny_checkpoint` (code style, staged policy)."""
    from occ_hf.models.occ_internvl.tiny_occ_internvl import TinyOccInternVLConfig, init_tiny_checkpoint

    output_dir = tmp_path_factory.mktemp("tiny")
    init_tiny_checkpoint(TinyOccInternVLConfig(output_dir=str(output_dir), seed=0))
    return output_dir


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
