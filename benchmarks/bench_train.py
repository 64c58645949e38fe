"""Training throughput of a stage against stock TRL in the same script: samples/s (pairs/s for MPO), MFU, peak memory
and the loss curves.

Each run is a fresh subprocess (its own CUDA context and accelerate state) on the same rows and seed:

- `stock-b8`: TRL's trainer as a user gets it (`SFTTrainer` / `DPOTrainer` with the recipe's hyper-parameters and
  TRL's defaults for everything else: fp32 weights under bf16 autocast, activation checkpointing on, 0 dataloader
  workers, images processed in the main process) at a per-device batch of 8;
- `stock`: the same at the shipped recipe's global batch (one device batch, no accumulation), the loss reference;
- `ours`: `occ-hf train <stage>` with the shipped recipe as it stands (`recipes/<shape>/...yaml`), only the model, the
  data, the output folder and the step count replaced.

The vision tower is frozen in all three, as the seed trains. Throughput counts the optimizer steps after `--warmup`
(step ends timed with the device synchronised); MFU is model FLOPs over a peak measured here (an 8192^3 bf16 matmul):
6 x language-model parameters (head included) x tokens + 6 x projector parameters x image tokens + 2 x vision-tower
parameters x patches, per sample. Token counts come from the processed rows.

```bash
python benchmarks/bench_train.py --stage sft --shape tiny                        # CPU, seconds; the tests run it
python benchmarks/bench_train.py --stage sft --shape 1b --device cuda --json sft_1b.json
python benchmarks/bench_train.py --stage mpo --shape 1b --device cuda --runs stock ours
python benchmarks/bench_train.py --stage sft --shape 8b --device cuda --runs ours --steps 12
```
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
# Runnable from a bare checkout (the GPU machine gets the working tree, not an installed package).
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

RECIPES = {
    ("sft", "tiny"): "recipes/tiny/sft_reflection.yaml",
    ("mpo", "tiny"): "recipes/tiny/mpo.yaml",
    ("sft", "1b"): "recipes/internvl2-1b/sft_reflection.yaml",
    ("mpo", "1b"): "recipes/internvl2-1b/mpo.yaml",
    ("sft", "8b"): "recipes/internvl2-8b/sft_reflection.yaml",
    ("mpo", "8b"): "recipes/internvl2-8b/mpo.yaml",
}
DATASET_CONFIG = {"sft": "reflection", "mpo": "preference"}
RUNS = ("stock-b8", "stock", "ours")
"""The runs; `ours+key=value+...` is `ours` with recipe keys replaced (YAML values), to measure one lever at a time."""


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=sorted(DATASET_CONFIG), default="sft")
    parser.add_argument("--shape", choices=("tiny", "1b", "8b"), default="tiny")
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    parser.add_argument(
        "--runs", nargs="+", default=list(RUNS), help="Runs in this order: stock-b8, stock, ours, ours+KEY=VALUE+..."
    )
    parser.add_argument("--profile", action="store_true", help="Write a torch.profiler table of steps 6-9 per run.")
    parser.add_argument("--steps", type=int, default=None, help="Optimizer steps a run (4 tiny, 30 otherwise).")
    parser.add_argument("--warmup", type=int, default=None, help="Steps left out of the timing (1 tiny, 5 otherwise).")
    parser.add_argument("--num_samples", type=int, default=None, help="Generated train samples (16 tiny, 256).")
    parser.add_argument("--work_dir", default=None, help="Where model, data and runs go (a temporary folder).")
    parser.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    return parser


# ---------------------------------------------------------------------------------------------- the worker process


def _timing_callback(record: dict, profile: str | None = None, profile_steps: tuple[int, int] = (6, 9)):
    """A callback that times every optimizer step's end (device synchronised) and keeps the logged losses; with
    `profile`, a `torch.profiler` table of `profile_steps` (sorted by device time) is written there."""
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        profiler = None

        def on_step_begin(self, args, state, control, **kwargs):
            if profile and state.global_step == profile_steps[0]:
                activities = [torch.profiler.ProfilerActivity.CPU]
                if torch.cuda.is_available():
                    activities.append(torch.profiler.ProfilerActivity.CUDA)
                self.profiler = torch.profiler.profile(activities=activities)
                self.profiler.__enter__()

        def on_step_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            record["step_ends"].append(time.perf_counter())
            if self.profiler is not None and state.global_step == profile_steps[1]:
                self.profiler.__exit__(None, None, None)
                events = self.profiler.key_averages()
                sort_by = "device_time_total" if torch.cuda.is_available() else "cpu_time_total"
                tables = [
                    events.table(sort_by=sort_by, row_limit=40),
                    events.table(sort_by="cpu_time_total", row_limit=25),
                ]
                Path(profile).write_text("\n\n".join(tables))
                self.profiler = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                record["losses"].append([state.global_step, float(logs["loss"])])

        def on_train_begin(self, args, state, control, **kwargs):
            record["global_batch"] = args.per_device_train_batch_size * args.gradient_accumulation_steps
            record["args"] = {
                "per_device_train_batch_size": args.per_device_train_batch_size,
                "gradient_accumulation_steps": args.gradient_accumulation_steps,
                "gradient_checkpointing": args.gradient_checkpointing,
                "dataloader_num_workers": args.dataloader_num_workers,
                "bf16": args.bf16,
                "optim": str(args.optim),
            }

    return StepTimer()


def _stage_module(stage: str):
    """The `occ_hf.train` script of `stage` (its `make_parser` and `main`)."""
    from occ_hf.train import mpo, sft

    return {"sft": sft, "mpo": mpo}[stage]


def _stock_trainer(spec: dict, batch_size: int | None):
    """TRL's trainer with the recipe's hyper-parameters and TRL's defaults for everything else, at `batch_size` rows a
    step (the recipe's global batch when `None`)."""
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import occ_hf  # noqa: F401  (registers the dataset builder and the model classes)

    stage = spec["stage"]
    dataset = load_dataset("occ-obman-cot", DATASET_CONFIG[stage], data_dir=spec["data_dir"], split="train")
    model = AutoModelForImageTextToText.from_pretrained(spec["model"], dtype=torch.float32)  # TRL's default dtype
    model.model.vision_tower.requires_grad_(False)
    processor = AutoProcessor.from_pretrained(spec["model"])
    # The hyper-parameters `occ-hf train` would use for this recipe (its config's defaults included), so that the runs
    # train the same function and differ in the speed settings only.
    ours = _stage_module(stage).make_parser().parse_args_and_config(["--config", str(ROOT / spec["recipe"])])[1]
    if batch_size is None:
        batch_size = ours.per_device_train_batch_size * ours.gradient_accumulation_steps
    keys = ("learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2")
    keys += ("max_grad_norm", "max_length", "seed")
    common = {key: getattr(ours, key) for key in keys}
    common |= {
        "output_dir": spec["output_dir"],
        "per_device_train_batch_size": batch_size,
        "max_steps": spec["steps"],
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": spec["device"] == "cpu",
        "bf16": spec["device"] != "cpu",
    }
    if stage == "sft":
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(assistant_only_loss=ours.assistant_only_loss, **common)
        return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor)
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(loss_type=ours.loss_type, loss_weights=ours.loss_weights, beta=ours.beta, **common)
    return DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor)


def _ours(spec: dict, recipe: dict, overrides: dict) -> None:
    """`occ-hf train <stage>` on the shipped recipe with only the model, data, output and steps replaced (and
    `overrides`, the keys of a `ours+KEY=VALUE` run)."""
    import yaml

    recipe = dict(recipe) | overrides
    recipe["model_name_or_path"] = spec["model"]
    recipe["datasets"] = [dict(entry, data_dir=spec["data_dir"]) for entry in recipe["datasets"]]
    recipe |= {
        "output_dir": spec["output_dir"],
        "max_steps": spec["steps"],
        "logging_steps": 1,
        "save_strategy": "no",
        "push_to_hub": False,
    }
    if spec["device"] == "cpu":
        recipe |= {"use_cpu": True, "bf16": False}
    recipe_path = Path(spec["output_dir"]) / "recipe.yaml"
    recipe_path.parent.mkdir(parents=True, exist_ok=True)
    recipe_path.write_text(yaml.safe_dump(recipe))
    script = _stage_module(spec["stage"])
    script.main(*script.make_parser().parse_args_and_config(["--config", str(recipe_path)]))


def run_worker(run: str, spec: dict) -> dict:
    """Trains one run in this process and returns its step times, losses and peak memory."""
    import torch
    import transformers.trainer
    import yaml

    record: dict = {"run": run, "step_ends": [], "losses": []}
    transformers.trainer.DEFAULT_CALLBACKS.append(_timing_callback(record, spec.get("profile")))
    recipe = yaml.safe_load((ROOT / spec["recipe"]).read_text())
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    kind, *settings = run.split("+")
    if kind == "ours":
        _ours(spec, recipe, {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in settings)})
    else:
        trainer = _stock_trainer(spec, 8 if kind == "stock-b8" else None)
        trainer.train()
    record["wall_s"] = time.perf_counter() - started
    record["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return record


# ---------------------------------------------------------------------------------------------- the parent process


def measured_peak_flops(device: str) -> float | None:
    """FLOP/s of an 8192^3 bf16 matmul on `device` (None on CPU: MFU is a GPU figure)."""
    import torch

    if not device.startswith("cuda"):
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    iterations = 20
    started = time.perf_counter()
    for _ in range(iterations):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192**3 * iterations / (time.perf_counter() - started)


def model_flops_per_sample(model_dir: str, data_dir: str, stage: str) -> dict:
    """Parameters of the three parts and the tokens of a processed row; FLOPs of one training sample (SFT formula)."""
    import torch
    from datasets import load_dataset
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    import occ_hf  # noqa: F401

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    vision = sum(p.numel() for p in model.model.vision_tower.parameters())
    projector = sum(p.numel() for p in model.model.multi_modal_projector.parameters())
    language = sum(p.numel() for p in model.model.language_model.parameters()) + model.lm_head.weight.numel()
    processor = AutoProcessor.from_pretrained(model_dir)
    rows = load_dataset("occ-obman-cot", DATASET_CONFIG[stage], data_dir=data_dir, split="train").select(range(8))
    lengths = []
    for row in rows:
        messages = row["messages"] if stage == "sft" else row["prompt"] + row["chosen"]
        images = row["images"] if "images" in row else [row["image"]]
        content = processor.apply_chat_template(messages, tokenize=False)
        lengths.append(processor(text=content, images=images, return_tensors="pt")["input_ids"].shape[1])
    vision_config = config.vision_config
    patches = (vision_config.image_size[0] // vision_config.patch_size[0]) * (
        vision_config.image_size[1] // vision_config.patch_size[1]
    )
    image_tokens = config.image_seq_length
    tokens = sum(lengths) / len(lengths)
    flops = 6 * language * tokens + 6 * projector * image_tokens + 2 * vision * patches
    return {
        "parameters": {"vision": vision, "projector": projector, "language_model": language},
        "tokens_per_sample": tokens,
        "image_tokens": image_tokens,
        "patches": patches,
        "flops_per_sample": flops,
    }


def prepare(args, work_dir: Path) -> tuple[str, str]:
    """The model (tiny, or random with the real shape) and a generated train split in `work_dir`."""
    from occ_hf.obman import generate_obman_split

    model_dir = work_dir / f"model-{args.shape}"
    if not (model_dir / "config.json").exists():
        if args.shape == "tiny":
            from occ_hf.models.occ_internvl.tiny_occ_internvl import TinyOccInternVLConfig, init_tiny_checkpoint

            init_tiny_checkpoint(TinyOccInternVLConfig(output_dir=str(model_dir)))
        else:
            from real_shape import build_real_shape

            # fp32 on disk: TRL's ModelConfig loads fp32 by default, and each recipe says its own dtype.
            build_real_shape(str(model_dir), args.shape, args.device, dtype="float32")
    data_dir = work_dir / "obman"
    if not (data_dir / "train").exists():
        generate_obman_split(data_dir, n=args.num_samples, seed=0, split="train", num_proc=min(os.cpu_count(), 16))
    return str(model_dir), str(data_dir)


def summarize(record: dict, warmup: int, flops_per_sample: float, peak: float | None) -> dict:
    ends = record["step_ends"]
    timed = ends[warmup:]
    seconds = timed[-1] - timed[0] if len(timed) > 1 else float("nan")
    rate = record["global_batch"] * (len(timed) - 1) / seconds
    return {
        "run": record["run"],
        "args": record["args"],
        "samples_per_s": rate,
        "step_s": seconds / (len(timed) - 1),
        "mfu": rate * flops_per_sample / peak if peak else None,
        "peak_memory_gib": record["peak_memory_gib"],
        "wall_s": record["wall_s"],
        "losses": record["losses"],
    }


def main(argv=None) -> dict:
    args = make_parser().parse_args(argv)
    for run in args.runs:
        if run.split("+")[0] not in RUNS or (run.split("+")[0] != "ours" and "+" in run):
            raise SystemExit(f"--runs {run}: a run is stock-b8, stock, ours or ours+KEY=VALUE+...")
    if args.worker:
        spec = json.loads(Path(args.spec).read_text())
        record = run_worker(args.worker, spec)
        Path(spec["result"]).write_text(json.dumps(record))
        return record
    tiny = args.shape == "tiny"
    args.steps = args.steps or (4 if tiny else 30)
    args.warmup = args.warmup if args.warmup is not None else (1 if tiny else 5)
    args.num_samples = args.num_samples or (16 if tiny else 256)
    with tempfile.TemporaryDirectory() as scratch:
        work_dir = Path(args.work_dir or scratch)
        work_dir.mkdir(parents=True, exist_ok=True)
        model_dir, data_dir = prepare(args, work_dir)
        shape = model_flops_per_sample(model_dir, data_dir, args.stage)
        peak = measured_peak_flops(args.device)
        results = []
        for index, run in enumerate(args.runs):
            spec = {
                "profile": str(work_dir / f"run-{index}.profile.txt") if args.profile else None,
                "stage": args.stage,
                "device": args.device,
                "model": model_dir,
                "data_dir": data_dir,
                "recipe": RECIPES[(args.stage, args.shape)],
                "steps": args.steps,
                "output_dir": str(work_dir / f"run-{index}"),
                "result": str(work_dir / f"run-{index}.json"),
            }
            spec_path = work_dir / f"run-{index}.spec.json"
            spec_path.write_text(json.dumps(spec))
            command = [sys.executable, __file__, "--worker", run, "--spec", str(spec_path)]
            subprocess.run(command, check=True, cwd=work_dir)
            record = json.loads(Path(spec["result"]).read_text())
            results.append(summarize(record, args.warmup, shape["flops_per_sample"], peak))
            done = results[-1]
            # Printed as each run ends, so that a run cut short by a time limit still leaves the earlier figures.
            print(
                f"[{run}] {done['samples_per_s']:.1f}/s, step {done['step_s']:.3f} s, MFU "
                f"{done['mfu'] if done['mfu'] is None else round(done['mfu'], 3)}, peak {done['peak_memory_gib']} GiB,"
                f" losses {[round(loss, 4) for _, loss in done['losses']]}",
                flush=True,
            )
    import torch
    import transformers
    import trl

    report = {
        "stage": args.stage,
        "shape": args.shape,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu",
        "date": time.strftime("%Y-%m-%d"),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
        "steps": args.steps,
        "warmup": args.warmup,
        "peak_flops": peak,
        "model": shape,
        "runs": results,
    }
    unit = "pairs/s" if args.stage == "mpo" else "samples/s"
    base = results[0]["samples_per_s"]
    print(f"{args.stage} at {args.shape} shape on {report['device']} ({shape['tokens_per_sample']:.0f} tokens a row)")
    print(f"| run | batch x accum | ckpt | workers | {unit} | x {results[0]['run']} | MFU | peak GiB | last loss |")
    print("|---|---|---|---|---|---|---|---|---|")
    for result in results:
        a = result["args"]
        mfu = f"{result['mfu']:.1%}" if result["mfu"] is not None else "-"
        memory = f"{result['peak_memory_gib']:.1f}" if result["peak_memory_gib"] is not None else "-"
        print(
            f"| {result['run']} | {a['per_device_train_batch_size']} x {a['gradient_accumulation_steps']} | "
            f"{a['gradient_checkpointing']} | {a['dataloader_num_workers']} | {result['samples_per_s']:.1f} | "
            f"{result['samples_per_s'] / base:.2f} | {mfu} | {memory} | {result['losses'][-1][1]:.4f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
