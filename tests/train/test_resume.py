"""Long runs survive: each stage (`sft`, `mpo`, `sc`; full and LoRA) saves a checkpoint at every step, a run killed
with SIGKILL right after one of them resumes with `--resume_from_checkpoint last`, and the resumed run ends with the
same weights and the same logged losses as a run that was never interrupted."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from occ_hf.train.stage import CheckpointMismatchError, check_checkpoint_keys, last_checkpoint, resolve_resume


RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "tiny"
KILLER = Path(__file__).with_name("kill_after_checkpoint.py")
STEPS = 6
KILL_AFTER = 3

STAGES = {
    "sft": ("sft_reflection.yaml", ["--per_device_train_batch_size", "4"]),
    "mpo": ("mpo.yaml", ["--per_device_train_batch_size", "2"]),
    "sc": ("sc.yaml", ["--per_device_train_batch_size", "4"]),
}


def _train(workdir: Path, stage: str, output_dir: str, *flags: str, kill_after: int = -1):
    recipe, stage_flags = STAGES[stage]
    command = [sys.executable, str(KILLER), str(kill_after), "train", stage, "--config", str(RECIPES / recipe)]
    command += ["--output_dir", output_dir, "--max_steps", str(STEPS), "--save_strategy", "steps", "--save_steps", "1"]
    command += [*stage_flags, *flags]
    env = {**os.environ, "HF_DATASETS_CACHE": str(workdir / "hf_datasets_cache"), "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)


def _losses(output_dir: Path) -> dict[int, float]:
    state = json.loads((output_dir / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


def _final_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    name = "adapter_model.safetensors" if (output_dir / "adapter_model.safetensors").is_file() else "model.safetensors"
    return load_file(output_dir / name)


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("stage", sorted(STAGES))
def test_killed_run_resumes_to_the_uninterrupted_weights_and_losses(recipe_workdir, stage, lora):
    flags = ["--use_peft"] if lora else []
    name = f"resume-{stage}-{'lora' if lora else 'full'}"
    straight = _train(recipe_workdir, stage, f"runs/{name}-straight", *flags)
    assert straight.returncode == 0, straight.stderr[-3000:]

    killed = _train(recipe_workdir, stage, f"runs/{name}", *flags, kill_after=KILL_AFTER)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    output_dir = recipe_workdir / "runs" / name
    assert sorted(p.name for p in output_dir.glob("checkpoint-*")) == [f"checkpoint-{s}" for s in (1, 2, 3)]
    assert not (output_dir / "model.safetensors").exists() and not (output_dir / "adapter_model.safetensors").exists()

    # Rerunning the same command without resuming would mix two runs' checkpoints: refused, before any training.
    again = _train(recipe_workdir, stage, f"runs/{name}", *flags)
    assert again.returncode == 1 and "already holds checkpoints" in again.stderr, again.stderr[-2000:]

    resumed = _train(recipe_workdir, stage, f"runs/{name}", *flags, "--resume_from_checkpoint", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "missing keys" not in resumed.stderr and "unexpected keys" not in resumed.stderr

    straight_dir = recipe_workdir / "runs" / f"{name}-straight"
    assert _losses(output_dir) == _losses(straight_dir)
    assert len(_losses(output_dir)) == STEPS
    expected, got = _final_weights(straight_dir), _final_weights(output_dir)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    if not lora:  # the run trained: its weights are not the starting checkpoint's
        start = load_file(recipe_workdir / "runs" / "tiny" / "model.safetensors")
        assert any(not torch.equal(start[key], got[key]) for key in got if key in start)


def _checkpoint(folder: Path, step: int, complete: bool = True) -> Path:
    checkpoint = folder / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    if complete:
        (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return checkpoint


class _Args:
    def __init__(self, output_dir, resume_from_checkpoint):
        self.output_dir, self.resume_from_checkpoint = str(output_dir), resume_from_checkpoint


def test_last_checkpoint_skips_one_whose_save_was_interrupted(tmp_path, caplog):
    _checkpoint(tmp_path, 2)
    _checkpoint(tmp_path, 10)
    _checkpoint(tmp_path, 12, complete=False)  # killed while saving: no trainer_state.json yet
    (_checkpoint(tmp_path, 14) / "trainer_state.json").write_text('{"global_st')  # truncated
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert "checkpoint-12 is not a complete checkpoint" in caplog.text
    args = _Args(tmp_path, "last")
    assert resolve_resume(args) == str(tmp_path / "checkpoint-10") == args.resume_from_checkpoint


def test_resume_values_are_checked_before_training(tmp_path):
    assert resolve_resume(_Args(tmp_path / "new", None)) is None
    with pytest.raises(ValueError, match="holds no complete checkpoint"):
        resolve_resume(_Args(tmp_path, "last"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_resume(_Args(tmp_path, str(tmp_path / "checkpoint-7")))
    unfinished = _checkpoint(tmp_path, 3, complete=False)
    with pytest.raises(FileNotFoundError, match="has no trainer_state.json"):
        resolve_resume(_Args(tmp_path, str(unfinished)))
    _checkpoint(tmp_path, 4)
    with pytest.raises(ValueError, match="already holds checkpoints of an earlier run"):
        resolve_resume(_Args(tmp_path, None))
    assert resolve_resume(_Args(tmp_path, str(tmp_path / "checkpoint-4"))) == str(tmp_path / "checkpoint-4")


def test_a_checkpoint_with_other_weight_names_is_refused(tiny_dir, tmp_path):
    """What resumed silently before: a checkpoint in transformers' renamed layout (`language_model.model.*`)."""
    from safetensors.torch import save_file
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    check_checkpoint_keys(tiny_dir, model)  # its own layout: fine
    renamed = {
        key.replace("model.language_model.", "model.language_model.model."): value.contiguous()
        for key, value in model.state_dict().items()
    }
    checkpoint = tmp_path / "checkpoint-2"
    checkpoint.mkdir()
    save_file(renamed, checkpoint / "model.safetensors")
    with pytest.raises(CheckpointMismatchError, match=r"checkpoint-2: its weights do not match .* missing, e\.g\. "):
        check_checkpoint_keys(checkpoint, model)
