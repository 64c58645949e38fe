"""The one place where ObMan and view files are opened: regular files only, bounded in size, images under PIL's limit.

A downloaded or extracted split can hold things that look like files and are not: a FIFO (opening it blocks until a
writer comes, so a build hangs forever), a link to `/dev/zero` (reading it never ends), or a 48 KB PNG claiming
20000 x 20000 pixels (PIL refuses it with a `DecompressionBombError`, which is not an `OSError`; below twice its
pixel limit PIL only warns, then decodes hundreds of megabytes). The ObMan reader (meta, rgb, segm) and the views
code (`occ_hf.views`) read every file through [`read_regular_file`] and decode every image through
[`decode_image`], so each of these becomes one error naming the file, of the class the caller handles (and skips
where the user asked for skips).

```python
data = read_regular_file("obman/test/segm/00000003.png", MAX_IMAGE_FILE_BYTES)   # bytes, or ObManFormatError
image = decode_image(data, "obman/test/segm/00000003.png")                      # PIL image, fully decoded
```
"""

import io
import os
import stat

from PIL import Image, UnidentifiedImageError

from .errors import ObManFormatError


__all__ = ["MAX_IMAGE_FILE_BYTES", "MAX_META_FILE_BYTES", "decode_image", "read_regular_file"]

# Largest image file read: ObMan's 256 x 256 JPEGs and PNGs are 5-100 KB and a 4K PNG view ~30 MB, so 64 MiB
# refuses only what is not an image of this kind.
MAX_IMAGE_FILE_BYTES = 64 * 2**20
# Largest meta pickle read: ObMan's are ~30 KB (MANO vertices, joints, poses); 16 MiB leaves room for richer metas.
MAX_META_FILE_BYTES = 16 * 2**20

_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def _kind_of(mode: int) -> str:
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")


def read_regular_file(path: str | os.PathLike, max_bytes: int, error: type[Exception] = ObManFormatError) -> bytes:
    """Reads the whole file at `path` if it is a regular file (links followed) of at most `max_bytes` bytes.

    The file is checked with `os.stat` before it is opened, opened with `O_NONBLOCK` (so a FIFO put in its place
    after the check cannot block either) and checked again on the open descriptor; at most `max_bytes + 1` bytes are
    ever read, so a file that grows while it is read is refused too.

    Args:
        path (`str` or `os.PathLike`): The file; named in errors.
        max_bytes (`int`): The size limit, e.g. [`MAX_IMAGE_FILE_BYTES`] or [`MAX_META_FILE_BYTES`].
        error (`type`, *optional*, defaults to [`ObManFormatError`]): The error class raised for a bad file, so
            that the caller's skip handling sees it (the views code passes `ViewImageError`).

    Raises:
        `FileNotFoundError`: nothing is at `path` (callers say what is missing).
        `error`: `path` is a FIFO, device, socket or folder, is larger than `max_bytes`, or cannot be read.
    """
    path = os.fspath(path)
    try:
        status = os.stat(path)  # follows links: a link to /dev/zero is judged as the device it points to
        if not stat.S_ISREG(status.st_mode):
            raise error(f"{path}: {_kind_of(status.st_mode)}, not a regular file; replace it with the real file.")
        _check_size(path, status.st_size, max_bytes, error)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as os_error:
        raise error(
            f"{path}: cannot be read ({os_error.strerror or os_error}); check the file and its permissions."
        ) from os_error
    with os.fdopen(fd, "rb") as file:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):  # replaced between the check and the open
            raise error(f"{path}: {_kind_of(status.st_mode)}, not a regular file; replace it with the real file.")
        data = file.read(max_bytes + 1)
    _check_size(path, len(data), max_bytes, error)
    return data


def _check_size(path: str, size: int, max_bytes: int, error: type[Exception]) -> None:
    if size > max_bytes:
        raise error(
            f"{path}: {size} bytes, more than the {max_bytes} bytes allowed for this kind of file "
            "(occ_hf.obman.input_files); is it the right file?"
        )


def decode_image(
    data: bytes,
    name: str | os.PathLike,
    error: type[Exception] = ObManFormatError,
    fix: str = "re-download or re-extract it",
    header_only: bool = False,
) -> Image.Image:
    """Opens the image in `data` under PIL's pixel limit; by default verifies and fully decodes it.

    `Image.verify` alone checks the container (PNG chunk CRCs) but not that every pixel decodes, and a truncated
    file passes it; decoding with `load` catches that, so both are run. An image over PIL's pixel limit
    (`PIL.Image.MAX_IMAGE_PIXELS`) is refused, whether PIL would raise `DecompressionBombError` or only warn (its
    `DecompressionBombWarning` is then still issued, and the refusal follows).

    Args:
        data (`bytes`): The file's content.
        name (`str` or `os.PathLike`): The file or URL, named in errors.
        error (`type`, *optional*, defaults to [`ObManFormatError`]): The error class raised.
        fix (`str`, *optional*, defaults to `"re-download or re-extract it"`): What the message tells the user to do.
        header_only (`bool`, *optional*, defaults to `False`): Read only the header (size, mode, format): cheap,
            catches an empty file, an HTML page or a bomb, but not a truncated image.

    Raises:
        `error`: naming `name`, when `data` is not a whole image or is too large.
    """
    try:
        image = Image.open(io.BytesIO(data))
        # Between the limit and twice it PIL only warns, then decodes. Refusing here, rather than turning the warning
        # into an error with `warnings.catch_warnings` (not thread-safe: views are read by a pool of threads), keeps
        # the process's warning filters as they were.
        _check_pixels(image.width * image.height)
        if not header_only:
            image.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
    except Image.DecompressionBombError as bomb:
        raise error(f"{name}: image too large to decode ({bomb}); it is not an ObMan-sized image, so {fix}.") from bomb
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as bad:
        raise error(f"{name}: not a readable image, corrupt or truncated ({bad}); {fix}.") from bad
    return image


def _check_pixels(pixels: int) -> None:
    if Image.MAX_IMAGE_PIXELS is not None and pixels > Image.MAX_IMAGE_PIXELS:
        raise Image.DecompressionBombError(
            f"Image size ({pixels} pixels) exceeds limit of {Image.MAX_IMAGE_PIXELS} pixels, could be decompression "
            "bomb DOS attack"
        )
