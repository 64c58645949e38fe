"""The main job on its built-in default: `occ-hf demo` (the README's first command).

End to end on a generated ObMan-format root, each step through the same code users run on real data:

1. generate a train and a test split (`occ-hf synth-obman`) and summarise them with the ObMan reader;
2. render the 3D view of every test sample from its known mesh (`occ-hf views render`, the oracle reconstruction);
3. build `occ-obman-cot` (`reflection`, `preference` and `test` configs) and export it as parquet with its card
   (`occ-hf build-dataset`);
4. write a tiny random OccInternVL checkpoint (`occ-hf init-tiny`);
5. run the three stages on the test split and score Description / Reflection / Decision (`occ-hf eval --model`).

Training (SFT1 -> SFT2 -> MPO) between steps 4 and 5 comes with the training issue; until then step 5 reports the
untrained model, the "before" figures.

```bash
occ-hf demo --output_dir runs/demo
```
"""

import json
from dataclasses import dataclass, field
from pathlib import Path


__all__ = ["DemoConfig", "run_demo"]


@dataclass
class DemoConfig:
    r"""
    Configuration of `occ-hf demo`.

    Parameters:
        output_dir (`str`, *optional*, defaults to `"runs/demo"`):
            Where everything goes: `obman/` (the generated root), `views/`, `dataset/`, `tiny/`, `eval-before/` and
            `summary.json`.
        num_train (`int`, *optional*, defaults to `256`), num_test (`int`, *optional*, defaults to `64`):
            Sizes of the generated splits.
        seed (`int`, *optional*, defaults to `0`):
            Seed of the whole run.
        num_proc (`int`, *optional*, defaults to `2`):
            Worker processes for generation.
    """

    output_dir: str = field(default="runs/demo", metadata={"help": "Where the demo writes its files."})
    num_train: int = field(default=256, metadata={"help": "Samples in the generated train split."})
    num_test: int = field(default=64, metadata={"help": "Samples in the generated test split."})
    seed: int = field(default=0, metadata={"help": "Seed of the whole run."})
    num_proc: int = field(default=2, metadata={"help": "Worker processes for generation."})


def run_demo(config: DemoConfig) -> dict:
    """Runs the demo and returns its summary (also written to `summary.json`)."""
    from .data.build import BuildDatasetConfig, build_dataset
    from .eval import EvalConfig, format_report_markdown, run_eval
    from .models.occ_internvl.tiny_occ_internvl import TinyOccInternVLConfig, init_tiny_checkpoint
    from .obman import ObManSplit, format_summary, generate_obman_split, summarize_split
    from .views import GroundTruthMesh, render_split_views

    output_dir = Path(config.output_dir)
    obman_root = output_dir / "obman"
    summary: dict = {"splits": {}}

    print("== 1. ObMan-format splits")
    for split, n in (("train", config.num_train), ("test", config.num_test)):
        written = generate_obman_split(obman_root, n=n, seed=config.seed, split=split, num_proc=config.num_proc)
        split_summary = summarize_split(ObManSplit(obman_root, split, shapenet_root=written.shapenet_root))
        print(format_summary(split_summary))
        summary["splits"][split] = split_summary

    print("== 2. 3D views of the test split (known meshes)")
    test_split = ObManSplit(obman_root, "test", shapenet_root=obman_root / "ShapeNetCore.v2")
    views = render_split_views(test_split, GroundTruthMesh(), output_dir / "views")
    summary["views"] = {"rendered": len(views.rendered), "missing": views.missing}
    print(f"rendered {len(views.rendered)} views, {len(views.missing)} missing")

    print("== 3. occ-obman-cot")
    dataset_dir = build_dataset(
        BuildDatasetConfig(
            obman_root=str(obman_root),
            out=str(output_dir / "dataset"),
            config="reflection,preference,test",
            views_dir=str(output_dir / "views"),
            cache_dir=str(output_dir / "hf_cache"),
        )
    )
    summary["dataset"] = str(dataset_dir)
    print(f"wrote {dataset_dir}")

    print("== 4. A tiny OccInternVL")
    model, _ = init_tiny_checkpoint(TinyOccInternVLConfig(output_dir=str(output_dir / "tiny"), seed=config.seed))
    summary["model"] = {"path": str(output_dir / "tiny"), "parameters": model.num_parameters()}
    print(f"{model.num_parameters():,} parameters")

    print("== 5. Description / Reflection / Decision on the test split (untrained: the 'before' figures)")
    report, paths = run_eval(
        EvalConfig(
            model=str(output_dir / "tiny"),
            dataset=str(dataset_dir),
            dataset_config="test",
            split="test",
            output_dir=str(output_dir / "eval-before"),
            device="cpu",
        )
    )
    print(format_report_markdown(report))
    summary["eval_before"] = {name: str(path) for name, path in paths.items()}

    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"Wrote {output_dir}")
    return summary
