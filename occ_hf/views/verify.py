"""Checks that an image file is whole and readable (fetched files can be truncated, HTML error pages, ...).

Local files are read through `occ_hf.obman.input_files` (a regular file of at most `MAX_IMAGE_FILE_BYTES`: a FIFO
or a link to `/dev/zero` in a views folder is refused, not read forever) and decoded under PIL's pixel limit, so
a decompression bomb is a `ViewImageError` like any other unreadable view.

```python
verify_view_image("views/test/00000003_0_obman_test_rgb_00000003.jpg.png")   # raises ViewImageError if not
data = read_view_image("https://host/views/00000003_0_obman_test_rgb_00000003.jpg.png")   # bytes, checked
check_image_bytes(data, "name for the message")                               # (width, height)
```
"""

import os

from ..obman.input_files import MAX_IMAGE_FILE_BYTES, decode_image, read_regular_file


__all__ = ["ViewImageError", "check_image_bytes", "read_view_image", "verify_view_image"]


class ViewImageError(ValueError):
    """A view file is missing, empty, truncated or not an image; the message names the file."""


def check_image_bytes(data: bytes, name: str | os.PathLike) -> tuple[int, int]:
    """Verifies and fully decodes the image in `data` (as [`decode_image`] does); returns its `(width, height)`.

    Raises:
        [`ViewImageError`]: naming `name`, when `data` is not a whole image or is over PIL's pixel limit.
    """
    return decode_image(data, name, error=ViewImageError, fix="delete it and fetch or render it again").size


def _read_view_file(path: str | os.PathLike) -> bytes:
    """The bytes of a local view file: a regular file of at most `MAX_IMAGE_FILE_BYTES`, else [`ViewImageError`].

    Raises:
        `FileNotFoundError`: nothing is at `path`.
    """
    return read_regular_file(path, MAX_IMAGE_FILE_BYTES, error=ViewImageError)


def verify_view_image(path: str | os.PathLike) -> tuple[int, int]:
    """Reads and fully decodes the image file at `path`; returns its `(width, height)`.

    Raises:
        [`ViewImageError`]: naming `path`, when the file is missing or not a whole image.
    """
    try:
        data = _read_view_file(path)
    except FileNotFoundError:
        raise ViewImageError(f"{path}: view file not found.") from None
    return check_image_bytes(data, path)


def read_view_image(location: str | os.PathLike, download_config=None) -> bytes:
    """Reads a view from a local path or a URL and checks that it decodes; returns its bytes.

    Remote locations are opened through `datasets`' `xopen` (fsspec, with its retries on dropped connections and
    the Hub's authentication from `download_config`), which is how a streaming dataset reads its files.

    Args:
        location (`str` or `os.PathLike`): A path, or a URL that fsspec knows (`https://`, `hf://`, `s3://`, ...).
        download_config (`datasets.DownloadConfig`, *optional*): The download manager's, for authentication.

    Raises:
        `FileNotFoundError`: when nothing is at `location` (a 404).
        [`ViewImageError`]: naming `location`, when what is there is not a whole image, is larger than
            `MAX_IMAGE_FILE_BYTES` or, for a path, is not a regular file.
    """
    from datasets.utils.file_utils import xopen

    location = os.fspath(location)
    if "://" not in location:
        data = _read_view_file(location)
    else:
        with xopen(location, "rb", download_config=download_config) as file:
            data = file.read(MAX_IMAGE_FILE_BYTES + 1)
        if len(data) > MAX_IMAGE_FILE_BYTES:
            raise ViewImageError(
                f"{location}: more than {MAX_IMAGE_FILE_BYTES} bytes, too large for a view; is the URL right?"
            )
    check_image_bytes(data, location)
    return data
