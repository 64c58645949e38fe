"""Writing a folder of files that belong together: staged beside the destination, moved in once complete.

The dataset export (`occ_hf.data.export`: parquet shards and a card) and the checkpoint converter
(`occ_hf.models.occ_internvl.convert_occ_internvl`: weights, configs, a processor) each write a whole folder whose
files must agree with one another. Both write into a [`staging_folder`], a temporary folder beside the destination
(on the same file system, so that moving out of it is renaming), and call [`move_into_place`] once the new contents
are complete. A failure before that leaves the destination as it was, and the staging folder is removed whatever
happens.

```python
with staging_folder(out_dir) as staging:
    build = staging / "build"
    write_build(build)
    move_into_place(build, out_dir, previous=files_of_the_last_build(out_dir))
```
"""

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


__all__ = ["move_into_place", "staging_folder"]


@contextmanager
def staging_folder(destination: str | os.PathLike) -> Iterator[Path]:
    """
    A temporary folder beside `destination`, removed on exit whatever happens.

    It lies in the folder that holds `destination` once links are resolved (created if needed), so that what is
    moved out of it into `destination` is renamed, not copied. The folder itself is private (mode 0700, as
    `tempfile` makes it): write the new contents into a folder inside it, which gets the usual mode.

    Args:
        destination (`str` or `os.PathLike`): The folder that the staged contents are for.

    Yields:
        `Path`: The empty staging folder, named `.<destination name>.<random>.partial`.
    """
    destination = Path(destination)
    parent = destination.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{destination.name}.", suffix=".partial", dir=parent) as staging:
        yield Path(staging)


def move_into_place(staged: Path, destination: Path, previous: Iterable[Path] = ()) -> None:
    """
    Moves the complete contents of `staged` into `destination`.

    An absent or empty `destination` is replaced by `staged` in one rename. A non-empty one (an overwrite) keeps
    its other entries: the files of `previous` are removed first (with the folders that this leaves empty), then
    every file of `staged` is moved to the same path relative to `destination`, replacing what has that name (a
    folder included).

    Args:
        staged (`Path`): The new contents, a folder inside a [`staging_folder`] (not that folder itself).
        destination (`Path`): The folder to fill.
        previous (`Iterable[Path]`, *optional*): Files inside `destination` that belong to what the new contents
            replace (a previous build's shards, say), removed even where the new contents have no file of that name,
            so that nothing stale is left to be read with them.
    """
    if not destination.is_symlink() and (not destination.exists() or not any(destination.iterdir())):
        if destination.exists():
            destination.rmdir()  # empty: a folder cannot be renamed over an existing one everywhere
        os.replace(staged, destination)
        return
    for old in list(previous):
        old.unlink()
        folder = old.parent
        while folder != destination and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    destination.mkdir(parents=True, exist_ok=True)
    for new in sorted(path for path in staged.rglob("*") if path.is_file()):
        target = destination / new.relative_to(staged)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(new, target)
