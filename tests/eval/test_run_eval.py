import json

import pytest

from occ_hf.cli import main
from occ_hf.eval import EvalConfig, run_eval
from occ_hf.obman import OCC_CLASSES


def _write_runs(tmp_path, samples):
    """Three sampled runs over the split: run r answers right on the image where (index + r) % 3 != 0, says
    "Yes." where it answered right, and answers right on the view for even indices."""
    paths = []
    for run in range(3):
        rows = []
        for i, sample in enumerate(samples):
            right = (i + run) % 3 != 0
            wrong_class = OCC_CLASSES[(OCC_CLASSES.index(sample.class_name) + 1) % len(OCC_CLASSES)]
            description = f"The object is {sample.class_name if right else wrong_class}."
            view = f"The object is {sample.class_name if i % 2 == 0 else wrong_class}." if not right else None
            rows.append(
                {
                    "id": sample.sample_id,
                    "description": description,
                    "clarity": "Yes." if right else "No.",
                    "view_answer": view,
                }
            )
        path = tmp_path / f"run{run}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        paths.append(str(path))
    return paths


def test_occ_hf_eval_on_an_obman_split(tmp_path, synth_obman, synth_split, capsys):
    root, _ = synth_obman
    samples = list(synth_split)
    runs = _write_runs(tmp_path, samples)
    out = tmp_path / "report"
    main(["eval", "--predictions", runs[0], "--references", str(root), "--split", "test", "--output_dir", str(out)])
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    n = len(samples)
    right = [i for i in range(n) if i % 3 != 0]
    fixed = [i for i in range(n) if i % 3 == 0 and i % 2 == 0]
    assert report["metrics"]["description"] == {"accuracy": len(right) / n, "correct": len(right), "total": n}
    assert report["metrics"]["reflection"]["correct"] == n  # clarity always matches correctness
    assert report["metrics"]["decision"]["correct"] == len(right) + len(fixed)
    assert report["decision_breakdown"]["fixed_by_view"] == len(fixed)
    occlusion_total = sum(score["total"] for score in report["occlusion"]["decision"]["scores"])
    assert occlusion_total == n and report["occlusion"]["decision"]["unknown"]["total"] == 0
    for name in ("report.md", "confusion_matrix.png", "accuracy_by_occlusion.png", "accuracy_per_class.png"):
        assert (out / name).stat().st_size > 0
    assert f"| Decision | {report['metrics']['decision']['accuracy']:.4f} |" in printed


def test_self_consistency_over_runs(tmp_path, synth_obman, synth_split):
    root, _ = synth_obman
    samples = list(synth_split)
    runs = _write_runs(tmp_path, samples)
    report, _ = run_eval(EvalConfig(predictions=runs, references=str(root), output_dir=str(tmp_path / "sc")))
    # every image is right on the image in 2 of 3 runs: the vote is right everywhere
    assert report["metrics"]["description"]["correct"] == report["metrics"]["decision"]["correct"] == len(samples)
    assert report["source"].startswith("majority vote of 3 runs")


def test_reference_ids_restrict_and_inputs_are_required(tmp_path, synth_obman, synth_split):
    root, _ = synth_obman
    runs = _write_runs(tmp_path, list(synth_split))
    ids = tmp_path / "ids.txt"
    ids.write_text("00000001\t0\t0\n00000002\t0\t0\n")
    config = EvalConfig(
        predictions=runs[:1], references=str(root), reference_ids=str(ids), output_dir=str(tmp_path / "o")
    )
    with pytest.raises(ValueError, match="predicted ids are not among the references"):
        run_eval(config)
    config.on_extra_prediction = "ignore"
    report, _ = run_eval(config)
    assert report["num_images"] == 2 and len(report["extra_predictions_ignored"]) == len(synth_split) - 2
    with pytest.raises(ValueError, match="needs --predictions"):
        run_eval(EvalConfig(references=str(root)))
    with pytest.raises(ValueError, match="needs --references"):
        run_eval(EvalConfig(predictions=runs))


def test_denominator_seed_from_the_command_line(tmp_path, capsys):
    from occ_hf.cli import run

    from ..testing_utils import seed_file

    raw = json.loads(seed_file("predictions-mpo.head100.json").read_text())
    staged = tmp_path / "staged.json"  # the seed's per-stage format, Q1 answers from its real file
    staged.write_text(json.dumps({key: {"object": answer, "clarity": "Yes."} for key, answer in raw.items()}))
    labels = tmp_path / "labels.jsonl"
    first = list(raw.items())[:30]
    labels.write_text("".join(json.dumps({"id": key, "label": answer[14:-1]}) + "\n" for key, answer in first))
    argv = ["eval", "--predictions", str(staged), "--references", str(labels), "--output_dir", str(tmp_path / "o")]
    main([*argv, "--denominator", "seed"])
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["metrics"]["description"] == {"accuracy": 0.3, "correct": 30, "total": 100}
    assert len(report["extra_predictions_counted"]) == 70
    assert (
        "Counted as wrong in Description and Reflection (denominator `seed`): 70 predicted ids"
        in (tmp_path / "o" / "report.md").read_text()
    )
    capsys.readouterr()
    assert run([*argv, "--denominator", "all"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "occ-hf: error: ValueError: denominator (--denominator) must be one of references, seed, got 'all': "
        "'references' (the default) or 'seed' (every prediction, as the seed's script divides)."
    )
