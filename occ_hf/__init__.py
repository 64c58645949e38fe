"""occ-hf: OCC-MLLM-CoT (occluded-object recognition with InternVL, 3D views and a staged chain of thought) in the
Hugging Face ecosystem.

Importing `occ_hf` is cheap and registers (`occ_hf.registration`), with each library once it is imported:
- the `occ-obman-cot` dataset builder with `datasets` (`occ_hf.data`);
- the OccInternVL classes with transformers' Auto classes and the `occluded-object-recognition` pipeline
  (`occ_hf.models`).
The ObMan reader, the generator and the rest are imported from their packages (`occ_hf.obman`, ...); the command
line is `occ-hf` (`occ_hf.cli`).
"""

from .registration import register
from .version import CITATION as CITATION  # re-exported: occ_hf.CITATION, occ_hf.__version__
from .version import __version__ as __version__


register()
