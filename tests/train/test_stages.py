"""Each stage trains the tiny OccInternVL for a few steps through `main()` with its tiny recipe on a generated split:
the trainable parameters change, the frozen vision tower does not, LoRA stays on the language model, and the MPO
reference model is explicit without PEFT and absent with it."""

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText

from occ_hf import cli
from occ_hf.train import mpo as mpo_stage
from occ_hf.train import sft as sft_stage


RECIPES = Path(__file__).resolve().parents[2] / "recipes"
VISION = "model.vision_tower."


def _run(stage, recipe: str, *flags: str):
    parsed = stage.make_parser().parse_args_and_config(["--config", str(RECIPES / "tiny" / recipe), *flags])
    return stage.main(*parsed)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    # Loaded, not read from the safetensors file: the file holds the checkpoint's key layout, not the module names.
    model = AutoModelForImageTextToText.from_pretrained(folder)
    return {name: p.detach() for name, p in model.named_parameters()}


def _base_name(peft_name: str) -> str:
    # base_model.model.model.language_model...q_proj.base_layer.weight -> model.language_model...q_proj.weight
    return peft_name.removeprefix("base_model.model.").replace(".base_layer.", ".")


def test_sft_through_the_cli_trains_the_language_model_not_the_vision_tower(in_recipe_workdir):
    cli.main(["train", "sft", "--config", str(RECIPES / "tiny" / "sft_reflection.yaml"), "--max_steps", "2"])
    before = _weights(in_recipe_workdir / "runs" / "tiny")
    after = _weights(in_recipe_workdir / "runs" / "tiny-sft-reflection")
    assert before.keys() == after.keys()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert not {name for name in changed if name.startswith(VISION)}
    assert any(name.startswith("model.language_model.") for name in changed), changed
    assert any(name.startswith("model.multi_modal_projector.") for name in changed), changed


def test_sft_trainable_parameters_change_and_frozen_do_not(in_recipe_workdir):
    before = _weights(in_recipe_workdir / "runs" / "tiny")
    trainer = _run(sft_stage, "sft_reflection.yaml", "--max_steps", "2", "--output_dir", "runs/sft-full")
    params = dict(trainer.model.named_parameters())
    trainable = {name for name, p in params.items() if p.requires_grad}
    frozen = set(params) - trainable
    assert frozen == {name for name in params if name.startswith(VISION)} and frozen
    for name in trainable:
        assert not torch.equal(params[name].detach(), before[name]), f"{name} did not train"
    for name in frozen:
        assert torch.equal(params[name].detach(), before[name]), f"{name} is frozen but changed"


def test_sft_without_freeze_vision_trains_the_vision_tower(in_recipe_workdir):
    flags = ("--max_steps", "1", "--no_freeze_vision", "--output_dir", "runs/x")
    trainer = _run(sft_stage, "sft_reflection.yaml", *flags)
    assert all(p.requires_grad for p in trainer.model.parameters())


def test_sft_lora_leaves_the_vision_tower_untouched(in_recipe_workdir):
    before = _weights(in_recipe_workdir / "runs" / "tiny")
    trainer = _run(sft_stage, "sft_reflection.yaml", "--max_steps", "2", "--use_peft", "--output_dir", "runs/lora")
    params = dict(trainer.model.named_parameters())
    lora = {name for name in params if ".lora_" in name}
    assert lora and all(".language_model.layers." in name for name in lora)
    assert {name for name, p in params.items() if p.requires_grad} == lora
    assert any(not torch.equal(params[name], torch.zeros_like(params[name])) for name in lora if "lora_B" in name)
    for name, p in params.items():
        if name not in lora:
            assert torch.equal(p.detach(), before[_base_name(name)]), f"{name} changed under LoRA"
    assert (in_recipe_workdir / "runs" / "lora" / "adapter_model.safetensors").is_file()


def test_lora_targets_past_the_language_model_are_refused(in_recipe_workdir):
    flags = ("--max_steps", "1", "--use_peft", "--lora_target_modules", "q_proj", "v_proj", "--output_dir", "runs/y")
    with pytest.raises(ValueError, match="LoRA reaches past the language model: .*vision_tower"):
        _run(sft_stage, "sft_reflection.yaml", *flags)


def test_mpo_with_an_explicit_reference_model(in_recipe_workdir):
    before = _weights(in_recipe_workdir / "runs" / "tiny")
    trainer = _run(mpo_stage, "mpo.yaml", "--max_steps", "2", "--output_dir", "runs/mpo-full")
    assert trainer.args.loss_type == ["sigmoid", "bco_pair", "sft"] and trainer.args.loss_weights == [0.8, 0.2, 1.0]
    assert trainer.ref_model is not None and trainer.ref_model is not trainer.model
    for name, p in trainer.ref_model.named_parameters():
        assert torch.equal(p.detach(), before[name]), f"reference {name} changed"
    params = dict(trainer.model.named_parameters())
    changed = {name for name, p in params.items() if not torch.equal(p.detach(), before[name])}
    assert changed and not {name for name in changed if name.startswith(VISION)}
    assert any(name.startswith("model.language_model.") for name in changed)


def test_mpo_with_lora_has_no_reference_model(in_recipe_workdir):
    before = _weights(in_recipe_workdir / "runs" / "tiny")
    trainer = _run(mpo_stage, "mpo.yaml", "--max_steps", "2", "--use_peft", "--output_dir", "runs/mpo-lora")
    assert trainer.ref_model is None
    params = dict(trainer.model.named_parameters())
    lora = {name for name in params if ".lora_" in name}
    assert lora and all(".language_model.layers." in name for name in lora)
    assert any(not torch.equal(params[name], torch.zeros_like(params[name])) for name in lora if "lora_B" in name)
    for name, p in params.items():
        if name not in lora:
            assert torch.equal(p.detach(), before[_base_name(name)]), f"{name} changed under LoRA"


def test_missing_dataset_is_a_clear_error(in_recipe_workdir, tmp_path):
    recipe = tmp_path / "no_data.yaml"
    text = (RECIPES / "tiny" / "sft_reflection.yaml").read_text()
    recipe.write_text(text.split("datasets:")[0] + "output_dir: runs/z\nuse_cpu: true\nbf16: false\n")
    parsed = sft_stage.make_parser().parse_args_and_config(["--config", str(recipe)])
    with pytest.raises(ValueError, match="No dataset: give `dataset_name`"):
        sft_stage.main(*parsed)


def test_bf16_training_saves_bf16_weights_and_fp32_checkpoints(in_recipe_workdir):
    from safetensors import safe_open

    out = in_recipe_workdir / "runs" / "sft-bf16"
    flags = ["--max_steps", "2", "--bf16", "true", "--output_dir", str(out), "--save_strategy", "steps"]
    _run(sft_stage, "sft_reflection.yaml", *flags, "--save_steps", "1")

    def dtypes(folder: Path) -> set:
        with safe_open(folder / "model.safetensors", "pt") as weights:
            return {weights.get_slice(name).get_dtype() for name in weights.keys()}  # noqa: SIM118 (not iterable)

    # The final model in the precision it trained in; the checkpoints keep the fp32 weights the optimizer updated,
    # so that a resume restores them exactly.
    assert dtypes(out) == {"BF16"}
    assert dtypes(out / "checkpoint-2") == {"F32"}
    assert AutoModelForImageTextToText.from_pretrained(out).dtype == torch.bfloat16
