"""What `import occ_hf` registers, and when: the `occ-obman-cot` builder with `datasets`; OccInternVL with
transformers' `AutoConfig`, `AutoModel`, `AutoModelForImageTextToText`, `AutoProcessor` and the
`occluded-object-recognition` pipeline.

```python
import occ_hf                      # registers with what is imported now, and with the rest once it is imported
from datasets import load_dataset
from transformers import AutoModelForImageTextToText

ds = load_dataset("occ-obman-cot", "reflection", data_dir="/data/obman")
model = AutoModelForImageTextToText.from_pretrained("runs/tiny")
```

Each registration waits for the module it needs (`REGISTRATIONS`): `import occ_hf` imports neither datasets nor
transformers, and each registration costs only the import of our class on top of what the caller already pays.
[`register`] registers with what is imported and hands the rest to occ-hf's import hook (`_occ_hf_autoload`, the same
hook that `occ_hf-autoload.pth` installs at start-up for the processes `trl` launches), which calls
[`register_imported`] again when a later import returns. `AutoModel` maps to the model with its LM head (as the
original InternVL2 checkpoints' `auto_map` does), so that `AutoModel.from_pretrained(...).recognize(...)` works.

The dataset builder takes two pieces of datasets' private API, both in `_register_dataset_builder`; this is the only
module of occ-hf that touches datasets' internals, and `tests/test_registration.py` fails, naming them, when datasets
changes under it. Why they are needed:
- `datasets.packaged_modules._PACKAGED_DATASETS_MODULES` (name -> (module path, source hash)) is the table that
  `load_dataset(name)` looks in first, as it does for "csv" or "parquet"; datasets 5 has no public way to name a
  builder it should find, and no dataset scripts.
- `datasets.load.PackagedDatasetModuleFactory.get_module` resolves `data_files` before any builder code runs: with
  none given it globs every file under `data_dir` once per default pattern (45 walks of the tree), which on ObMan's
  ~1M files (rgb, segm, depth, meta, ...) takes longer than building the rows, and an empty `data_dir` globs the
  current folder. Wrapped, it resolves `<split>/meta/*.pkl` for `occ-obman-cot` (one file per sample, so exactly the
  cache fingerprint the builder needs; it reads `data_dir` itself) and stops with the fix when `data_dir` holds no
  ObMan split. Other datasets are left untouched.
"""

import functools
import hashlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import _occ_hf_autoload

from .data import DATASET_NAME, obman_splits_under
from .models import MODEL_TYPE, PIPELINE_TASK


__all__ = ["REGISTRATIONS", "register", "register_imported"]

_BUILDER_FILE = Path(__file__).parent / "data" / "occ_obman_cot.py"
_BUILDER_MODULE = "occ_hf.data.occ_obman_cot"


def _register_dataset_builder(datasets: ModuleType) -> None:
    """Makes `load_dataset("occ-obman-cot", ...)` resolve to our builder, as datasets' own packaged modules do.

    The module hash (which keys datasets' cache) is computed as datasets hashes its packaged modules, over the
    source without comments (so a comment edit keeps caches), read from the file so that nothing heavy is imported.
    """
    from datasets.load import PackagedDatasetModuleFactory
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    lines = [re.sub(r"#.*", "", line) for line in _BUILDER_FILE.read_text().splitlines()]
    source_hash = hashlib.sha256("\n".join(line for line in lines if line).encode()).hexdigest()
    _PACKAGED_DATASETS_MODULES[DATASET_NAME] = (_BUILDER_MODULE, source_hash)

    get_module = PackagedDatasetModuleFactory.get_module

    @functools.wraps(get_module)
    def get_module_of_meta_files(self):
        if self.name == DATASET_NAME and self.data_files is None:
            splits = obman_splits_under(self.data_dir)
            self.data_files = {split: f"{folder}/meta/*.pkl" for folder, split in splits.items()}
        return get_module(self)

    PackagedDatasetModuleFactory.get_module = get_module_of_meta_files


def _register_config(configuration_auto: ModuleType) -> None:
    from .models.occ_internvl.configuration_occ_internvl import OccInternVLConfig

    configuration_auto.AutoConfig.register(MODEL_TYPE, OccInternVLConfig, exist_ok=True)


def _register_models(modeling_auto: ModuleType) -> None:
    from .models.occ_internvl.configuration_occ_internvl import OccInternVLConfig
    from .models.occ_internvl.modeling_occ_internvl import OccInternVLForConditionalGeneration

    for auto_class in (modeling_auto.AutoModel, modeling_auto.AutoModelForImageTextToText):
        auto_class.register(OccInternVLConfig, OccInternVLForConditionalGeneration, exist_ok=True)


def _register_processor(processing_auto: ModuleType) -> None:
    from .models.occ_internvl.configuration_occ_internvl import OccInternVLConfig
    from .models.occ_internvl.processing_occ_internvl import OccInternVLProcessor

    processing_auto.AutoProcessor.register(OccInternVLConfig, OccInternVLProcessor, exist_ok=True)


def _register_pipeline(pipelines: ModuleType) -> None:
    from transformers import AutoModelForImageTextToText

    from .models.occ_internvl.pipeline_occ_internvl import OccludedObjectRecognitionPipeline

    pipelines.PIPELINE_REGISTRY.register_pipeline(
        PIPELINE_TASK,
        pipeline_class=OccludedObjectRecognitionPipeline,
        pt_model=AutoModelForImageTextToText,
        type="multimodal",
    )


# The module each registration needs -> the registration, called with that module once it is imported.
REGISTRATIONS: dict[str, Callable[[ModuleType], None]] = {
    "datasets": _register_dataset_builder,
    "transformers.models.auto.configuration_auto": _register_config,
    "transformers.models.auto.modeling_auto": _register_models,
    "transformers.models.auto.processing_auto": _register_processor,
    "transformers.pipelines": _register_pipeline,
}
_waiting = dict(REGISTRATIONS)  # those whose module was not imported yet


def register_imported() -> bool:
    """
    Runs each waiting registration whose module is imported, until none is left that can run (a registration's own
    imports can bring in the module of another). Call it when no import of datasets, transformers or occ_hf is in
    progress: occ-hf's import hook does.

    Returns:
        `bool`: whether some registration still waits for its module.
    """
    while ready := [name for name in _waiting if name in sys.modules]:
        for name in ready:
            _waiting.pop(name)(sys.modules[name])
    return bool(_waiting)


def register() -> None:
    """Registers with what is imported now and installs occ-hf's import hook for the rest; `import occ_hf` calls it."""
    if register_imported():
        _occ_hf_autoload.install()
