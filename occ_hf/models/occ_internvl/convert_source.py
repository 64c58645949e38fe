"""Reading a source checkpoint for the converter: archives checked and extracted, JSON files, weight files.

Part of the InternVL checkpoint converter, whose entry point is [`convert_checkpoint`] in `convert_occ_internvl.py`
(which re-exports the public names of this module). [`CheckpointConversionError`], defined here, is the error that
every step of the conversion raises; its message names the file or field and what to do.

```python
folder = extract_archive("InternVL2-2B.tar.gz", "work/source")   # the folder holding the checkpoint's config.json
state_dict = load_checkpoint_state_dict(folder)
```

Archives are checked member by member before anything is written: absolute names, `..` components, links and device
files are refused, members that claim more than the free space are refused, and extraction then runs with
`tarfile`'s `data` filter; a truncated archive is named as such. `.bin` weights are read with
`torch.load(weights_only=True)` (memory-mapped unless in torch's legacy pre-zip format). A damaged `config.json`,
index or weights file is named in a [`CheckpointConversionError`].
"""

import json
import os
import pickle
import re
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import torch


__all__ = [
    "ARCHIVE_SUFFIXES",
    "CheckpointConversionError",
    "UnsafeArchiveError",
    "extract_archive",
    "load_checkpoint_state_dict",
    "read_json_object",
]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


class CheckpointConversionError(ValueError):
    """A source checkpoint cannot be converted; the message names the file or field and what to do."""


class UnsafeArchiveError(CheckpointConversionError):
    """An archive holds a member that could write outside the target folder; nothing of it was extracted."""


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """
    Extracts a checkpoint archive after checking every member, and returns the folder holding its `config.json`.

    Args:
        archive (`str` or `os.PathLike`): A `.tar.gz`, `.tgz` or `.tar` file.
        dest (`str` or `os.PathLike`): Folder to extract into (created if needed).

    Returns:
        `Path`: The extracted checkpoint folder (`dest`, or the one folder inside it that has a `config.json`).

    Raises:
        [`UnsafeArchiveError`]: A member has an absolute name, a `..` component, is a link or a device; raised before
            anything is written.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        tar = tarfile.open(archive, "r:*")  # noqa: SIM115 (closed by the `with` below; open errors get a clear message)
    except (tarfile.TarError, OSError) as error:
        raise CheckpointConversionError(f"{archive}: not a readable tar archive ({error}).") from error
    # A truncated download (gzip stream or tar data ending early) surfaces as any of these, in listing or extracting.
    damaged = (tarfile.TarError, EOFError, zlib.error)
    with tar:
        try:
            members = tar.getmembers()
        except damaged as error:
            raise CheckpointConversionError(
                f"{archive}: damaged or truncated archive ({type(error).__name__}: {error}); download it again."
            ) from error
        for member in members:
            _check_archive_member(archive, member)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        for member in members:
            # A second guard after the name checks: the resolved target must stay inside dest.
            if not (root / member.name).resolve().is_relative_to(root):
                raise UnsafeArchiveError(f"{archive}: member {member.name!r} resolves outside the target folder.")
        # Member sizes are only claims: checked against the free space first, so that a damaged header claiming
        # 20 GB is refused before it fills the disk.
        needed, free = sum(member.size for member in members), shutil.disk_usage(dest).free
        if needed > free:
            raise CheckpointConversionError(
                f"{archive}: its members claim {needed / 1e9:.1f} GB but {dest} has {free / 1e9:.1f} GB free; free "
                "some space, or check the archive (a damaged one can claim any size)."
            )
        try:
            tar.extractall(dest, filter="data")
        except damaged as error:
            raise CheckpointConversionError(
                f"{archive}: damaged or truncated archive ({type(error).__name__}: {error}); download it again."
            ) from error
    return _find_checkpoint_folder(dest, archive)


def _check_archive_member(archive: Path, member: tarfile.TarInfo) -> None:
    name = member.name
    path = PurePosixPath(name)
    fix = "re-pack the checkpoint with plain files and relative paths only"
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name) or name.startswith("\\"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract ({fix}).")
    if ".." in path.parts or ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} climbs out with '..'; refusing to extract ({fix}).")
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} is a {'symbolic' if member.issym() else 'hard'} link to "
            f"{member.linkname!r}; refusing to extract ({fix})."
        )
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"{archive}: member {name!r} is not a regular file or folder; refusing to extract.")


def _find_checkpoint_folder(root: Path, archive: Path) -> Path:
    if (root / "config.json").is_file():
        return root
    candidates = sorted(path.parent for path in root.glob("*/config.json"))
    if len(candidates) != 1:
        found = ", ".join(str(path.relative_to(root)) for path in candidates) or "none"
        raise CheckpointConversionError(
            f"{archive}: expected one checkpoint folder with a config.json at its top or one level down, "
            f"found {found}."
        )
    return candidates[0]


def load_checkpoint_state_dict(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """
    Reads every weight of a checkpoint folder: `model.safetensors`, `pytorch_model.bin`, or their sharded forms with
    an `*.index.json`. `.bin` files are read with `torch.load(weights_only=True)`, so they cannot run code.

    Args:
        folder (`str` or `os.PathLike`): The checkpoint folder.

    Returns:
        `dict[str, torch.Tensor]`: All tensors, by their names in the files.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    indexes = [folder / name for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json")]
    index = next((path for path in indexes if path.is_file()), None)
    if index is not None:
        weight_map = read_json_object(index).get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(name, str) for name in weight_map.values()):
            raise CheckpointConversionError(
                f"{index}: no 'weight_map' object (tensor name -> shard file name); re-create the index, or remove "
                "it for a single weights file."
            )
        files = [folder / name for name in sorted(set(weight_map.values()))]
    else:
        files = [folder / name for name in ("model.safetensors", "pytorch_model.bin") if (folder / name).is_file()][:1]
    if not files:
        raise CheckpointConversionError(
            f"{folder}: no weights found (expected model.safetensors, pytorch_model.bin or a sharded index of them)."
        )
    state_dict = {}
    for path in files:
        if not path.is_file():
            raise CheckpointConversionError(f"{path}: listed in {index.name} but missing.")
        if path.suffix == ".safetensors":
            try:
                state_dict.update(load_file(path))
            except (SafetensorError, OSError) as error:
                raise CheckpointConversionError(
                    f"{path}: not a readable safetensors file ({error}); it may be truncated or damaged: download it "
                    "again."
                ) from error
            continue
        # torch.save's zip format can be memory-mapped; the legacy format (before torch 1.6) is read into memory.
        mmap = zipfile.is_zipfile(path)
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as error:
            # weights_only refused the file before running anything. torch's message runs over many lines, and
            # only its "WeightsUnpickler error:" line says what the file holds.
            match = re.search(r"WeightsUnpickler error: ([^.\n]*)", str(error))
            reason = match.group(1) if match else f"{type(error).__name__}: {str(error).strip()[:200]}"
            raise CheckpointConversionError(
                f"{path}: holds more than plain tensors, which torch.load(weights_only=True) refuses (nothing in it "
                f"was run: {reason}); convert it to safetensors where it was made."
            ) from error
        except Exception as error:
            raise CheckpointConversionError(
                f"{path}: not a readable torch weights file ({type(error).__name__}: {error}); it may be truncated "
                "or damaged: download it again, or convert it to safetensors where it was made."
            ) from error
        if not isinstance(loaded, dict) or not all(isinstance(value, torch.Tensor) for value in loaded.values()):
            raise CheckpointConversionError(
                f"{path}: holds a {type(loaded).__name__}, not a dict of tensors (a state dict); save "
                "model.state_dict() instead."
            )
        state_dict.update(loaded)
    return state_dict


def read_json_object(path: Path) -> dict:
    """
    The JSON object in `path` (a `config.json`, an index, a tokenizer config).

    Raises:
        [`CheckpointConversionError`]: The file is not UTF-8 JSON, or holds something other than an object; the
            message names the file.
    """
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointConversionError(f"{path}: not valid JSON ({error}); fix or re-download it.") from error
    if not isinstance(value, dict):
        raise CheckpointConversionError(
            f"{path}: holds a JSON {type(value).__name__}, not an object; is this the checkpoint's file?"
        )
    return value
