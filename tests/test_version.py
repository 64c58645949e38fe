"""`occ_hf.version`: the one home of `__version__` and `CITATION`, re-exported by `occ_hf`, agreeing with
`pyproject.toml`; and no module under `occ_hf/` imports the package root (which imports `occ_hf.data` and
`occ_hf.models`), found by parsing every file with `ast`."""

import ast
import re
from pathlib import Path

import pytest

import occ_hf
from occ_hf import version


REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "occ_hf"


def _root_imports(source: str, module: str) -> list[str]:
    """The import statements of `source` (the code of the module named `module`) that import the package root."""
    package = module.split(".")
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {alias.name}" for alias in node.names if alias.name == "occ_hf"]
        elif isinstance(node, ast.ImportFrom):
            # A relative import of level n is taken from the n-th enclosing package (`module` names the module
            # itself, so level 1 drops its last part; an `__init__` is named by its package plus `__init__`).
            base = package[: len(package) - node.level] if node.level else []
            target = ".".join(base + (node.module.split(".") if node.module else []))
            if target == "occ_hf":
                found.append(f"from {'.' * node.level}{node.module or ''} import ...")
    return found


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


@pytest.mark.parametrize(
    ("source", "module", "flagged"),
    [
        ("import occ_hf", "occ_hf.data.build", True),
        ("from occ_hf import CITATION", "occ_hf.data.occ_obman_cot", True),
        ("from .. import __version__", "occ_hf.obman.synth", True),
        ("from . import __version__", "occ_hf.cli", True),
        ("from ... import CITATION", "occ_hf.eval.occ_accuracy.occ_accuracy", True),
        ("def f():\n    from .. import CITATION", "occ_hf.train.model_card", True),
        ("from .. import __version__", "occ_hf.obman.__init__", True),
        ("from ..version import __version__", "occ_hf.obman.synth", False),
        ("from occ_hf.version import CITATION", "occ_hf.data.occ_obman_cot", False),
        ("import occ_hf.eval", "occ_hf.eval.occ_accuracy.occ_accuracy", False),
        ("from . import synth", "occ_hf.obman.__init__", False),
        ("from .. import x", "occ_hf.eval.occ_accuracy.occ_accuracy", False),
    ],
)
def test_root_import_detector(source, module, flagged):
    assert bool(_root_imports(source, module)) is flagged


def test_no_module_under_occ_hf_imports_the_package_root():
    offenders = {
        str(path.relative_to(REPO)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if (found := _root_imports(path.read_text(), _module_name(path)))
    }
    assert offenders == {}, f"import occ_hf.version (or the module that defines the name) instead: {offenders}"


def test_the_package_root_re_exports_version_and_citation():
    assert occ_hf.__version__ is version.__version__
    assert occ_hf.CITATION is version.CITATION
    assert version.CITATION.startswith("@article{wang2025occmllmcot,")


def test_version_agrees_with_pyproject():
    # A regular expression, not tomllib: the package supports Python 3.10, which has none.
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.findall(r'^version = "(.*)"$', pyproject, re.MULTILINE) == [version.__version__]
