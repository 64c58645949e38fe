"""Checks that a view file is a whole, readable image (fetched files can be truncated, HTML error pages, ...).

```python
verify_view_image("views/test/00000003_0_obman_test_rgb_00000003.jpg.png")   # raises ViewImageError if not
```
"""

import os

from PIL import Image, UnidentifiedImageError


__all__ = ["ViewImageError", "verify_view_image"]


class ViewImageError(ValueError):
    """A view file is missing, empty, truncated or not an image; the message names the file."""


def verify_view_image(path: str | os.PathLike) -> tuple[int, int]:
    """Opens and fully decodes the image at `path`; returns its `(width, height)`.

    `Image.verify` alone checks the container (PNG chunk CRCs) but not that every pixel decodes, and a truncated
    file passes it; decoding with `load` catches that, so both are run.
    """
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.load()
            return image.size
    except FileNotFoundError:
        raise ViewImageError(f"{path}: view file not found.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ViewImageError(f"{path}: not a readable image ({error}); delete it and fetch it again.") from error
