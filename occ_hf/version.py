"""The version of occ-hf and the paper to cite, for cards, provenance and the `evaluate` module.

A module of its own, imported by children of `occ_hf` instead of the package root: the root registers the dataset
builder and the models (it imports `occ_hf.data` and `occ_hf.models`), and a child importing it would depend on how
far that import has got. `pyproject.toml` states the version again (its `[project] version`);
`tests/test_version.py` checks that the two agree.
"""

__all__ = ["CITATION", "__version__"]

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
