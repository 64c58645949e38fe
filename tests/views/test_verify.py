import os

import pytest

from occ_hf.views import ViewImageError, check_image_bytes, read_view_image, verify_view_image

from ..testing_utils import decompression_bomb_png
from .conftest import png_bytes


def test_a_whole_view_is_read(tmp_path):
    path = tmp_path / "v.png"
    path.write_bytes(png_bytes(0))
    assert verify_view_image(path) == (64, 64)
    assert read_view_image(path) == png_bytes(0)
    with pytest.raises(FileNotFoundError):
        read_view_image(tmp_path / "none.png")


@pytest.mark.parametrize("side", [20000, 10000])
def test_a_decompression_bomb_is_a_view_image_error(tmp_path, side):
    # PIL's DecompressionBombError is not an OSError: it escaped every handler of a bad view.
    path = tmp_path / "v.png"
    path.write_bytes(decompression_bomb_png(side, side))
    match = r"v\.png: image too large to decode .*delete it and fetch or render it again"
    with pytest.raises(ViewImageError, match=match):
        check_image_bytes(path.read_bytes(), path)
    with pytest.raises(ViewImageError, match=match):
        verify_view_image(path)
    with pytest.raises(ViewImageError, match=match):
        read_view_image(path)


def test_a_fifo_or_a_link_to_dev_zero_is_a_view_image_error(tmp_path):
    # A FIFO blocked forever; /dev/zero was read until memory ran out.
    fifo, zero = tmp_path / "fifo.png", tmp_path / "zero.png"
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    for read in (verify_view_image, read_view_image):
        with pytest.raises(ViewImageError, match=r"fifo\.png: a FIFO \(named pipe\), not a regular file"):
            read(fifo)
        with pytest.raises(ViewImageError, match=r"zero\.png: a character device, not a regular file"):
            read(zero)
