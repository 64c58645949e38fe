"""The `occ-obman-cot` dataset: its builder (which `occ_hf.registration` registers with `datasets`), parquet/Hub
export and the seed's formats.

```python
import occ_hf                      # registers "occ-obman-cot" with datasets (occ_hf.registration)
from datasets import load_dataset

ds = load_dataset("occ-obman-cot", "reflection", data_dir="/data/obman")
```
"""

import os
from pathlib import Path


__all__ = ["DATASET_NAME", "OBMAN_SPLITS", "obman_splits_under"]

DATASET_NAME = "occ-obman-cot"

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
