"""The tiny recipes run under TRL's own command line, `trl sft --config` and `trl dpo --config`, unchanged: every
recipe holds only keys that TRL's own scripts know, and in the process that `trl` launches (a new Python, through
`accelerate launch`) occ-hf's start-up hook (`_occ_hf_autoload.py`) makes `occ-obman-cot` and OccInternVL known.

Each run trains the tiny checkpoint for 2 steps on a generated split from a temporary folder; the saved model loads
with `AutoModelForImageTextToText` and its trained parameters changed while the vision tower, frozen by the recipe's
`model_init_kwargs: {freeze_vision: true}`, did not. The runs need occ-hf installed in the environment of `trl` (as
`pip install -e .` does, which is how CI installs it): that is what puts the hook's `.pth` in site-packages.
"""

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText
from trl.scripts import dpo as trl_dpo
from trl.scripts import sft as trl_sft

from occ_hf.train.script_arguments import LANGUAGE_MODEL_LORA_TARGETS


REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
# `sc` runs our own GRPOTrainer subclass (two attempts a rollout), which TRL's command line does not know: its recipes
# are for `occ-hf train sc` alone.
STAGE_RECIPES = sorted(p for p in RECIPES.glob("*/*.yaml") if p.parent.name != "accelerate_configs" and p.stem != "sc")
VISION = "model.vision_tower."
PTH_NAME = "occ_hf-autoload.pth"


@pytest.mark.parametrize("recipe", STAGE_RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_holds_only_keys_that_trls_own_scripts_know(recipe):
    # `trl` hands keys its parser does not know to `accelerate launch`, which stops on them.
    trl_script = trl_dpo if recipe.stem == "mpo" else trl_sft
    parser = trl_script.make_parser()
    _, training_args, model_args, dataset_args = parser.parse_args_and_config(["--config", str(recipe), "--use_cpu"])
    assert training_args.model_init_kwargs == {"freeze_vision": True}
    # With `--use_peft`, TRL's own scripts hand this on to PEFT as one regex (a one-element list becomes the string).
    assert model_args.lora_target_modules == LANGUAGE_MODEL_LORA_TARGETS
    assert [dataset.path for dataset in dataset_args.datasets] == ["occ-obman-cot"]


@pytest.fixture
def trl_run(recipe_workdir, tiny_dir, tmp_path):
    """Runs `trl <command> --config <recipe> <flags>` from an empty temporary folder holding only the data folder the
    tiny recipes name (`data/obman-tiny`, a link to the session's generated train split); returns the output folder."""
    trl = Path(sys.executable).with_name("trl")
    hooks = [Path(folder, PTH_NAME) for folder in site.getsitepackages() if Path(folder, PTH_NAME).is_file()]
    if not hooks:
        pytest.fail(
            f"{PTH_NAME} is not in {site.getsitepackages()}: occ-hf's start-up hook is not installed in this "
            "environment, so the process `trl` starts cannot know occ-obman-cot. Install occ-hf there: "
            "`pip install -e .` (make setup does)."
        )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "obman-tiny").symlink_to(recipe_workdir / "data" / "obman-tiny")
    env = {key: value for key, value in os.environ.items() if key != "OCC_HF_AUTOLOAD"}
    env |= {
        # This checkout's occ_hf and hook module, whichever checkout the environment's editable install points at.
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets_cache"),
        "HF_HUB_OFFLINE": "1",
    }

    def run(command: str, recipe: str, *flags: str) -> Path:
        output_dir = tmp_path / "out"
        args = [str(trl), command, "--config", str(RECIPES / "tiny" / recipe), "--model_name_or_path", str(tiny_dir)]
        args += ["--output_dir", str(output_dir), "--max_steps", "2", *flags]
        result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        return output_dir

    return run


def _changed(before_dir: Path, after_dir: Path) -> set[str]:
    # Loaded through the Auto class (OccInternVL, registered by `import occ_hf`), as a user would.
    before = dict(AutoModelForImageTextToText.from_pretrained(before_dir).named_parameters())
    after = dict(AutoModelForImageTextToText.from_pretrained(after_dir).named_parameters())
    assert before.keys() == after.keys()
    return {name for name in before if not torch.equal(before[name], after[name])}


@pytest.mark.slow
@pytest.mark.parametrize(("command", "recipe"), [("sft", "sft_reflection.yaml"), ("dpo", "mpo.yaml")])
def test_trl_cli_trains_the_recipe_with_the_vision_tower_frozen(trl_run, tiny_dir, command, recipe):
    output_dir = trl_run(command, recipe)
    assert (output_dir / "model.safetensors").is_file()
    changed = _changed(tiny_dir, output_dir)
    assert not {name for name in changed if name.startswith(VISION)}, "the frozen vision tower changed"
    assert any(name.startswith("model.language_model.") for name in changed), changed
    assert any(name.startswith("model.multi_modal_projector.") for name in changed), changed


def test_trl_sft_script_trains_the_vision_tower_when_the_recipe_unfreezes_it(in_recipe_workdir, tiny_dir):
    # The counterpart of the runs above, in this process (TRL's own `sft.py` main, which the `trl sft` subprocess
    # runs): these 2 steps do move the vision tower, so its staying fixed there is the recipe's freeze_vision at work.
    flags = [
        "--model_init_kwargs",
        '{"freeze_vision": false}',
        "--max_steps",
        "2",
        "--output_dir",
        "runs/trl-unfrozen",
    ]
    trl_sft.main(
        *trl_sft.make_parser().parse_args_and_config(
            ["--config", str(RECIPES / "tiny" / "sft_reflection.yaml")] + flags
        )
    )
    assert any(name.startswith(VISION) for name in _changed(tiny_dir, in_recipe_workdir / "runs" / "trl-unfrozen"))


def test_trl_sft_script_puts_lora_on_the_language_model_only(in_recipe_workdir, tiny_dir):
    # TRL's own `sft.py` main with `--use_peft`: PEFT gets the recipe's regex (without it PEFT knows no targets for
    # occ_internvl and stops), so the adapter holds the language model's projections and nothing of the vision tower.
    from safetensors import safe_open

    flags = ["--use_peft", "--max_steps", "1", "--output_dir", "runs/trl-lora"]
    trl_sft.main(
        *trl_sft.make_parser().parse_args_and_config(
            ["--config", str(RECIPES / "tiny" / "sft_reflection.yaml")] + flags
        )
    )
    with safe_open(in_recipe_workdir / "runs" / "trl-lora" / "adapter_model.safetensors", "pt") as adapter:
        names = list(adapter.keys())
    layers = {name.split(".lora_")[0].removeprefix("base_model.model.") for name in names}
    assert layers and all(name.startswith("model.language_model.layers.") for name in layers), sorted(layers)
    # Attention and MLP projections of every layer of the tiny LLM.
    assert {name.rsplit(".", 1)[-1] for name in layers} == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
