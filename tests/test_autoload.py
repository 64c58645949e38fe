"""occ-hf's start-up hook (`_occ_hf_autoload.py`, `occ_hf-autoload.pth`, written by `setup.py`): at start-up it
imports nothing; once an import of `datasets` or `transformers` returns, it imports `occ_hf`, so the dataset builder
and OccInternVL are registered in processes that never import occ-hf (the one `trl sft` launches); a real wheel and a
real editable install both put the `.pth` at the top of site-packages, and `OCC_HF_AUTOLOAD=0` switches it off."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import _occ_hf_autoload


REPO = Path(__file__).resolve().parents[1]
PTH_NAME = "occ_hf-autoload.pth"

# What a process started with the hook has imported, and whether the registrations happened.
REPORT = """
import json, sys
{body}
from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES  # noqa: E402 (reads the state, imports nothing new)
print(json.dumps({{
    "occ_hf": "occ_hf" in sys.modules,
    "heavy": sorted(m for m in ("torch", "datasets", "transformers", "numpy", "importlib.abc") if m in before),
    "dataset": "occ-obman-cot" in _PACKAGED_DATASETS_MODULES,
    "model": "occ_internvl" in sys.modules["transformers.models.auto.configuration_auto"].CONFIG_MAPPING
    if "transformers.models.auto.configuration_auto" in sys.modules else None,
}}))
"""


def _run(code: str, *path_first: Path, **env_overrides: str) -> subprocess.CompletedProcess:
    # -S: no .pth file of site-packages runs, so the hook is installed by `code` or not at all, whether or not this
    # environment has the .pth; site-packages itself is put back on sys.path by hand. The cwd holds no occ_hf, and
    # PYTHONPATH has `path_first`, then this checkout.
    import site

    env = {key: value for key, value in os.environ.items() if key != "OCC_HF_AUTOLOAD"}
    pythonpath = [*map(str, path_first), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    env |= {"PYTHONPATH": os.pathsep.join(pythonpath), **env_overrides}
    prelude = f"import sys; sys.path.extend({site.getsitepackages()!r}); "
    return subprocess.run(
        [sys.executable, "-S", "-c", prelude + code],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parent,
        timeout=120,
    )


def _report(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _pth_then(imports: str) -> str:
    # What site does with the .pth line (exec), then a snapshot of sys.modules, then `imports`.
    return f"exec({_occ_hf_autoload.PTH_LINE!r}); before = set(sys.modules); {imports}"


def test_start_up_imports_nothing_and_datasets_brings_occ_hf_in():
    report = _report(_run(REPORT.format(body=_pth_then("import datasets"))))
    assert report["heavy"] == []  # at start-up: not even importlib.abc
    assert report["occ_hf"] and report["dataset"]


def test_importing_transformers_registers_occinternvl():
    report = _report(_run(REPORT.format(body=_pth_then("import transformers.models.auto.configuration_auto"))))
    assert report["occ_hf"] and report["model"] is True


def test_without_the_hook_nothing_is_registered():
    report = _report(_run(REPORT.format(body="before = set(sys.modules); import datasets")))
    assert not report["occ_hf"] and not report["dataset"]


def test_occ_hf_autoload_0_switches_it_off():
    report = _report(_run(REPORT.format(body=_pth_then("import datasets")), OCC_HF_AUTOLOAD="0"))
    assert not report["occ_hf"] and not report["dataset"]


def test_an_occ_hf_that_fails_to_import_leaves_datasets_working_with_a_warning(tmp_path):
    (tmp_path / "occ_hf").mkdir()
    (tmp_path / "occ_hf" / "__init__.py").write_text("raise RuntimeError('half-removed')\n")
    # Warnings as errors: the warning stops `import datasets` where it stands, naming the cause and the way out.
    strict = _run(
        REPORT.format(body=_pth_then("import warnings; warnings.simplefilter('error'); import datasets")), tmp_path
    )
    assert strict.returncode != 0
    assert "could not import occ_hf (RuntimeError: half-removed)" in strict.stderr
    assert "OCC_HF_AUTOLOAD=0" in strict.stderr
    result = _run(REPORT.format(body=_pth_then("import datasets")), tmp_path)
    assert _report(result)["dataset"] is False and "could not import occ_hf" in result.stderr


@pytest.fixture(scope="module")
def built_wheels(tmp_path_factory):
    """The wheel and the editable wheel of a copy of this checkout, built by setuptools' PEP 517 backend (as pip
    does, without build isolation since nothing can be downloaded)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "setup.py", "README.md", "_occ_hf_autoload.py"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "occ_hf", source / "occ_hf", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    code = (
        "import json\nfrom setuptools import build_meta as backend\n"
        f"names = [backend.build_wheel({str(dist)!r}), backend.build_editable({str(dist)!r})]\n"
        f"open({str(dist / 'names.json')!r}, 'w').write(json.dumps(names))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    wheel, editable = (dist / name for name in json.loads((dist / "names.json").read_text()))
    return source, wheel, editable


@pytest.mark.parametrize("kind", ["wheel", "editable"])
def test_the_wheels_carry_the_pth_at_the_top(built_wheels, kind):
    _, wheel, editable = built_wheels
    with zipfile.ZipFile(wheel if kind == "wheel" else editable) as archive:
        assert archive.read(PTH_NAME).decode() == _occ_hf_autoload.PTH_LINE
        names = archive.namelist()
        record = archive.read(next(name for name in names if name.endswith(".dist-info/RECORD"))).decode()
    assert f"\n{PTH_NAME}," in f"\n{record}"  # so that pip uninstall removes it
    if kind == "wheel":
        assert "_occ_hf_autoload.py" in names and "occ_hf/__init__.py" in names
    else:
        # The editable path hook must run first (site reads .pth files in name order) to make the module importable.
        assert sorted(name for name in names if name.endswith(".pth"))[-1] == PTH_NAME


@pytest.mark.parametrize("kind", ["wheel", "editable"])
def test_pip_install_puts_the_hook_in_a_fresh_environment(built_wheels, tmp_path, kind):
    source, wheel, editable = built_wheels
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q"]
    subprocess.run([*install, str(wheel if kind == "wheel" else editable)], check=True, timeout=300)
    code = (
        "import json, site, sys; print(json.dumps([sys.modules['_occ_hf_autoload'].__file__ if '_occ_hf_autoload' in "
        "sys.modules else None, [type(f).__name__ for f in sys.meta_path], 'occ_hf' in sys.modules, "
        "site.getsitepackages()]))"
    )
    clean_env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "OCC_HF_AUTOLOAD")}
    hook_file, finders, occ_hf_imported, site_packages = json.loads(
        subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path, env=clean_env
        ).stdout
    )
    assert (Path(site_packages[0]) / PTH_NAME).is_file()
    expected = Path(site_packages[0]) if kind == "wheel" else source
    assert Path(hook_file) == expected / "_occ_hf_autoload.py"
    assert finders[0] == "_RegisterAfterImports" and not occ_hf_imported
    off = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**clean_env, "OCC_HF_AUTOLOAD": "0"},
    )
    assert json.loads(off.stdout)[0] is None
