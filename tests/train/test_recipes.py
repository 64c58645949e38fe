"""Every recipe parses with the parser of its stage (unknown keys fail), carries the seed's hyper-parameters, and
flags override it; the accelerate configs load with accelerate."""

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file

from occ_hf.train import LANGUAGE_MODEL_LORA_TARGETS, OccMPOConfig, OccSCConfig, OccSFTConfig
from occ_hf.train import mpo as mpo_stage
from occ_hf.train import sc as sc_stage
from occ_hf.train import sft as sft_stage


RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SIZES = ("1b", "2b", "4b", "8b")
STAGE_RECIPES = sorted(p for p in RECIPES.glob("*/*.yaml") if p.parent.name != "accelerate_configs")


def _parse(recipe: Path, *flags: str):
    stage = {"mpo": mpo_stage, "sc": sc_stage}.get(recipe.stem, sft_stage)
    # The GPU recipes ask for bf16, which TrainingArguments refuses on a machine without a GPU unless use_cpu is set.
    return stage.make_parser().parse_args_and_config(["--config", str(recipe), "--use_cpu", *flags])


def test_recipe_list():
    names = {str(p.relative_to(RECIPES)) for p in STAGE_RECIPES}
    expected = {f"internvl2-{s}/{n}.yaml" for s in SIZES for n in ("sft_description", "sft_reflection", "mpo", "sc")}
    assert names == expected | {"tiny/sft_reflection.yaml", "tiny/mpo.yaml", "tiny/sc.yaml"}


@pytest.mark.parametrize("recipe", STAGE_RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_parses(recipe):
    script_args, training_args, model_args, dataset_args = _parse(recipe)
    assert isinstance(training_args, {"mpo": OccMPOConfig, "sc": OccSCConfig}.get(recipe.stem, OccSFTConfig))
    assert script_args.freeze_vision is True
    assert model_args.model_name_or_path
    (dataset,) = dataset_args.datasets
    assert dataset.path == "occ-obman-cot"
    expected_config = {"mpo": "preference", "sft_description": "description", "sc": "description"}
    assert dataset.name == expected_config.get(recipe.stem, "reflection")
    if recipe.stem == "mpo":
        assert training_args.loss_type == ["sigmoid", "bco_pair", "sft"]
        assert training_args.loss_weights == [0.8, 0.2, 1.0]
    elif recipe.stem == "sc":
        assert training_args.check_again_question == "Please check again what's the object in the hand?"
        assert training_args.improvement_bonus == 0.1
    else:
        assert training_args.assistant_only_loss is True


@pytest.mark.parametrize("size", SIZES)
def test_size_recipes_carry_the_seed_hyper_parameters(size):
    for name in ("sft_description", "sft_reflection"):
        _, args, _, _ = _parse(RECIPES / f"internvl2-{size}" / f"{name}.yaml")
        assert (args.learning_rate, args.num_train_epochs, args.lr_scheduler_type) == (4e-5, 2, "cosine")
        assert (args.warmup_steps, args.weight_decay, args.max_length, args.bf16) == (0.03, 0.05, 4096, True)
        # The seed's global batch on one device, however it is split into device batches and accumulation.
        assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 32
        assert args.preprocess_text
    _, args, _, _ = _parse(RECIPES / f"internvl2-{size}" / "mpo.yaml")
    assert 5e-6 <= args.learning_rate <= 1e-5 and 1 <= args.num_train_epochs <= 3 and args.bf16
    _, args, _, dataset_args = _parse(RECIPES / f"internvl2-{size}" / "sc.yaml")
    assert (args.learning_rate, args.num_train_epochs, args.lr_scheduler_type) == (4e-5, 2, "cosine")
    assert (args.warmup_steps, args.weight_decay, args.temperature, args.top_p, args.bf16) == (
        0.03,
        0.05,
        1.0,
        0.9,
        True,
    )
    assert dataset_args.datasets[0].split == "train[:1000]"  # the seed's ~1,000 samples


def test_flags_override_the_recipe():
    script_args, training_args, model_args, _ = _parse(
        RECIPES / "tiny" / "sft_reflection.yaml", "--learning_rate", "0.5", "--no_freeze_vision", "--use_peft"
    )
    assert training_args.learning_rate == 0.5 and script_args.freeze_vision is False and model_args.use_peft
    assert training_args.per_device_train_batch_size == 8  # from the YAML


def test_unknown_recipe_key_fails(tmp_path):
    recipe = tmp_path / "typo.yaml"
    recipe.write_text((RECIPES / "tiny" / "mpo.yaml").read_text() + "lerning_rate: 1.0e-3\n")
    with pytest.raises(ValueError, match="lerning_rate"):
        _parse(recipe)


def test_stage_configs_default_to_the_seed():
    sft, mpo = OccSFTConfig(output_dir="x", use_cpu=True), OccMPOConfig(output_dir="x", use_cpu=True)
    assert (sft.learning_rate, sft.num_train_epochs, sft.weight_decay) == (4e-5, 2, 0.05) and sft.assistant_only_loss
    assert (mpo.loss_type, mpo.loss_weights) == (["sigmoid", "bco_pair", "sft"], [0.8, 0.2, 1.0])
    sc = OccSCConfig(output_dir="x", use_cpu=True)
    assert (sc.learning_rate, sc.num_train_epochs, sc.lr_scheduler_type, sc.top_p) == (4e-5, 2, "cosine", 0.9)
    assert (sc.improvement_bonus, sc.check_again_question) == (
        0.1,
        "Please check again what's the object in the hand?",
    )


def test_lora_regex_matches_language_model_projections_only():
    import re

    pattern = re.compile(LANGUAGE_MODEL_LORA_TARGETS)
    assert pattern.fullmatch("model.language_model.layers.3.self_attn.q_proj")
    assert pattern.fullmatch("base_model.model.model.language_model.layers.0.mlp.gate_up_proj")
    assert not pattern.fullmatch("model.vision_tower.encoder.layer.0.attention.q_proj")
    assert not pattern.fullmatch("model.multi_modal_projector.linear_1")


ACCELERATE_CONFIGS = sorted((RECIPES / "accelerate_configs").glob("*.yaml"))
# What each accelerate config is (README, "Training on several GPUs"): its distributed type, and what it sets.
ACCELERATE_CONFIG_KINDS = {
    "single_gpu": "NO",
    "ddp": "MULTI_GPU",
    "fsdp": "FSDP",
    "zero2": "DEEPSPEED",
    "zero3": "DEEPSPEED",
}


def test_accelerate_config_list():
    assert {p.stem for p in ACCELERATE_CONFIGS} == set(ACCELERATE_CONFIG_KINDS)


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=lambda p: p.stem)
def test_accelerate_config_loads(path):
    # accelerate's own loader, as `accelerate launch --config_file` reads it (unknown keys fail there).
    config = load_config_from_file(str(path))
    assert config.distributed_type.value == ACCELERATE_CONFIG_KINDS[path.stem]
    # bf16, as the GPU recipes train; one host: the keys to change for several are in the README.
    assert config.mixed_precision == "bf16" and config.num_machines == 1 and config.machine_rank == 0
    assert config.num_processes == (1 if path.stem == "single_gpu" else 8) and not config.use_cpu
    if path.stem == "fsdp":
        fsdp = config.fsdp_config
        assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
        # A full state dict gathered on saving: the final model is a plain checkpoint (SHARDED_STATE_DICT would
        # leave Trainer.save_model writing no model at all); no parameter offload.
        assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT" and fsdp["fsdp_offload_params"] is False
        assert fsdp["fsdp_reshard_after_forward"] is True
    if path.stem.startswith("zero"):
        stage = int(path.stem[-1])
        assert config.deepspeed_config["zero_stage"] == stage
        offload = {config.deepspeed_config[f"offload_{what}_device"] for what in ("optimizer", "param")}
        assert offload == {"none"}
        if stage == 3:  # the final save gathers 16-bit weights into one checkpoint
            assert config.deepspeed_config["zero3_save_16bit_model"] is True
