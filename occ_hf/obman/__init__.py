"""ObMan in and out: a safe reader for real splits and a generator of ObMan-format splits.

```python
from occ_hf.obman import ObManSplit, generate_obman_split

generate_obman_split("data/obman", n=64, split="test")
for sample in ObManSplit("data/obman", "test", shapenet_root="data/obman/ShapeNetCore.v2"):
    print(sample.sample_id, sample.class_name, f"{sample.occlusion:.2f}")
```
"""

from .camera import OBMAN_INTRINSICS, Camera, obman_camera
from .classes import CLASS_TO_SYNSET, OCC_CLASSES, SYNSET_TO_CLASS
from .errors import ObManFormatError, UnsafePickleError
from .ids import read_id_list
from .reader import ObManSample, ObManSplit, UnknownClassError, read_segm
from .safe_pickle import load_meta
from .summary import ObManSummaryConfig, format_summary, run_obman_summary, summarize_split


def __getattr__(name: str):
    # The generator needs torch and trimesh, which take seconds to import; reading ObMan needs neither.
    if name in ("SHAPENET_DIRNAME", "generate_obman_split"):
        from . import synth

        return getattr(synth, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLASS_TO_SYNSET",
    "Camera",
    "OBMAN_INTRINSICS",
    "OCC_CLASSES",
    "ObManFormatError",
    "ObManSample",
    "ObManSplit",
    "ObManSummaryConfig",
    "SHAPENET_DIRNAME",
    "SYNSET_TO_CLASS",
    "UnknownClassError",
    "UnsafePickleError",
    "format_summary",
    "run_obman_summary",
    "generate_obman_split",
    "load_meta",
    "obman_camera",
    "read_id_list",
    "read_segm",
    "summarize_split",
]
