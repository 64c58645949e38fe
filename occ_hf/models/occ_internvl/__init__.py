"""OccInternVL: transformers' InternVL with OCC-MLLM-CoT's prompts and three-stage recognition.

```python
from occ_hf.models.occ_internvl import OccInternVLConfig, OccInternVLForConditionalGeneration, OccInternVLProcessor
```

Names are imported on first use, so that importing the configuration alone (as the lazy Auto registration does) does
not import the modeling code.
"""

import importlib


_NAME_TO_MODULE = {
    "OccInternVLConfig": "configuration_occ_internvl",
    "OccInternVLForConditionalGeneration": "modeling_occ_internvl",
    "OccRecognition": "modeling_occ_internvl",
    "OccInternVLProcessor": "processing_occ_internvl",
    "OccludedObjectRecognitionPipeline": "pipeline_occ_internvl",
}

__all__ = sorted(_NAME_TO_MODULE)


def __getattr__(name: str):
    if name not in _NAME_TO_MODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_NAME_TO_MODULE[name]}", __name__), name)
