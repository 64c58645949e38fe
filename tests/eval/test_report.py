import json

from PIL import Image

from occ_hf.eval import (
    ImagePrediction,
    PredictionSet,
    Reference,
    format_report_markdown,
    save_predictions,
    save_seed_predictions,
    score_predictions,
    write_report,
)
from occ_hf.obman import OCC_CLASSES


def _report(stages=("description", "reflection", "decision")):
    references, records = [], []
    for i in range(40):
        label = OCC_CLASSES[i % len(OCC_CLASSES)]
        references.append(Reference(f"{i:08d}", label, occlusion=(i % 10) / 10 + 0.05))
        guessed = label if i % 3 else OCC_CLASSES[(i + 1) % len(OCC_CLASSES)]
        view = f"The object is {label}." if i % 5 else None
        records.append(ImagePrediction.from_stages(i, f"The object is {guessed}.", "No." if i % 2 else "Yes.", view))
    if stages == ("decision",):
        records = [ImagePrediction(record.sample_id, decision=record.decision) for record in records]
    return score_predictions(references, PredictionSet.from_records(records, stages=stages, source="hand-built"))


def _assert_png(path):
    assert path.is_file() and path.stat().st_size > 5_000
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 200
        # not a blank canvas: a plot has many colours
        assert len(image.convert("RGB").getcolors(maxcolors=1_000_000)) > 20


def test_report_files_written_and_non_empty(tmp_path):
    report = _report()
    paths = write_report(report, tmp_path / "report")
    assert set(paths) == {
        "confusion_matrix",
        "accuracy_by_occlusion",
        "accuracy_per_class",
        "report_json",
        "report_md",
    }
    for name in ("confusion_matrix", "accuracy_by_occlusion", "accuracy_per_class"):
        _assert_png(paths[name])
    assert json.loads(paths["report_json"].read_text()) == json.loads(json.dumps(report))
    markdown = paths["report_md"].read_text()
    decision = report["metrics"]["decision"]
    assert f"| Decision | {decision['accuracy']:.4f} | {decision['correct']}/40 |" in markdown
    assert "## Confusion matrix (Decision; rows: truth, columns: answer)" in markdown
    assert "![confusion_matrix](confusion_matrix.png)" in markdown
    assert "| unclear_no_view |" in markdown and "| 0.8-1.0 |" in markdown


def test_report_of_partial_formats(tmp_path):
    final_only = write_report(_report(("decision",)), tmp_path / "final")
    markdown = final_only["report_md"].read_text()
    assert "| Description | not scored | the predictions hold final answers only" in markdown
    _assert_png(final_only["confusion_matrix"])
    stage_answers = write_report(_report(("description", "reflection")), tmp_path / "stages")
    markdown = stage_answers["report_md"].read_text()
    assert "| Decision | not scored | the predictions hold no answers on the 3D view" in markdown
    assert "## Confusion matrix (Description;" in markdown
    _assert_png(stage_answers["accuracy_by_occlusion"])


def _three_images():
    """A clear right image, an unclear one fixed by its view, and one whose inference raised (no occlusion ratio)."""
    references = [Reference("00000001", "jar", 0.1), Reference("00000002", "bowl", 0.5), Reference("00000003", "can")]
    records = [
        ImagePrediction.from_stages(1, "The object is jar.", "Yes."),
        ImagePrediction.from_stages(2, "The object is jar.", "No.", "The object is bowl."),
        ImagePrediction.from_stages(3, None, None),
    ]
    return references, PredictionSet.from_records(records, source="three images")


def test_markdown_byte_for_byte():
    references, predictions = _three_images()
    report = score_predictions(references, predictions, classes=["jar", "bowl", "can"])
    expected = [
        "# OCC-MLLM-CoT evaluation",
        "",
        "Predictions: `three images`. Test images: 3, with a prediction: 2.",
        "Metrics as the seed's `inferenceImageAcc.py` computes them: Description and Reflection over the images with "
        "a prediction, Decision over all test images (no prediction, no view or an unclear clarity is wrong).",
        "",
        "## Metrics",
        "",
        "| metric | accuracy | correct / counted |",
        "|---|---|---|",
        "| Description | 0.5000 | 1/2 |",
        "| Reflection | 1.0000 | 2/2 |",
        "| Decision | 0.6667 | 2/3 |",
        "",
        "## Where each image ends",
        "",
        "| outcome | images |",
        "|---|---|",
        "| no_prediction | 1 |",
        "| clear_right | 1 |",
        "| clear_wrong | 0 |",
        "| unclear_view_right | 1 |",
        "| unclear_view_wrong | 0 |",
        "| unclear_no_view | 0 |",
        "| clarity_unparsed | 0 |",
        "| fixed_by_view | 1 |",
        "| broken_by_view | 0 |",
        "",
        "## Per class",
        "",
        "| class | Description | Reflection | Decision |",
        "|---|---|---|---|",
        "| jar | 100.00% (1/1) | 100.00% (1/1) | 100.00% (1/1) |",
        "| bowl | 0.00% (0/1) | 100.00% (1/1) | 100.00% (1/1) |",
        "| can | - (0/0) | - (0/0) | 0.00% (0/1) |",
        "",
        "## By occlusion level",
        "",
        "| occlusion | Description | Reflection | Decision |",
        "|---|---|---|---|",
        "| 0.0-0.2 | 100.00% (1/1) | 100.00% (1/1) | 100.00% (1/1) |",
        "| 0.2-0.4 | - (0/0) | - (0/0) | - (0/0) |",
        "| 0.4-0.6 | 0.00% (0/1) | 100.00% (1/1) | 100.00% (1/1) |",
        "| 0.6-0.8 | - (0/0) | - (0/0) | - (0/0) |",
        "| 0.8-1.0 | - (0/0) | - (0/0) | - (0/0) |",
        "| unknown | - (0/0) | - (0/0) | 0.00% (0/1) |",
        "",
        "## Confusion matrix (Description; rows: truth, columns: answer)",
        "",
        "| truth \\ answer | jar | bowl | can | (other answer) | (no answer) |",
        "|---|---|---|---|---|---|",
        "| jar | 1 | 0 | 0 | 0 | 0 |",
        "| bowl | 1 | 0 | 0 | 0 | 0 |",
        "| can | 0 | 0 | 0 | 0 | 1 |",
        "",
        "## Confusion matrix (Decision; rows: truth, columns: answer)",
        "",
        "| truth \\ answer | jar | bowl | can | (other answer) | (no answer) |",
        "|---|---|---|---|---|---|",
        "| jar | 1 | 0 | 0 | 0 | 0 |",
        "| bowl | 0 | 1 | 0 | 0 | 0 |",
        "| can | 0 | 0 | 0 | 0 | 1 |",
        "",
        "## Plots",
        "",
        "![confusion_matrix](confusion_matrix.png)",
        "",
    ]
    assert format_report_markdown(report, {"confusion_matrix": "confusion_matrix.png"}) == "\n".join(expected)


def test_prediction_files_byte_for_byte(tmp_path):
    _, predictions = _three_images()
    staged = save_predictions(predictions, tmp_path / "predictions.jsonl").read_text()
    assert staged.splitlines() == [
        '{"id": "00000001", "description": "The object is jar.", "clarity": "Yes.", "view_answer": null, '
        '"decision": "The object is jar."}',
        '{"id": "00000002", "description": "The object is jar.", "clarity": "No.", "view_answer": '
        '"The object is bowl.", "decision": "The object is bowl."}',
        '{"id": "00000003", "description": null, "clarity": null, "view_answer": null, "decision": null}',
    ]
    assert staged.endswith("}\n")
    seed = save_seed_predictions(predictions, tmp_path / "predictions.json").read_text()
    entry = '  "{}": {{\n    "object": {},\n    "clarity": {},\n    "view_answer": {}\n  }}'
    assert (
        seed
        == "{\n"
        + ",\n".join(
            [
                entry.format("00000001", '"The object is jar."', '"Yes."', "null"),
                entry.format("00000002", '"The object is jar."', '"No."', '"The object is bowl."'),
                entry.format("00000003", "null", "null", "null"),
            ]
        )
        + "\n}\n"
    )
