"""Writes a scored run (the dict of [`score_predictions`]) as `report.json`, `report.md` and PNG plots.

The last step of evaluation (predictions -> records -> metrics -> report): it renders the report dict and nothing
else, so a report re-read from `report.json` renders the same.

```python
paths = write_report(score_predictions(references, predictions), "runs/eval")
paths["confusion_matrix"]  # runs/eval/confusion_matrix.png
```

Plots are drawn on a bare `matplotlib.figure.Figure` with the Agg canvas: no pyplot global state and no display
backend, so reports can be written from worker processes and headless machines.
"""

import json
import os
from pathlib import Path

from .metrics import NO_ANSWER, OTHER_ANSWER
from .records import DECISION, DESCRIPTION, REFLECTION


__all__ = ["format_report_markdown", "write_report"]

_STAGE_TITLES = {DESCRIPTION: "Description", REFLECTION: "Reflection", DECISION: "Decision"}
_NOT_SCORED = {
    DESCRIPTION: "the predictions hold final answers only (the seed's {id: answer} format)",
    REFLECTION: "the predictions hold final answers only (the seed's {id: answer} format)",
    DECISION: "the predictions hold no answers on the 3D view (the seed's {id: {object, clarity}} format)",
}


def _percent(score: dict) -> str:
    return "-" if score["accuracy"] is None else f"{100 * score['accuracy']:.2f}%"


def _fraction(score: dict) -> str:
    return f"{score['correct']}/{score['total']}"


def _cell(score: dict) -> str:
    return f"{_percent(score)} ({_fraction(score)})"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def format_report_markdown(report: dict, plots: dict[str, str] | None = None) -> str:
    """The report as Markdown: metrics, where images end in the chain, per class, by occlusion, confusion."""
    stages = report["stages"]
    lines = [
        "# OCC-MLLM-CoT evaluation",
        "",
        f"Predictions: `{report['source']}`. Test images: {report['num_images']}, "
        f"with a prediction: {report['num_predicted']}.",
        "Metrics as the seed's `inferenceImageAcc.py` computes them: Description and Reflection over the images "
        "with a prediction, Decision over all test images (no prediction, no view or an unclear clarity is wrong).",
        *(
            [
                "Denominator `seed`: Description and Reflection also count the predicted ids outside the references, "
                "as wrong (they have no label here), as the seed's script divides by every prediction."
            ]
            if report.get("denominator") == "seed"
            else []
        ),
        "",
        "## Metrics",
        "",
    ]
    rows = []
    for stage in (DESCRIPTION, REFLECTION, DECISION):
        if stage in stages:
            score = report["metrics"][stage]
            rows.append(
                [_STAGE_TITLES[stage], f"{score['accuracy']:.4f}" if score["total"] else "-", _fraction(score)]
            )
        else:
            rows.append([_STAGE_TITLES[stage], "not scored", _NOT_SCORED[stage]])
    lines += _table(["metric", "accuracy", "correct / counted"], rows)
    if report["extra_predictions_ignored"]:
        lines += ["", f"Left out: {len(report['extra_predictions_ignored'])} predicted ids not among the references."]
    if report.get("extra_predictions_counted"):
        lines += [
            "",
            f"Counted as wrong in Description and Reflection (denominator `seed`): "
            f"{len(report['extra_predictions_counted'])} predicted ids not among the references.",
        ]
    if "decision_breakdown" in report:
        lines += ["", "## Where each image ends", ""]
        lines += _table(["outcome", "images"], [[key, value] for key, value in report["decision_breakdown"].items()])
    lines += ["", "## Per class", ""]
    classes = list(report["per_class"][stages[0]])
    lines += _table(
        ["class", *(_STAGE_TITLES[stage] for stage in stages)],
        [[name, *(_cell(report["per_class"][stage][name]) for stage in stages)] for name in classes],
    )
    lines += ["", "## By occlusion level", ""]
    bins = report["occlusion"][stages[0]]["bins"]
    occlusion_rows = [
        [label, *(_cell(report["occlusion"][stage]["scores"][i]) for stage in stages)] for i, label in enumerate(bins)
    ]
    unknown = [report["occlusion"][s]["unknown"] for s in stages]
    if any(score["total"] for score in unknown):
        occlusion_rows.append(["unknown", *(_cell(score) for score in unknown)])
    lines += _table(["occlusion", *(_STAGE_TITLES[stage] for stage in stages)], occlusion_rows)
    for stage, matrix in report["confusion_matrix"].items():
        lines += ["", f"## Confusion matrix ({_STAGE_TITLES[stage]}; rows: truth, columns: answer)", ""]
        lines += _table(
            ["truth \\ answer", *matrix["columns"]],
            [[name, *counts] for name, counts in zip(matrix["rows"], matrix["matrix"], strict=True)],
        )
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({file_name})" for name, file_name in plots.items()]
    return "\n".join(lines) + "\n"


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _plot_confusion(matrix: dict, title: str, path: Path) -> None:
    import numpy as np

    counts = np.asarray(matrix["matrix"], dtype=float)  # [classes, classes + 2]
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    figure = _new_figure(1.0 + 0.75 * counts.shape[1], 1.2 + 0.6 * counts.shape[0])
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    columns = [name.strip("()") if name in (OTHER_ANSWER, NO_ANSWER) else name for name in matrix["columns"]]
    axes.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    axes.set_yticks(range(len(matrix["rows"])), matrix["rows"])
    axes.set_xlabel("answer")
    axes.set_ylabel("truth")
    axes.set_title(title)
    for row in range(counts.shape[0]):
        for column in range(counts.shape[1]):
            if counts[row, column]:
                color = "white" if shares[row, column] > 0.5 else "black"
                axes.text(column, row, int(counts[row, column]), ha="center", va="center", color=color, fontsize=8)
    figure.colorbar(image, ax=axes, label="share of the row")
    figure.savefig(path)


def _plot_occlusion(report: dict, path: Path) -> None:
    stages = report["stages"]
    bins = report["occlusion"][stages[0]]["bins"]
    figure = _new_figure(6.5, 4.0)
    axes = figure.add_subplot()
    for stage in stages:
        scores = report["occlusion"][stage]["scores"]
        xs = [i for i, score in enumerate(scores) if score["total"]]
        axes.plot(xs, [scores[i]["accuracy"] for i in xs], marker="o", label=_STAGE_TITLES[stage])
    counts = [report["occlusion"][stages[-1]]["scores"][i]["total"] for i in range(len(bins))]
    axes.set_xticks(range(len(bins)), [f"{label}\n(n={n})" for label, n in zip(bins, counts, strict=True)])
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("occlusion ratio (share of the object hidden by the hand)")
    axes.set_ylabel("accuracy")
    axes.set_title("Accuracy against occlusion")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.savefig(path)


def _plot_per_class(report: dict, path: Path) -> None:
    stages = report["stages"]
    classes = list(report["per_class"][stages[0]])
    figure = _new_figure(7.0, 4.0)
    axes = figure.add_subplot()
    width = 0.8 / len(stages)
    for offset, stage in enumerate(stages):
        scores = [report["per_class"][stage][name]["accuracy"] or 0.0 for name in classes]
        positions = [i + (offset - (len(stages) - 1) / 2) * width for i in range(len(classes))]
        axes.bar(positions, scores, width, label=_STAGE_TITLES[stage])
    axes.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    axes.set_ylim(0.0, 1.0)
    axes.set_ylabel("accuracy")
    axes.set_title("Accuracy per class")
    axes.legend()
    figure.savefig(path)


def write_report(report: dict, output_dir: str | os.PathLike) -> dict[str, Path]:
    """Writes `report.json`, `report.md` and the plots into `output_dir`; returns their paths by name.

    Plots: `confusion_matrix.png` (of Decision, or of Description when the predictions have no Decision),
    `accuracy_by_occlusion.png` and `accuracy_per_class.png`.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    matrix_stage = DECISION if DECISION in report["confusion_matrix"] else DESCRIPTION
    if matrix_stage in report["confusion_matrix"]:
        paths["confusion_matrix"] = output_dir / "confusion_matrix.png"
        _plot_confusion(
            report["confusion_matrix"][matrix_stage],
            f"Confusion matrix ({_STAGE_TITLES[matrix_stage]})",
            paths["confusion_matrix"],
        )
    paths["accuracy_by_occlusion"] = output_dir / "accuracy_by_occlusion.png"
    _plot_occlusion(report, paths["accuracy_by_occlusion"])
    paths["accuracy_per_class"] = output_dir / "accuracy_per_class.png"
    _plot_per_class(report, paths["accuracy_per_class"])
    paths["report_json"] = output_dir / "report.json"
    paths["report_json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["report_md"] = output_dir / "report.md"
    plots = {name: path.name for name, path in paths.items() if path.suffix == ".png"}
    paths["report_md"].write_text(format_report_markdown(report, plots))
    return paths
