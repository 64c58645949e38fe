import io
import os

import pytest
from PIL import Image

from occ_hf.obman import ObManFormatError
from occ_hf.obman.input_files import MAX_IMAGE_FILE_BYTES, decode_image, read_regular_file

from ..testing_utils import decompression_bomb_png


def _png(size=(8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_regular_file_is_read_whole(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(_png())
    assert read_regular_file(path, MAX_IMAGE_FILE_BYTES) == _png()
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing.png", MAX_IMAGE_FILE_BYTES)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    # Opening a FIFO for reading blocks until a writer comes: before the fix this test hung forever.
    path = tmp_path / "00000001.png"
    os.mkfifo(path)
    with pytest.raises(ObManFormatError, match=r"00000001\.png: a FIFO \(named pipe\), not a regular file"):
        read_regular_file(path, MAX_IMAGE_FILE_BYTES)


def test_a_link_to_dev_zero_is_refused(tmp_path):
    path = tmp_path / "00000001.png"
    path.symlink_to("/dev/zero")
    with pytest.raises(ObManFormatError, match=r"00000001\.png: a character device, not a regular file"):
        read_regular_file(path, MAX_IMAGE_FILE_BYTES)


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(ObManFormatError, match="a folder, not a regular file"):
        read_regular_file(tmp_path, MAX_IMAGE_FILE_BYTES)


def test_a_file_over_the_cap_is_refused_unread(tmp_path):
    path = tmp_path / "big.png"
    with open(path, "wb") as file:
        file.truncate(MAX_IMAGE_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(ObManFormatError, match=rf"big\.png: {MAX_IMAGE_FILE_BYTES + 1} bytes, more than"):
        read_regular_file(path, MAX_IMAGE_FILE_BYTES)
    with pytest.raises(ValueError, match="more than the 10 bytes"):
        read_regular_file(path, 10, error=ValueError)


def test_an_image_is_decoded_or_named(tmp_path):
    assert decode_image(_png((5, 7)), "a.png").size == (5, 7)
    assert decode_image(_png((5, 7)), "a.png", header_only=True).format == "PNG"
    with pytest.raises(ObManFormatError, match=r"a\.png: not a readable image, corrupt or truncated"):
        decode_image(_png()[:-20], "a.png")
    with pytest.raises(ObManFormatError, match=r"a\.png: not a readable image"):
        decode_image(b"<html>404</html>", "a.png", header_only=True)


@pytest.mark.parametrize("side", [20000, 10000])  # PIL raises over 2x its pixel limit, and only warns over 1x
def test_a_decompression_bomb_is_named(side):
    with pytest.raises(ObManFormatError, match=r"v\.png: image too large to decode .*delete it"):
        decode_image(decompression_bomb_png(side, side), "v.png", fix="delete it")
    with pytest.raises(ObManFormatError, match="image too large"):
        decode_image(decompression_bomb_png(side, side), "v.png", header_only=True)
