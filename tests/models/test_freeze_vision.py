"""`freeze_vision`, OccInternVL's load-time switch (what a recipe's `model_init_kwargs: {freeze_vision: true}` passes
under `occ-hf train` and `trl sft|dpo` alike): it freezes the vision tower and nothing else, whichever way the model
is built, and it is never written to config.json."""

import json

import pytest
from transformers import AutoModel, AutoModelForImageTextToText

from occ_hf.models.occ_internvl import OccInternVLConfig, OccInternVLForConditionalGeneration


VISION = "model.vision_tower."


def _frozen(model) -> set[str]:
    return {name for name, p in model.named_parameters() if not p.requires_grad}


def _vision(model) -> set[str]:
    return {name for name, _ in model.named_parameters() if name.startswith(VISION)}


@pytest.mark.parametrize("auto_class", [AutoModelForImageTextToText, AutoModel])
def test_from_pretrained_freezes_the_vision_tower_only(tiny_dir, auto_class):
    model = auto_class.from_pretrained(tiny_dir, freeze_vision=True)
    assert model.config.freeze_vision is True
    assert _frozen(model) == _vision(model) and _vision(model)
    assert not _frozen(auto_class.from_pretrained(tiny_dir))


def test_output_loading_info_keeps_it(tiny_dir):
    model, info = AutoModelForImageTextToText.from_pretrained(tiny_dir, freeze_vision=True, output_loading_info=True)
    assert _frozen(model) == _vision(model) and not info["missing_keys"]


def test_a_model_built_from_a_config_is_frozen_too(tiny_dir):
    config = OccInternVLConfig.from_pretrained(tiny_dir, freeze_vision=True)
    model = OccInternVLForConditionalGeneration(config)
    assert _frozen(model) == _vision(model)


def test_it_is_not_saved(tiny_dir, tmp_path):
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir, freeze_vision=True)
    model.save_pretrained(tmp_path)
    assert "freeze_vision" not in json.loads((tmp_path / "config.json").read_text())
    assert "freeze_vision" not in model.config.to_dict()
    assert not _frozen(AutoModelForImageTextToText.from_pretrained(tmp_path))
