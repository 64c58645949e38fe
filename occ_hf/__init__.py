"""occ-hf: OCC-MLLM-CoT (occluded-object recognition with InternVL, 3D views and a staged chain of thought) in the
Hugging Face ecosystem.

Importing `occ_hf` is cheap and registers, lazily (when the library in question is imported, `occ_hf.import_hooks`):
- the `occ-obman-cot` dataset builder with `datasets` (`occ_hf.data`);
- the OccInternVL classes with transformers' Auto classes and the `occluded-object-recognition` pipeline
  (`occ_hf.models`).
The ObMan reader, the generator and the rest are imported from their packages (`occ_hf.obman`, ...); the command
line is `occ-hf` (`occ_hf.cli`).
"""

from .data import register_dataset_builder
from .import_hooks import call_when_imported
from .models import register_auto_classes_lazily
from .version import CITATION as CITATION  # re-exported: occ_hf.CITATION, occ_hf.__version__
from .version import __version__ as __version__


call_when_imported("datasets", lambda datasets: register_dataset_builder())
register_auto_classes_lazily()
