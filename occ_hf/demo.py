"""The main job on its built-in default: `occ-hf demo` (the README's first command).

For now it generates a small ObMan-format root (a train and a test split, with meshes), reads both back with the
ObMan reader and prints their summaries; later stages (dataset, model, training, evaluation) extend it.

```bash
occ-hf demo --output_dir runs/demo
```
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from .obman import ObManSplit, format_summary, generate_obman_split, summarize_split


__all__ = ["DemoConfig", "run_demo"]


@dataclass
class DemoConfig:
    r"""
    Configuration of `occ-hf demo`.

    Parameters:
        output_dir (`str`, *optional*, defaults to `"runs/demo"`):
            Where the generated ObMan root (`obman/`) and the summary (`summary.json`) go.
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
    """Runs the demo and returns what it printed, as a dict (also written to `summary.json`)."""
    output_dir = Path(config.output_dir)
    obman_root = output_dir / "obman"
    report = {}
    for split, n in (("train", config.num_train), ("test", config.num_test)):
        written = generate_obman_split(obman_root, n=n, seed=config.seed, split=split, num_proc=config.num_proc)
        summary = summarize_split(ObManSplit(obman_root, split, shapenet_root=written.shapenet_root))
        print(format_summary(summary))
        report[split] = summary
    (output_dir / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"Wrote {obman_root} and {output_dir / 'summary.json'}")
    return report
