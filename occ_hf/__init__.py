"""occ-hf: OCC-MLLM-CoT (occluded-object recognition with InternVL, 3D views and a staged chain of thought) in the
Hugging Face ecosystem.

Importing `occ_hf` is cheap: the ObMan reader, the sample generator and the rest are imported from their packages
(`occ_hf.obman`, ...), and the command line is `occ-hf` (`occ_hf.cli`). It registers the OccInternVL classes with
transformers' Auto classes and the `occluded-object-recognition` pipeline lazily, when transformers loads them
(`occ_hf.models`).
"""

from .models import register_auto_classes_lazily


__version__ = "0.1.0.dev0"

register_auto_classes_lazily()
