"""The `occ-obman-cot` dataset: its builder (registered with `datasets`), parquet/Hub export and the seed's formats.

```python
import occ_hf                      # registers "occ-obman-cot" with datasets (lazily: on datasets' import)
from datasets import load_dataset

ds = load_dataset("occ-obman-cot", "reflection", data_dir="/data/obman")
```
"""

import functools
import hashlib
import os
import re
from pathlib import Path


__all__ = ["DATASET_NAME", "OBMAN_SPLITS", "obman_splits_under", "register_dataset_builder"]

DATASET_NAME = "occ-obman-cot"
_BUILDER_FILE = Path(__file__).with_name("occ_obman_cot.py")


def register_dataset_builder() -> None:
    """Makes `load_dataset("occ-obman-cot", ...)` resolve to our builder, as datasets' own packaged modules do.

    The module hash (which keys datasets' cache) is computed the way datasets hashes its packaged modules: over
    the source without comments, read from the file so that nothing heavy is imported here.
    """
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    lines = [re.sub(r"#.*", "", line) for line in _BUILDER_FILE.read_text().splitlines()]
    source_hash = hashlib.sha256("\n".join(line for line in lines if line).encode()).hexdigest()
    _PACKAGED_DATASETS_MODULES[DATASET_NAME] = ("occ_hf.data.occ_obman_cot", source_hash)
    _resolve_only_meta_files()


# ObMan folder names and the datasets split each becomes.
OBMAN_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def obman_splits_under(data_dir: str | os.PathLike | None) -> dict[str, str]:
    """The ObMan split folders under `data_dir` (those holding `meta/`) -> the datasets split each becomes.

    The one check of the ObMan root that `occ-obman-cot` builds from: no `data_dir`, or one without a split, is a
    `ValueError` that says what to pass.
    """
    if not data_dir:
        raise ValueError(
            f"{DATASET_NAME} builds from raw ObMan: pass data_dir=<ObMan root holding train/, val/, test/>."
        )
    root = Path(data_dir).expanduser()
    found = {folder: split for folder, split in OBMAN_SPLITS.items() if (root / folder / "meta").is_dir()}
    if not found:
        raise ValueError(f"{root}: no ObMan split found (expected {root}/train/meta, {root}/test/meta, ...).")
    return found


def _resolve_only_meta_files() -> None:
    """Points datasets' data-file resolution for `occ-obman-cot` at `<split>/meta/*.pkl` only.

    Without `data_files`, datasets globs every file under `data_dir` once per default pattern (45 walks of the
    tree); on ObMan's ~1M files (rgb, segm, depth, meta, ...) that takes longer than building the rows. The builder
    reads `data_dir` itself and uses `data_files` only for the cache fingerprint, for which the meta files (one per
    sample, with their modification times) are exactly right. Other datasets are left untouched.
    """
    from datasets.load import PackagedDatasetModuleFactory

    if getattr(PackagedDatasetModuleFactory.get_module, "_occ_hf", False):
        return
    original = PackagedDatasetModuleFactory.get_module

    @functools.wraps(original)
    def get_module(self):
        if self.name == DATASET_NAME and self.data_files is None:
            splits = obman_splits_under(self.data_dir)
            self.data_files = {split: f"{folder}/meta/*.pkl" for folder, split in splits.items()}
        return original(self)

    get_module._occ_hf = True
    PackagedDatasetModuleFactory.get_module = get_module
