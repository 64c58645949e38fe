"""`occ_hf.registration`: datasets still has the private API it relies on (a failure names it), `occ-obman-cot`
resolves to our builder over the meta files only, and `import occ_hf` registers OccInternVL whichever of occ_hf,
transformers or our own model module is imported first (occ-hf's import hook, without the start-up `.pth`)."""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import datasets.load
import datasets.packaged_modules
import pytest

import occ_hf  # noqa: F401 (registers occ-obman-cot)


REPO = Path(__file__).resolve().parents[1]

DATASETS_INTERNALS = (
    "datasets.packaged_modules._PACKAGED_DATASETS_MODULES (a dict: name -> (module path, source hash), looked up by "
    "datasets.load.dataset_module_factory) and datasets.load.PackagedDatasetModuleFactory.get_module (a method that "
    "reads self.name, self.data_dir and self.data_files, then resolves data_files)"
)


def _changed_under_us(what: str) -> str:
    return (
        f"datasets {datasets.__version__} changed under occ_hf/registration.py: {what}. occ-hf registers "
        f"'occ-obman-cot' through {DATASETS_INTERNALS}; adapt `_register_dataset_builder` to the new datasets (or "
        "bound datasets in pyproject.toml below this version)."
    )


def test_datasets_still_has_the_private_api_that_registration_relies_on():
    table = getattr(datasets.packaged_modules, "_PACKAGED_DATASETS_MODULES", None)
    assert isinstance(table, dict), _changed_under_us("_PACKAGED_DATASETS_MODULES is gone or no longer a dict")
    assert isinstance(table.get("json"), tuple) and len(table["json"]) == 2, _changed_under_us(
        f"_PACKAGED_DATASETS_MODULES['json'] is {table.get('json')!r}, not (module path, hash)"
    )
    assert "_PACKAGED_DATASETS_MODULES" in inspect.getsource(datasets.load.dataset_module_factory), _changed_under_us(
        "dataset_module_factory no longer looks names up in _PACKAGED_DATASETS_MODULES"
    )
    factory = getattr(datasets.load, "PackagedDatasetModuleFactory", None)
    assert factory is not None and callable(getattr(factory, "get_module", None)), _changed_under_us(
        "PackagedDatasetModuleFactory.get_module is gone"
    )
    parameters = inspect.signature(factory.__init__).parameters
    assert {"name", "data_dir", "data_files"} <= parameters.keys(), _changed_under_us(
        f"PackagedDatasetModuleFactory takes {list(parameters)}"
    )
    assert table["occ-obman-cot"][0] == "occ_hf.data.occ_obman_cot"


def test_occ_obman_cot_resolves_to_the_builder_over_the_meta_files_only(synth_obman):
    root, _ = synth_obman
    module = datasets.load.dataset_module_factory("occ-obman-cot", data_dir=str(root))
    assert module.module_path == "occ_hf.data.occ_obman_cot", _changed_under_us("the packaged table is not used")
    files = module.builder_kwargs["data_files"]
    assert list(files) == ["test"], _changed_under_us(f"get_module resolved splits {list(files)}")
    # Unwrapped, datasets would glob rgb/, segm/, ... too.
    names = sorted(Path(path).relative_to(root / "test").as_posix() for path in files["test"])
    assert names == [
        f"meta/{sample_id}.pkl" for sample_id in sorted(path.stem for path in (root / "test" / "meta").iterdir())
    ], _changed_under_us(f"get_module resolved {names[:3]}... instead of the meta files")


@pytest.mark.parametrize(("empty", "match"), [(False, "pass data_dir="), (True, "no ObMan split found")])
def test_a_data_dir_without_obman_stops_before_any_glob(tmp_path, empty, match):
    with pytest.raises(ValueError, match=match):
        datasets.load.dataset_module_factory("occ-obman-cot", data_dir=str(tmp_path) if empty else None)


@pytest.mark.slow
@pytest.mark.parametrize(
    "imports",
    [
        "import occ_hf; from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, pipeline",
        "from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, pipeline; import occ_hf",
        # Our model module imports transformers: registering must wait until its own import has finished.
        "import occ_hf.models.occ_internvl.modeling_occ_internvl; from transformers import AutoConfig, "
        "AutoModelForImageTextToText, AutoProcessor, pipeline",
    ],
    ids=["occ_hf first", "transformers first", "our model module first"],
)
def test_import_occ_hf_registers_occinternvl_whatever_the_import_order(imports):
    code = (
        f"import json, sys; {imports}\n"
        "from occ_hf.models.occ_internvl import OccInternVLConfig, OccInternVLForConditionalGeneration\n"
        "from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING\n"
        "from transformers.models.auto.processing_auto import PROCESSOR_MAPPING\n"
        "from transformers.pipelines import PIPELINE_REGISTRY\n"
        "print(json.dumps([AutoConfig.for_model('occ_internvl').__class__.__name__,\n"
        "    MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING[OccInternVLConfig].__name__,\n"
        "    PROCESSOR_MAPPING[OccInternVLConfig].__name__,\n"
        "    'occluded-object-recognition' in PIPELINE_REGISTRY.get_supported_tasks(),\n"
        "    [type(f).__name__ for f in sys.meta_path if type(f).__name__ == '_RegisterAfterImports']]))"
    )
    # OCC_HF_AUTOLOAD=0: the start-up .pth stays out of it, so `import occ_hf` is what installs the hook.
    env = {**os.environ, "OCC_HF_AUTOLOAD": "0"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    config, model, processor, pipeline_task, hooks = json.loads(result.stdout.strip().splitlines()[-1])
    assert (config, model, processor) == (
        "OccInternVLConfig",
        "OccInternVLForConditionalGeneration",
        "OccInternVLProcessor",
    )
    # Everything registered but the dataset builder: the hook still waits for datasets.
    assert pipeline_task and hooks == ["_RegisterAfterImports"]
