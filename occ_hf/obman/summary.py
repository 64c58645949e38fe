"""Summaries of an ObMan split read through `ObManSplit`: counts per class, occlusion distribution, skips.

```python
summary = summarize_split(ObManSplit("data/obman", "test", on_unknown_class="skip"))
print(format_summary(summary))
```
"""

from collections import Counter

import numpy as np

from .classes import OCC_CLASSES
from .reader import ObManSplit


__all__ = ["OCCLUSION_BINS", "format_summary", "summarize_split"]

# Edges of the occlusion levels used in summaries and, later, in per-occlusion accuracy.
OCCLUSION_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


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
