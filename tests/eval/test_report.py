import json

from PIL import Image

from occ_hf.eval import ImagePrediction, PredictionSet, Reference, score_predictions, write_report
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
