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


__version__ = "0.1.0.dev0"

# The paper, for dataset and model cards and the evaluate module.
CITATION = """\
@article{wang2025occmllmcot,
  title   = {OCC-MLLM-CoT: Self-Correction Enhanced Occlusion Recognition with Large Language Models via 3D-Aware
             Supervision, Chain-of-Thoughts Guidance},
  author  = {Wang, Chaoyi and others},
  journal = {arXiv preprint arXiv:2504.04781},
  year    = {2025}
}
"""

call_when_imported("datasets", lambda datasets: register_dataset_builder())
register_auto_classes_lazily()
