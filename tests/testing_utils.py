"""Shared test helpers: where the seed's real files are, hostile inputs. (`@pytest.mark.gpu` skips without CUDA:
tests/conftest.py.)"""

import os
import struct
import zlib
from pathlib import Path

import pytest


SHARED_DIR = Path(os.environ.get("OCC_HF_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SEED_DIR = SHARED_DIR / "seed"


def seed_file(name: str) -> Path:
    """Path of a real seed file; fails (not skips) when `../shared` is missing, since CI always has it."""
    path = SEED_DIR / name
    if not path.is_file():
        pytest.fail(f"{path} not found: the tests need ../shared beside the checkout (or OCC_HF_SHARED set).")
    return path


def decompression_bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG of a few hundred bytes whose header claims `width x height` 1-bit grey pixels (one row of data): what PIL
    calls a decompression bomb (over `Image.MAX_IMAGE_PIXELS` it warns, over twice that it raises)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = zlib.compress(b"\x00" * (1 + (width + 7) // 8))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")
