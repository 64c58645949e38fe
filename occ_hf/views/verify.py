"""Checks that an image file is whole and readable (fetched files can be truncated, HTML error pages, ...).

```python
verify_view_image("views/test/00000003_0_obman_test_rgb_00000003.jpg.png")   # raises ViewImageError if not
data = read_view_image("https://host/views/00000003_0_obman_test_rgb_00000003.jpg.png")   # bytes, checked
check_image_bytes(data, "name for the message")                               # (width, height)
```
"""

import io
import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError


__all__ = ["ViewImageError", "check_image_bytes", "read_view_image", "verify_view_image"]


class ViewImageError(ValueError):
    """A view file is missing, empty, truncated or not an image; the message names the file."""


def check_image_bytes(data: bytes, name: str | os.PathLike) -> tuple[int, int]:
    """Fully decodes the image in `data`; returns its `(width, height)`.

    `Image.verify` alone checks the container (PNG chunk CRCs) but not that every pixel decodes, and a truncated
    file passes it; decoding with `load` catches that, so both are run.

    Raises:
        [`ViewImageError`]: naming `name`, when `data` is not a whole image.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ViewImageError(f"{name}: not a readable image ({error}); delete it and fetch it again.") from error


def verify_view_image(path: str | os.PathLike) -> tuple[int, int]:
    """Reads and fully decodes the image file at `path`; returns its `(width, height)`.

    Raises:
        [`ViewImageError`]: naming `path`, when the file is missing or not a whole image.
    """
    try:
        data = Path(path).read_bytes()
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
        [`ViewImageError`]: naming `location`, when what is there is not a whole image.
    """
    from datasets.utils.file_utils import xopen

    with xopen(os.fspath(location), "rb", download_config=download_config) as file:
        data = file.read()
    check_image_bytes(data, location)
    return data
