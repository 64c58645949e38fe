"""The `occ-obman-cot` dataset: its builder (registered with `datasets`), parquet/Hub export and the seed's formats.

```python
import occ_hf                      # registers "occ-obman-cot" with datasets (lazily: on datasets' import)
from datasets import load_dataset

ds = load_dataset("occ-obman-cot", "reflection", data_dir="/data/obman")
```
"""

import hashlib
import re
from pathlib import Path


__all__ = ["DATASET_NAME", "register_dataset_builder"]

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
