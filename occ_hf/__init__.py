"""occ-hf: OCC-MLLM-CoT (occluded-object recognition with InternVL, 3D views and a staged chain of thought) in the
Hugging Face ecosystem.

Importing `occ_hf` registers the `occ-obman-cot` dataset builder with `datasets` (when `datasets` is imported, so
`import occ_hf` stays cheap). The ObMan reader, the generator and the rest are imported from their packages
(`occ_hf.obman`, ...); the command line is `occ-hf` (`occ_hf.cli`).
"""

from ._import_hooks import when_imported
from .data import register_dataset_builder


__version__ = "0.1.0.dev0"

when_imported("datasets", register_dataset_builder)
