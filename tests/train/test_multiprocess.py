"""Training on several processes, on CPU: `accelerate launch --config_file recipes/accelerate_configs/ddp.yaml
--num_processes 2 -m occ_hf.cli train sft ...` (the README's command) runs the tiny recipe on 2 processes over gloo,
saves a checkpoint and a final model that `from_pretrained` loads, logs the losses of one process at the same global
batch, and resumes from its mid-run checkpoint to the same weights and losses. The FSDP config runs too, through
`fsdp_on_cpu.py` (accelerate engages FSDP only on GPUs; its docstring says why): FSDP2 shards the model over the 2
processes, the final model is a plain bf16 checkpoint with OccInternVL's code, and its FSDP checkpoint resumes.

Why `accelerate launch --config_file ddp.yaml` and not `--cpu`: with `--cpu` accelerate starts one process whatever
`--num_processes` says (its CPU launcher spreads processes only through `mpirun` and `--mpirun_hostfile`), while a
MULTI_GPU config starts them through torchrun (as `torchrun --nproc_per_node 2 -m occ_hf.cli ...` does), and the
recipe's `use_cpu: true` then puts them on CPU with accelerate's MULTI_CPU state, over gloo.

The tiny split has 16 rows: 2 processes x 2 rows and 1 process x 4 rows are the same global batch of 4, and 4 steps
are one epoch.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText


ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "tiny" / "sft_reflection.yaml"
ACCELERATE_CONFIGS = ROOT / "recipes" / "accelerate_configs"
FSDP_ON_CPU = Path(__file__).with_name("fsdp_on_cpu.py")
STEPS, SAVE_STEPS, GLOBAL_BATCH = 4, 2, 4
MODELING_FILES = [f"{name}_occ_internvl.py" for name in ("configuration", "modeling", "processing", "generation")]

# Losses of 2 processes against 1 at the same global batch. Each optimizer step sees the same rows (accelerate gives
# rank r the r-th of each pair of per-process batches drawn from the one shuffled order) and the loss is normalised
# by the tokens of the global batch (`average_tokens_across_devices`), so only the float32 summation order differs:
# measured under 1e-7 relative (one float32 step). 1e-5 leaves 100x for that, and still fails on what a wrong
# setup gives: averaging the 2 processes' own means instead (`--average_tokens_across_devices false`) moved the
# losses by 7e-5 relative; another split of the rows, by 1e-3 and more.
LOSS_RTOL = 1e-5
# The weights after 4 steps of AdamW from those gradients differed by at most 5e-8 (lr 1e-3).
WEIGHTS_ATOL = 1e-6


def _train(
    workdir: Path,
    output_dir: str,
    *flags: str,
    processes: int = 1,
    config: str = "ddp",
    cache: str = "hf_datasets_cache",
):
    """`occ-hf train sft` with the tiny recipe, on `processes` processes through `accelerate launch` with
    `recipes/accelerate_configs/{config}.yaml` (`fsdp` through `fsdp_on_cpu.py`), at a global batch of 4, with
    datasets' cache in `workdir / cache`."""
    stage = ["train", "sft", "--config", str(RECIPE), "--output_dir", output_dir, "--max_steps", str(STEPS)]
    stage += ["--save_strategy", "steps", "--save_steps", str(SAVE_STEPS)]
    stage += ["--per_device_train_batch_size", str(GLOBAL_BATCH // processes), *flags]
    if processes == 1:
        command = [sys.executable, "-m", "occ_hf.cli", *stage]
    else:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
        command += [str(ACCELERATE_CONFIGS / f"{config}.yaml"), "--num_processes", str(processes)]
        command += ["--main_process_port", "0"]  # a free port: two such runs can go side by side (pytest -n 2)
        # bf16 autocast (the configs' mixed_precision) only where the recipe asks for it, as the GPU recipes do.
        command += ["--mixed_precision", "bf16" if "--bf16" in flags else "no"]
        command += [str(FSDP_ON_CPU)] if config == "fsdp" else ["-m", "occ_hf.cli"]
        command += stage
    env = {**os.environ, "HF_DATASETS_CACHE": str(workdir / cache), "TOKENIZERS_PARALLELISM": "false"}
    env["OMP_NUM_THREADS"] = "1"  # one thread a process: the same arithmetic for 1 and 2 processes on 2 cores
    run = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    return run


def _resume_from_mid_run(workdir: Path, straight: str, name: str, *flags: str, **launch):
    """A run resumed from `straight`'s mid-run checkpoint, in a folder that holds only that checkpoint: what a run
    killed right after saving it leaves behind."""
    output_dir = workdir / "runs" / name
    output_dir.mkdir(parents=True)
    checkpoint = f"checkpoint-{SAVE_STEPS}"
    shutil.copytree(workdir / "runs" / straight / checkpoint, output_dir / checkpoint)
    return _train(workdir, f"runs/{name}", *flags, "--resume_from_checkpoint", "last", **launch)


def _state(output_dir: Path) -> dict:
    return json.loads((output_dir / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())


def _losses(output_dir: Path) -> list[float]:
    return [entry["loss"] for entry in _state(output_dir)["log_history"] if "loss" in entry]


def _dtypes(folder: Path) -> set[str]:
    with safe_open(folder / "model.safetensors", "pt") as weights:
        return {weights.get_slice(name).get_dtype() for name in weights.keys()}  # noqa: SIM118 (not iterable)


@pytest.fixture(scope="module")
def one_process_run(recipe_workdir) -> Path:
    """The tiny recipe for 4 steps on 1 process, 4 rows a step: the reference of the multi-process runs."""
    _train(recipe_workdir, "runs/mp-one")
    return recipe_workdir / "runs" / "mp-one"


@pytest.mark.slow
def test_ddp_on_two_processes_matches_one_process_and_resumes(one_process_run, recipe_workdir):
    # One test, so that pytest-xdist does not run the 2-process trainings again on a second worker.
    # A datasets cache of its own: both processes build the rows into it at once; datasets' lock lets one build.
    two = _train(recipe_workdir, "runs/mp-ddp", processes=2, cache="hf_datasets_cache-ddp")
    assert two.stderr.count("Generating train split: 0 examples") == 1  # the opening line of its progress bar
    output_dir = recipe_workdir / "runs" / "mp-ddp"
    checkpoint = output_dir / f"checkpoint-{SAVE_STEPS}"

    # Two ranks ran (one RNG state each), and 4 steps of the global batch of 4 went once through the 16 rows.
    assert sorted(p.name for p in checkpoint.glob("rng_state_*.pth")) == ["rng_state_0.pth", "rng_state_1.pth"]
    assert _state(output_dir)["epoch"] == 1.0
    start = load_file(recipe_workdir / "runs" / "tiny" / "model.safetensors")
    for folder in (output_dir, checkpoint):
        model = AutoModelForImageTextToText.from_pretrained(folder)
        assert type(model).__name__ == "OccInternVLForConditionalGeneration"
        weights = model.state_dict()
        assert any(not torch.equal(start[key], weights[key]) for key in start), f"{folder.name} did not train"
    # The main process alone writes the card and reports.
    card = json.loads((output_dir / "occ_hf_card.json").read_text())
    assert card["global_step"] == STEPS and (output_dir / "README.md").is_file()
    assert two.stdout.count("Saved the sft model") == 1

    # The losses and weights of one process at the same global batch.
    assert len(_losses(output_dir)) == STEPS
    assert _losses(output_dir) == pytest.approx(_losses(one_process_run), rel=LOSS_RTOL)
    expected, got = load_file(one_process_run / "model.safetensors"), load_file(output_dir / "model.safetensors")
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=WEIGHTS_ATOL, msg=key)

    # Resumed on 2 processes from checkpoint-2: the same losses and weights as the run that never stopped.
    _resume_from_mid_run(recipe_workdir, "mp-ddp", "mp-ddp-resumed", processes=2)
    resumed = recipe_workdir / "runs" / "mp-ddp-resumed"
    assert _losses(resumed) == _losses(output_dir)
    expected, got = load_file(output_dir / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


@pytest.mark.slow
def test_fsdp2_on_two_processes_saves_a_plain_bf16_checkpoint_and_resumes(one_process_run, recipe_workdir):
    """The shipped FSDP config (FSDP2, FULL_STATE_DICT) with the recipe in bf16, as the GPU recipes train."""
    _train(recipe_workdir, "runs/mp-fsdp", "--bf16", "true", processes=2, config="fsdp")
    _resume_from_mid_run(recipe_workdir, "mp-fsdp", "mp-fsdp-resumed", "--bf16", "true", processes=2, config="fsdp")
    output_dir = recipe_workdir / "runs" / "mp-fsdp"
    checkpoint = output_dir / f"checkpoint-{SAVE_STEPS}"
    assert (checkpoint / "pytorch_model_fsdp.bin").is_file()  # accelerate's FSDP state: the model was sharded

    # The final model: gathered from the shards into one bf16 checkpoint; the checkpoints keep the fp32 weights.
    assert _dtypes(output_dir) == {"BF16"} and _dtypes(checkpoint) == {"F32"}
    model = AutoModelForImageTextToText.from_pretrained(output_dir)
    assert type(model).__name__ == "OccInternVLForConditionalGeneration" and model.dtype == torch.bfloat16
    # FSDP2 swaps the model's class for one of torch's: the checkpoints still carry OccInternVL's code, not torch's.
    for folder in (output_dir, checkpoint):
        auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
        assert auto_map["AutoModelForImageTextToText"] == "modeling_occ_internvl.OccInternVLForConditionalGeneration"
        assert all((folder / name).is_file() for name in MODELING_FILES)
        assert not list(folder.glob("_fsdp*.py"))

    # bf16 autocast over the shards, against the fp32 single-process run: bf16 keeps 8 bits of mantissa (4e-3).
    assert _losses(output_dir) == pytest.approx(_losses(one_process_run), rel=1e-2)
    resumed = recipe_workdir / "runs" / "mp-fsdp-resumed"
    assert _losses(resumed) == _losses(output_dir)
    expected, got = load_file(output_dir / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert expected.keys() == got.keys() and all(torch.equal(expected[key], got[key]) for key in expected)
