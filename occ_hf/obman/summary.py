"""Summaries of an ObMan split read through `ObManSplit`: counts per class, occlusion distribution, skips.

```python
summary = summarize_split(ObManSplit("data/obman", "test", on_unknown_class="skip"))
print(format_summary(summary))
print(format_summary(run_obman_summary(ObManSummaryConfig("data/obman", "test", on_unknown_class="skip"))))  # the same
```
"""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .classes import OCC_CLASSES
from .reader import ObManSplit


__all__ = ["OCCLUSION_BINS", "ObManSummaryConfig", "format_summary", "run_obman_summary", "summarize_split"]

# Edges of the occlusion levels used in summaries and, later, in per-occlusion accuracy.
OCCLUSION_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass
class ObManSummaryConfig:
    r"""
    Configuration of `occ-hf obman-summary ROOT`.

    Parameters:
        root (`str`): ObMan root holding `train/`, `val/`, `test/`.
        split (`str`, *optional*, defaults to `"test"`): Which split to read.
        shapenet_root (`str`, *optional*): ShapeNetCore.v2 root, to check that every mesh is there.
        on_unknown_class (`str`, *optional*, defaults to `"error"`): `error` or `skip` (counted) for non-OCC classes.
        on_bad_sample (`str`, *optional*, defaults to `"error"`): `error` or `skip` (counted) for unreadable files.
    """

    root: str = field(metadata={"help": "ObMan root holding train/, val/, test/."})
    split: str = field(default="test", metadata={"help": "Which split to read."})
    shapenet_root: str | None = field(default=None, metadata={"help": "ShapeNetCore.v2 root (checks meshes)."})
    on_unknown_class: str = field(default="error", metadata={"help": "error or skip (counted) for other classes."})
    on_bad_sample: str = field(default="error", metadata={"help": "error or skip (counted) for unreadable files."})


def run_obman_summary(config: ObManSummaryConfig) -> dict:
    """`occ-hf obman-summary`: [`summarize_split`] of the split that `config` names."""
    split = ObManSplit(
        config.root,
        config.split,
        shapenet_root=config.shapenet_root,
        on_unknown_class=config.on_unknown_class,
        on_bad_sample=config.on_bad_sample,
    )
    return summarize_split(split)


def summarize_split(split: ObManSplit) -> dict:
    """Reads every sample of `split` once and returns counts per class, occlusion statistics and skips."""
    classes: Counter[str] = Counter()
    occlusions = []
    sources: Counter[str] = Counter()
    for sample in split:
        classes[sample.class_name] += 1
        sources[sample.occlusion_source] += 1
        if sample.occlusion is not None:
            occlusions.append(sample.occlusion)
    occlusion = np.asarray(occlusions)
    histogram, _ = np.histogram(occlusion, bins=OCCLUSION_BINS)
    return {
        "split_dir": str(split.split_dir),
        "num_listed": len(split),
        "num_read": sum(classes.values()),
        "skipped": dict(split.skipped),
        "class_counts": {name: classes[name] for name in OCC_CLASSES},
        "occlusion_source": dict(sources),
        "occlusion_mean": float(occlusion.mean()) if occlusion.size else None,
        "occlusion_histogram": {
            f"{low:.1f}-{high:.1f}": int(count)
            for low, high, count in zip(OCCLUSION_BINS[:-1], OCCLUSION_BINS[1:], histogram, strict=True)
        },
    }


def format_summary(summary: dict) -> str:
    """Renders a [`summarize_split`] result as a short plain-text report."""
    lines = [
        f"ObMan split {summary['split_dir']}: {summary['num_read']} of {summary['num_listed']} samples read",
        f"  skipped: {summary['skipped'] or 'none'}",
        "  classes: " + ", ".join(f"{name} {count}" for name, count in summary["class_counts"].items()),
    ]
    if summary["occlusion_mean"] is not None:
        lines.append(f"  occlusion: mean {summary['occlusion_mean']:.3f} (from {summary['occlusion_source']})")
        lines.append("  occlusion levels: " + ", ".join(f"{k} {v}" for k, v in summary["occlusion_histogram"].items()))
    return "\n".join(lines)
