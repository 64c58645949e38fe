"""A restricted unpickler for ObMan's meta files: numpy arrays, numpy scalars and plain containers only.

ObMan's `meta/*.pkl` come from downloads, and a pickle can run any code while it loads (`__reduce__`). The public
loaders call plain `pickle.load`; we never do. `load_meta` resolves only the globals that numpy arrays and scalars
need (under both numpy 1's `numpy.core` and numpy 2's `numpy._core` names, since ObMan was written with numpy 1.13)
and refuses every other global before anything runs. Dicts, lists, tuples, strings and numbers need no global.
Before unpickling, the opcodes are scanned once: a memo index larger than the file (`\\x80\\x02}r` with index
2**26 makes the C unpickler allocate a gigabyte for a 9-byte file) is refused. The meta file itself is read through
`occ_hf.obman.input_files` (regular files only, at most `MAX_META_FILE_BYTES`).

```python
meta = load_meta("obman/test/meta/00000003.pkl")   # dict; raises UnsafePickleError / ObManFormatError
```
"""

import importlib.util
import io
import os
import pickle
import pickletools
from typing import Any

from .errors import ObManFormatError, UnsafePickleError
from .input_files import MAX_META_FILE_BYTES, read_regular_file


__all__ = ["ALLOWED_GLOBALS", "load_meta", "safe_loads"]

ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        # Protocol 5 rebuilds arrays from out-of-band buffers.
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        # Protocol-2 pickles store an array's raw bytes as `_codecs.encode(str, "latin1")`.
        ("_codecs", "encode"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        # latin1 lets Python 2 era numpy pickles decode their byte strings; protocol 3 strings are unaffected.
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self._source}: refused to load global '{module}.{name}'; ObMan meta files hold only numpy arrays "
                "and plain containers, so this file is not an ObMan meta file or was tampered with "
                "(re-download it from the ObMan release)."
            )
        if module.startswith("numpy.core.") and importlib.util.find_spec("numpy._core") is not None:
            # numpy 2 keeps `numpy.core` only as a deprecated alias; resolve ObMan's numpy 1 names directly.
            module = "numpy._core." + module[len("numpy.core.") :]
        return super().find_class(module, name)


_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def _check_memo_indices(data: bytes, source: str) -> None:
    """Refuses a memo index larger than the pickle: a pickler numbers its memo 0, 1, 2, ..., one entry per object
    written, so a larger index is hostile, and the C unpickler allocates a memo table that large before it fails."""
    for opcode, argument, position in pickletools.genops(data):
        if opcode.name in _MEMO_PUTS and argument > len(data):
            raise ObManFormatError(
                f"{source}: corrupt pickle (memo index {argument} at byte {position} in a {len(data)}-byte file); "
                "re-download or re-extract it."
            )


def safe_loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickles `data` with the restricted unpickler; `source` names the input in error messages.

    Raises:
        `UnsafePickleError`: the pickle asks for a global outside `ALLOWED_GLOBALS` (nothing of it ran).
        `ObManFormatError`: anything else the pickle makes fail (truncated, corrupt or hostile data).
    """
    try:
        _check_memo_indices(data, source)
        return _RestrictedUnpickler(io.BytesIO(data), source).load()
    except ObManFormatError:
        raise
    # Whatever an allowed global raises on hostile arguments (`_codecs.encode('a', 'zzz')` gives LookupError, numpy
    # a MemoryError or RecursionError, ...) says only that the file is bad; nothing but those globals ran.
    except Exception as error:
        raise ObManFormatError(
            f"{source}: truncated or corrupt pickle ({type(error).__name__}: {error}); re-download or re-extract it."
        ) from error


def load_meta(path: str | os.PathLike) -> dict:
    """Loads one ObMan `meta/*.pkl` safely and checks that it is a dict.

    Raises:
        `ObManFormatError`: the file is missing, not a regular file, larger than `MAX_META_FILE_BYTES`, truncated,
            corrupt or not a dict.
        `UnsafePickleError`: the file asks for any global other than numpy's array and scalar constructors.
    """
    path = os.fspath(path)
    try:
        data = read_regular_file(path, MAX_META_FILE_BYTES)
    except FileNotFoundError:
        raise ObManFormatError(f"{path}: meta file not found (is the split complete?).") from None
    meta = safe_loads(data, source=path)
    if not isinstance(meta, dict):
        raise ObManFormatError(f"{path}: expected a dict of ObMan meta fields, got {type(meta).__name__}.")
    return meta
