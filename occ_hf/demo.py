"""The main job on its built-in default: `occ-hf demo` (the README's first command).

End to end on a generated ObMan-format root, each step through the same code users run on real data; the numbers
are those it prints:

1. generate a train and a test split (`occ-hf synth-obman`) and summarise them with the ObMan reader;
2. render the 3D view of every sample from its known mesh (`occ-hf views render`, the oracle reconstruction);
3. build `occ-obman-cot` (`description`, `decision`, `test`) and export it as parquet with its card
   (`occ-hf build-dataset`); training and evaluation read that exported folder, as they would read the dataset
   from the Hub;
4. write a tiny random OccInternVL checkpoint (`occ-hf init-tiny`) and score it (the "before" figures);
5. SFT1: the class question on the images and on the training views (`description` + `decision`), then score it;
6. clarity labels as the seed makes them ("No." where SFT1 answered wrong, from its answers on each split),
   balanced ("Yes." and "No." rows down-sampled to the same count, the builder's `balance_clarity`) and every
   config rebuilt with them (`reflection` and `preference` too);
7. SFT2 (the clarity question after the class question: `reflection`, with `decision` kept in the mix) and MPO
   (the clarity preference pairs: `preference`), each scored after training;
8. write `report.md`, `report.json` and `training_progress.png`.

Each trained stage is trained with `occ-hf train`'s own code on TRL's trainers, and scored on the held-out split
as `occ-hf eval` scores (Description / Reflection / Decision, report in `<stage>/eval/`, whose figures go on the
stage's model card) and on the 3D views alone (`<stage>/eval-view/`). The report puts beside each stage's figures
the baselines a reader needs: chance, the best constant clarity answer, the view-only accuracy and how many images
went to their view; and it says what MPO changed.

The recipe differs from the seed's where the model is tiny and random: its vision tower trains (the seed freezes a
pretrained one), with a far higher learning rate than the seed's 4e-5; SFT1 processes its rows once before training
(`preprocess_images`), since it sees each image many times; and the 3D views stay in every SFT stage's rows, since a
tiny model trained on the images alone forgets the views that the decision stage asks about (the seed's pretrained
InternVL recognises rendered objects without that). benchmarks/README.md ("The demo") measures why the generated
images and the schedule are what they are.

```bash
occ-hf demo --output_dir runs/demo
occ-hf demo --num_train 256 --sft1_steps 200   # quicker, and closer to chance
```
"""

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path


__all__ = ["DemoConfig", "evaluate_stage", "run_demo", "train_stage"]

CHANCE = 1 / 8
"""Accuracy of a uniform guess among the eight OCC classes."""

_METRICS = ("description", "reflection", "decision")


@dataclass
class DemoConfig:
    r"""
    Configuration of `occ-hf demo`.

    > Parameters that control the data

    Parameters:
        output_dir (`str`, *optional*, defaults to `"runs/demo"`):
            Where everything goes: `obman/` (the generated root), `views/`, `dataset/`, the checkpoints `tiny/`,
            `sft1/`, `sft2/`, `mpo/` with their reports in `<checkpoint>/eval/` (and `eval-view/`, on the views
            alone), and `report.md` / `report.json` / `training_progress.png` / `summary.json`.
        num_train (`int`, *optional*, defaults to `1024`), num_test (`int`, *optional*, defaults to `256`):
            Sizes of the generated splits.
        min_distance (`float`, *optional*, defaults to `0.4`), max_distance (`float`, *optional*, defaults to `0.5`):
            Range of the objects' distance from the camera in the generated splits, in metres: nearer than
            synth-obman's default (0.6-0.8 m, about ObMan's), so that an object spans more of the tiny model's
            112 px input.
        max_roll (`float`, *optional*, defaults to `30.0`):
            Largest in-plane turn of the objects either side of upright, in degrees (synth-obman's default, 180,
            turns them any way, as ObMan's grasps do): a tiny model trained from scratch for minutes cannot learn a
            shape at every rotation.
        min_occlusion (`float`, *optional*, defaults to `0.0`), max_occlusion (`float`, *optional*, defaults to `0.5`):
            Range of the share of each object that the hand hides (synth-obman's default: 0.1-0.6).
        background (`str`, *optional*, defaults to `"plain"`):
            What the scenes are composited onto: a plain grey (synth-obman's default is a two-colour gradient).
            Every one of these departs from ObMan the same way for every class (no class cue); benchmarks/README.md
            ("The demo") measures what each is worth.
        seed (`int`, *optional*, defaults to `0`):
            Seed of the whole run (data, model, training).
        num_proc (`int`, *optional*, defaults to `2`):
            Worker processes for generation.

    > Parameters that control the training

    Parameters:
        sft1_steps (`int`, *optional*, defaults to `1200`), sft2_steps (`int`, *optional*, defaults to `600`),
        mpo_steps (`int`, *optional*, defaults to `40`):
            Optimizer steps of each stage; 0 skips the stage (the next starts from the previous checkpoint).
        batch_size (`int`, *optional*, defaults to `32`):
            Rows per step of the SFT stages (MPO takes half: each row is a chosen and a rejected answer).
        learning_rate (`float`, *optional*, defaults to `1e-3`):
            Peak learning rate of SFT1 and SFT2 (MPO takes a 200th): a random tiny model needs far more than the
            seed's 4e-5 for a pretrained one.
        device (`str`, *optional*, defaults to `"cpu"`):
            Where training and evaluation run (`cpu` or `cuda`); the demo is sized for 2 CPU cores.
    """

    output_dir: str = field(default="runs/demo", metadata={"help": "Where the demo writes its files."})
    num_train: int = field(default=1024, metadata={"help": "Samples in the generated train split."})
    num_test: int = field(default=256, metadata={"help": "Samples in the generated test split."})
    min_distance: float = field(default=0.4, metadata={"help": "Nearest object distance from the camera (m)."})
    max_distance: float = field(default=0.5, metadata={"help": "Farthest object distance from the camera (m)."})
    max_roll: float = field(default=30.0, metadata={"help": "Largest in-plane turn of an object from upright (deg)."})
    min_occlusion: float = field(default=0.0, metadata={"help": "Lowest share of an object the hand hides."})
    max_occlusion: float = field(default=0.5, metadata={"help": "Highest share of an object the hand hides."})
    background: str = field(default="plain", metadata={"help": "plain (grey) or gradient (two random colours)."})
    seed: int = field(default=0, metadata={"help": "Seed of the whole run."})
    num_proc: int = field(default=2, metadata={"help": "Worker processes for generation."})
    sft1_steps: int = field(default=1200, metadata={"help": "Steps of SFT1 (class question; 0 skips)."})
    sft2_steps: int = field(default=600, metadata={"help": "Steps of SFT2 (+ clarity question; 0 skips)."})
    mpo_steps: int = field(default=40, metadata={"help": "Steps of MPO (clarity preference pairs; 0 skips)."})
    batch_size: int = field(default=32, metadata={"help": "Rows per SFT step (MPO: half)."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak lr of SFT1 and SFT2 (MPO: a 200th)."})
    device: str = field(default="cpu", metadata={"help": "cpu or cuda, for training and evaluation."})

    def __post_init__(self):
        # Checked here, where the user gives them, so that a wrong value stops the demo before minutes of generation.
        from .obman.synth import BACKGROUNDS

        for name in ("num_train", "num_test", "batch_size", "num_proc"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}.")
        for name in ("sft1_steps", "sft2_steps", "mpo_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be 0 (skip the stage) or more, got {getattr(self, name)}.")
        if not 0.0 < self.min_distance <= self.max_distance:
            raise ValueError(
                f"--min_distance and --max_distance must satisfy 0 < min <= max (metres), got "
                f"{self.min_distance} and {self.max_distance}."
            )
        if not 0.0 <= self.min_occlusion <= self.max_occlusion < 1.0:
            raise ValueError(
                f"--min_occlusion and --max_occlusion must satisfy 0 <= min <= max < 1, got {self.min_occlusion} "
                f"and {self.max_occlusion}."
            )
        if not 0.0 <= self.max_roll <= 180.0:
            raise ValueError(f"--max_roll must be between 0 and 180 (degrees), got {self.max_roll}.")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"--background must be one of {', '.join(BACKGROUNDS)}, got {self.background!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"--learning_rate must be positive, got {self.learning_rate}.")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"--device must be cpu or cuda (or cuda:N), got {self.device!r}.")


def run_demo(config: DemoConfig) -> dict:
    """Runs the demo and returns its summary (also written to `summary.json`)."""
    from .data.build import BuildDatasetConfig, build_dataset
    from .models.occ_internvl.tiny_occ_internvl import TinyOccInternVLConfig, init_tiny_checkpoint
    from .obman import ObManSplit, format_summary, generate_obman_split, summarize_split
    from .train.model_card import add_eval_to_card
    from .views import GroundTruthMesh, render_split_views

    started = time.perf_counter()
    output_dir = Path(config.output_dir)
    obman_root = output_dir / "obman"
    summary: dict = {"config": vars(config), "splits": {}, "views": {}, "stages": {}, "seconds": {}}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        summary["seconds"][name] = round(now - since, 1)
        return now

    print("== 1. ObMan-format splits")
    clock = time.perf_counter()
    for split, n in (("train", config.num_train), ("test", config.num_test)):
        written = generate_obman_split(
            obman_root,
            n=n,
            seed=config.seed,
            split=split,
            occlusion_range=(config.min_occlusion, config.max_occlusion),
            object_distance=(config.min_distance, config.max_distance),
            max_roll=config.max_roll,
            background=config.background,
            num_proc=config.num_proc,
            overwrite=True,
        )
        split_summary = summarize_split(ObManSplit(obman_root, split, shapenet_root=written.shapenet_root))
        print(format_summary(split_summary))
        summary["splits"][split] = split_summary
    clock = lap("generate", clock)

    print("== 2. 3D views (rendered from the known meshes)")
    for split in ("train", "test"):
        obman_split = ObManSplit(obman_root, split, shapenet_root=obman_root / "ShapeNetCore.v2")
        views = render_split_views(obman_split, GroundTruthMesh(), output_dir / "views", overwrite=True)
        summary["views"][split] = {"rendered": len(views.rendered), "missing": views.missing}
        print(f"{split}: rendered {len(views.rendered)} views, {len(views.missing)} missing")
    clock = lap("views", clock)

    def build(names: list[str], predictions: str | None = None, balance_clarity: str | None = None) -> Path:
        return build_dataset(
            BuildDatasetConfig(
                obman_root=str(obman_root),
                out=str(output_dir / "dataset"),
                config=",".join(names),
                views_dir=str(output_dir / "views"),
                cache_dir=str(output_dir / "hf_cache"),
                predictions=predictions,
                balance_clarity=balance_clarity,
                # The demo owns its folder: the SFT2 build replaces the SFT1 one, and a rerun replaces both.
                overwrite=True,
            )
        )

    print("== 3. occ-obman-cot for SFT1")
    dataset_dir = build(["description", "decision", "test"])
    summary["dataset"] = str(dataset_dir)
    print(f"wrote {dataset_dir}")
    clock = lap("dataset", clock)

    print("== 4. A tiny OccInternVL, untrained")
    # The demo owns its folder: a rerun replaces its tiny checkpoint.
    tiny_config = TinyOccInternVLConfig(output_dir=str(output_dir / "tiny"), seed=config.seed, overwrite=True)
    model, _ = init_tiny_checkpoint(tiny_config)
    summary["model"] = {"path": str(output_dir / "tiny"), "parameters": model.num_parameters()}
    print(f"{model.num_parameters():,} parameters")
    summary["stages"]["before"] = evaluate_stage(output_dir / "tiny", dataset_dir, config)
    clock = lap("eval-before", clock)

    checkpoint = output_dir / "tiny"
    if config.sft1_steps > 0:
        print(f"== 5. SFT1: {config.sft1_steps} steps of the class question, on the images and the training views")
        checkpoint, _ = train_stage("sft1", checkpoint, dataset_dir, ["description", "decision"], config)
        clock = lap("sft1", clock)
        summary["stages"]["sft1"] = evaluate_stage(checkpoint, dataset_dir, config)
        add_eval_to_card(checkpoint)
        clock = lap("eval-sft1", clock)

    if config.sft2_steps > 0 or config.mpo_steps > 0:
        print("== 6. Clarity labels from SFT1's answers (the seed's rule: 'No.' where stage 1 was wrong)")
        predictions, balance, configs = None, None, ["description", "decision", "reflection", "preference", "test"]
        if config.sft1_steps > 0:
            train_eval = _evaluate(checkpoint, dataset_dir, checkpoint / "eval-train", config, split="train")
            summary["sft1_train_accuracy"] = train_eval["metrics"]["description"]["accuracy"]
            clarity_dir = output_dir / "clarity"
            clarity_dir.mkdir(exist_ok=True)
            for split, eval_dir in (("train", "eval-train"), ("test", "eval")):
                shutil.copyfile(checkpoint / eval_dir / "predictions.json", clarity_dir / f"{split}.json")
            predictions = str(clarity_dir / "{split}.json")
            if 0.0 < summary["sft1_train_accuracy"] < 1.0:
                # As many "Yes." as "No." rows, as the seed balances its preference pairs: otherwise SFT2 learns the
                # answer of the majority (SFT1's accuracy decides which) and says it for every image.
                balance = "downsample"
            else:
                # Every training image got the same clarity label, so there is no pair to prefer one answer over the
                # other (too few samples or steps for SFT1 to be right on some and wrong on others), nor a balance.
                configs.remove("preference")
                summary["skipped"] = {
                    "mpo": f"SFT1 answered {summary['sft1_train_accuracy']:.0%} of the train split right"
                }
                print(f"MPO will be skipped: no preference pairs ({summary['skipped']['mpo']}).")
        else:
            print("SFT1 was skipped: clarity falls back to the occlusion threshold.")
        summary["clarity"] = {"source": "SFT1's answers" if predictions else "occlusion", "balance": balance or "none"}
        # Every config is rebuilt, not just the two that need the labels: each carries a `clear` column, and the
        # exported folder (its card lists the configs of one build) must say one thing about clarity.
        dataset_dir = build(configs, predictions, balance)
        summary["clarity"]["rows"] = _clarity_rows(dataset_dir)
        clock = lap("dataset-clarity", clock)

        for stage, stage_configs, steps in (
            ("sft2", ["reflection", "decision"], config.sft2_steps),
            ("mpo", ["preference"], config.mpo_steps),
        ):
            if steps <= 0 or stage_configs[0] not in configs:
                continue
            print(f"== 7. {stage.upper()}: {steps} steps on {' + '.join(stage_configs)}")
            checkpoint, trainer = train_stage(stage, checkpoint, dataset_dir, stage_configs, config)
            clock = lap(stage, clock)
            summary["stages"][stage] = evaluate_stage(checkpoint, dataset_dir, config)
            add_eval_to_card(checkpoint)
            if stage == "mpo":
                summary["mpo_effect"] = _mpo_effect(output_dir, trainer.state.log_history)
            clock = lap(f"eval-{stage}", clock)

    print("== 8. Report")
    summary["seconds"]["total"] = round(time.perf_counter() - started, 1)
    summary["chance"] = CHANCE
    summary["final_checkpoint"] = str(checkpoint)
    _write_report(summary, output_dir)
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print((output_dir / "report.md").read_text())
    print(f"Wrote {output_dir} in {summary['seconds']['total']:.0f} s")
    return summary


def train_stage(stage: str, start: Path, dataset_dir: Path, configs: list[str], config: DemoConfig):
    """Trains one stage (`sft1`, `sft2` or `mpo`) of the demo's recipe with the `sft` or `mpo` script's `main` on
    configs of the exported dataset folder; returns the checkpoint folder (`<output_dir>/<stage>`) and the trainer."""
    from trl import DatasetMixtureConfig, ModelConfig
    from trl.scripts.utils import DatasetConfig

    from .train import OccMPOConfig, OccScriptArguments, OccSFTConfig

    mixture = DatasetMixtureConfig(
        datasets=[DatasetConfig(path=str(dataset_dir), name=name, split="train") for name in configs]
    )
    # A random tiny model has no pretrained vision tower to keep, so it trains too (the seed freezes a trained one).
    script_args = OccScriptArguments(freeze_vision=False)
    model_args = ModelConfig(model_name_or_path=str(start))
    output_dir = Path(config.output_dir) / stage
    steps = {"sft1": config.sft1_steps, "sft2": config.sft2_steps, "mpo": config.mpo_steps}[stage]
    shared = {
        "output_dir": str(output_dir),
        "max_steps": steps,
        "adam_beta2": 0.98,
        "bf16": False,
        "use_cpu": config.device == "cpu",
        "activation_checkpointing": False,
        "dataloader_num_workers": 0,
        "logging_steps": max(steps // 10, 1),
        "save_strategy": "no",
        "report_to": "none",
        "seed": config.seed,
        "max_length": 512,
    }
    if stage == "mpo":
        from .train.mpo import main

        training_args = OccMPOConfig(
            # Higher (a 50th was measured) shifts every clarity answer at once: SFT2 leaves them close to even.
            learning_rate=config.learning_rate / 200,
            warmup_steps=0.1,
            per_device_train_batch_size=max(config.batch_size // 2, 1),
            **shared,
        )
    else:
        from .train.sft import main

        training_args = OccSFTConfig(
            learning_rate=config.learning_rate,
            warmup_steps=50 if stage == "sft1" else 0.1,
            per_device_train_batch_size=config.batch_size,
            preprocess_images=True,
            augment_images=True,
            **shared,
        )
    trainer = main(script_args, training_args, model_args, mixture)
    return output_dir, trainer


def evaluate_stage(checkpoint: Path, dataset_dir: Path, config: DemoConfig) -> dict:
    """Scores `checkpoint` on the held-out split as the seed does (report in `checkpoint/eval/`, where its card reads
    it) and on the 3D views alone (`checkpoint/eval-view/`); returns the figures and their baselines.

    Keys: `description`, `reflection`, `decision` (the seed's metrics); `best_constant` (the Reflection of a model that
    always gives the better of the two clarity answers: max(Description, 1 - Description)); `view_only` (the
    Description asked on the views, what an image sent to its view can get); `clear_share` and `sent_to_view` (the
    shares of test images answered "Yes." and "No."); `report`.
    """
    report = _evaluate(checkpoint, dataset_dir, checkpoint / "eval", config)
    view_report = _evaluate(checkpoint, dataset_dir, checkpoint / "eval-view", config, view_only=True)
    metrics = {name: report["metrics"][name]["accuracy"] for name in _METRICS}
    breakdown = report["decision_breakdown"]
    num_images = report["num_images"]
    sent = breakdown["unclear_view_right"] + breakdown["unclear_view_wrong"] + breakdown["unclear_no_view"]
    metrics.update(
        best_constant=max(metrics["description"], 1 - metrics["description"]),
        view_only=view_report["metrics"]["description"]["accuracy"],
        clear_share=(breakdown["clear_right"] + breakdown["clear_wrong"]) / num_images,
        sent_to_view=sent / num_images,
        report=str(checkpoint / "eval" / "report.md"),
    )
    print(
        "   "
        + "  ".join(f"{name} {metrics[name]:.3f}" for name in _METRICS)
        + f"  | view only {metrics['view_only']:.3f}, sent to view {metrics['sent_to_view']:.0%}"
    )
    return metrics


def _evaluate(
    checkpoint: Path, dataset_dir: Path, output_dir: Path, config: DemoConfig, split: str = "test", view_only=False
) -> dict:
    """Runs `occ-hf eval --model checkpoint` on a split of the exported `test` config; returns its report."""
    from .eval import EvalConfig, run_eval

    report, _ = run_eval(
        EvalConfig(
            model=str(checkpoint),
            dataset=str(dataset_dir),
            dataset_config="test",
            split=split,
            output_dir=str(output_dir),
            batch_size=64,
            device=config.device,
            view_only=view_only,
        )
    )
    return report


def _clarity_rows(dataset_dir: Path) -> dict:
    """How many "Yes." and "No." clarity answers the rebuilt reflection config holds, per split."""
    from datasets import load_dataset

    reflection = load_dataset(str(dataset_dir), "reflection")
    return {
        split: {"yes": sum(rows["clear"]), "no": len(rows) - sum(rows["clear"])} for split, rows in reflection.items()
    }


def _mpo_effect(output_dir: Path, log_history: list[dict]) -> dict:
    """What MPO changed: the test images whose clarity answer differs from SFT2's, and DPO's reward figures on its
    training pairs at its first and last logged step (accuracy: the share of pairs where the chosen answer wins)."""
    before = json.loads((output_dir / "sft2" / "eval" / "predictions.json").read_text())
    after = json.loads((output_dir / "mpo" / "eval" / "predictions.json").read_text())
    changed = sum(before[i].get("clarity") != after.get(i, {}).get("clarity") for i in before)
    logged = [entry for entry in log_history if "rewards/accuracies" in entry]
    effect = {"clarity_changed": changed, "num_images": len(before)}
    if logged:
        for name in ("rewards/accuracies", "rewards/margins"):
            effect[name] = [round(logged[0][name], 4), round(logged[-1][name], 4)]
    return effect


def _write_report(summary: dict, output_dir: Path) -> None:
    """`report.md`, `report.json` and `training_progress.png`: the metrics after each stage beside their baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = summary["stages"]
    names = list(stages)
    figure, (axes, shares) = plt.subplots(2, 1, figsize=(6.5, 6), sharex=True, height_ratios=[3, 1.3])
    for name in _METRICS:
        axes.plot(names, [stages[stage][name] for stage in names], marker="o", label=name.capitalize())
    axes.plot(
        names,
        [stages[s]["view_only"] for s in names],
        color="tab:green",
        linestyle=":",
        label="view only (Q1 on the view)",
    )
    axes.plot(
        names,
        [stages[s]["best_constant"] for s in names],
        color="tab:orange",
        linestyle=":",
        label="best constant clarity answer",
    )
    axes.axhline(CHANCE, color="grey", linestyle="--", label="chance (1/8)")
    axes.set_ylim(0, 1)
    axes.set_ylabel("accuracy, held-out test split")
    axes.set_title("occ-hf demo: the tiny OccInternVL through training")
    axes.legend(fontsize="x-small", ncol=2)
    clear = [stages[s]["clear_share"] for s in names]
    sent = [stages[s]["sent_to_view"] for s in names]
    shares.bar(names, clear, color="tab:blue", label='answered "Yes." (kept)')
    shares.bar(names, sent, bottom=clear, color="tab:red", label='answered "No." (sent to the view)')
    shares.set_ylim(0, 1)
    shares.set_ylabel("share of images")
    shares.legend(fontsize="x-small", loc="upper left")
    figure.tight_layout()
    figure.savefig(output_dir / "training_progress.png", dpi=100)
    plt.close(figure)

    num_test = summary["splits"]["test"]["num_read"]
    lines = [
        "# occ-hf demo",
        "",
        f"A tiny OccInternVL ({summary['model']['parameters']:,} parameters) trained from random weights on "
        f"{summary['splits']['train']['num_read']} generated ObMan-format samples, scored on {num_test} held-out "
        "ones. Metrics as the seed computes them; each row links to its full report. Beside them, the baselines: "
        f"chance ({CHANCE:.3f}); the best constant clarity answer, max(Description, 1 - Description), the Reflection "
        "of a model that gives one clarity answer to every image; the view-only accuracy (the class question asked "
        "on the 3D view alone), what Decision gets for an image sent to its view; and the shares of images the "
        "model called clear (kept its description) and unclear (sent to the view).",
        "",
        "| checkpoint | Description | Reflection | best constant | Decision | view only | clear | sent to view "
        "| report |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for stage, metrics in stages.items():
        report = Path(metrics["report"]).relative_to(output_dir)
        lines.append(
            f"| {stage} | {metrics['description']:.3f} | {metrics['reflection']:.3f} | {metrics['best_constant']:.3f} "
            f"| {metrics['decision']:.3f} | {metrics['view_only']:.3f} | {metrics['clear_share']:.0%} "
            f"| {metrics['sent_to_view']:.0%} | [{report.parent}/]({report}) |"
        )
    lines += [
        "",
        "Before SFT2 the model has not been taught the clarity question: its clarity answers do not parse (neither "
        "share counts them), and the seed's metric counts those images wrong in Reflection and Decision.",
    ]
    clarity = summary.get("clarity")
    if clarity:
        counts = ", ".join(f"{split} {c['yes']} Yes / {c['no']} No" for split, c in clarity.get("rows", {}).items())
        lines += [
            "",
            f'Clarity labels of SFT2 and MPO: from {clarity["source"]} ("No." where it was wrong), balance '
            f"`{clarity['balance']}`: {counts} rows of the reflection config.",
        ]
    effect = summary.get("mpo_effect")
    if effect:
        lines += ["", _mpo_sentence(effect, stages)]
    elif "mpo" in summary.get("skipped", {}):
        lines += ["", f"MPO was skipped: {summary['skipped']['mpo']}, so there were no preference pairs."]
    seconds = summary["seconds"]
    lines += [
        "",
        "![accuracy after each stage](training_progress.png)",
        "",
        "Time (s): " + ", ".join(f"{name} {value}" for name, value in seconds.items()) + ".",
    ]
    (output_dir / "report.md").write_text("\n".join(lines) + "\n")
    (output_dir / "report.json").write_text(
        json.dumps(
            {"stages": stages, "chance": CHANCE, "mpo_effect": effect, "clarity": clarity, "seconds": seconds},
            indent=2,
        )
        + "\n"
    )


def _mpo_sentence(effect: dict, stages: dict) -> str:
    """What MPO did, in words: the clarity answers it changed and the figures it moved, or that it moved none."""
    before, after = stages.get("sft2"), stages["mpo"]
    rewards = ""
    if "rewards/accuracies" in effect:
        (first, last), (margin_first, margin_last) = effect["rewards/accuracies"], effect["rewards/margins"]
        rewards = (
            f" On its training pairs the chosen clarity answer won {first:.0%} of the time at its first logged step "
            f"and {last:.0%} at its last (reward margin {margin_first:.3f} -> {margin_last:.3f})."
        )
    if effect["clarity_changed"] == 0:
        return (
            f"MPO changed no clarity answer on the {effect['num_images']} test images, so the figures are SFT2's: "
            "its steps at its learning rate moved the preference but not past any greedy answer." + rewards
        )
    moved = ""
    if before is not None:
        moved = (
            f": Reflection {before['reflection']:.3f} -> {after['reflection']:.3f}, Decision {before['decision']:.3f} "
            f"-> {after['decision']:.3f}, called clear {before['clear_share']:.0%} -> {after['clear_share']:.0%}"
        )
    return (
        f"MPO changed the clarity answer of {effect['clarity_changed']} of {effect['num_images']} test images{moved}."
        + rewards
    )
