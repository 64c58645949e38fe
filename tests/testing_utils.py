"""Shared test helpers: where the seed's real files are, and skip markers for optional hardware."""

import os
from pathlib import Path

import pytest
import torch


SHARED_DIR = Path(os.environ.get("OCC_HF_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SEED_DIR = SHARED_DIR / "seed"

require_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def seed_file(name: str) -> Path:
    """Path of a real seed file; fails (not skips) when `../shared` is missing, since CI always has it."""
    path = SEED_DIR / name
    if not path.is_file():
        pytest.fail(f"{path} not found: the tests need ../shared beside the checkout (or OCC_HF_SHARED set).")
    return path
