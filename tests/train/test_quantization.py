"""`--load_in_4bit` / `--load_in_8bit` are honoured (a BitsAndBytesConfig that leaves the vision tower alone) or
refused with the fix named: never silently ignored."""

import importlib.util

import pytest
from trl import ModelConfig

from occ_hf.train.loading import QUANTIZATION_SKIP_MODULES, quantization_kwargs

from .test_stages import _run, sft_stage


def test_without_either_flag_nothing_changes():
    assert quantization_kwargs(ModelConfig(model_name_or_path="m")) == {}


@pytest.mark.parametrize("flag", ["--load_in_4bit", "--load_in_8bit"])
def test_quantized_full_fine_tuning_is_refused(in_recipe_workdir, flag):
    with pytest.raises(ValueError, match="add --use_peft"):
        _run(sft_stage, "sft_reflection.yaml", flag, "--max_steps", "1")


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed")
def test_missing_bitsandbytes_names_the_extra(in_recipe_workdir):
    with pytest.raises(ImportError, match=r"occ-hf\[qlora\]"):
        _run(sft_stage, "sft_reflection.yaml", "--load_in_4bit", "--use_peft", "--max_steps", "1")


def test_4bit_config_quantizes_the_language_model_only(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "bitsandbytes" else real_find_spec(name, *a)
    )
    args = ModelConfig(model_name_or_path="m", load_in_4bit=True, use_peft=True, dtype="bfloat16")
    kwargs = quantization_kwargs(args)
    config = kwargs["quantization_config"]
    assert config.load_in_4bit and not config.load_in_8bit
    assert config.llm_int8_skip_modules == QUANTIZATION_SKIP_MODULES
    assert "vision_tower" in config.llm_int8_skip_modules
    assert set(kwargs) == {"quantization_config", "device_map"}
