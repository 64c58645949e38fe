import json
from collections import Counter

import pytest

from occ_hf.eval import (
    ImagePrediction,
    PredictionSet,
    Reference,
    answer_class,
    load_predictions,
    save_predictions,
    save_seed_predictions,
    score_predictions,
)
from occ_hf.obman import read_id_list

from ..testing_utils import seed_file


def _seed_mpo():
    path = seed_file("predictions-mpo.head100.json")
    return path, json.loads(path.read_text())


def test_seed_final_answers_format():
    path, raw = _seed_mpo()
    predictions = load_predictions(path)
    assert predictions.stages == ("decision",) and predictions.source == str(path)
    assert list(predictions.records) == list(raw) and len(raw) == 100
    assert all(predictions.records[key].decision == answer for key, answer in raw.items())
    assert all(record.description is None for record in predictions.records.values())


def test_seed_final_answers_scored_over_the_seed_test_list():
    """Decision over the seed's test list: its ids that the file skipped (no final answer) count as wrong."""
    path, raw = _seed_mpo()
    test_ids, _ = read_id_list(seed_file("obman_view_test_all.txt"))
    covered = test_ids[: test_ids.index(max(raw)) + 1]  # the test ids up to the file's last one
    assert set(raw) <= set(covered) and len(covered) == 164
    # Labels: the class each answer names (so every answered image is right) except three that we flip; the
    # ids without an answer get any label. The real labels are not public; this checks the counting.
    flipped = {"00000003", "00000008", "00000013"}
    references = []
    for sample_id in covered:
        label = answer_class(raw[sample_id]) if sample_id in raw else "jar"
        references.append(Reference(sample_id, "remote" if sample_id in flipped else label))
    report = score_predictions(references, load_predictions(path))
    assert report["metrics"]["decision"] == {"accuracy": 97 / 164, "correct": 97, "total": 164}
    decision_columns = report["confusion_matrix"]["decision"]["columns"]
    answered = Counter()
    for row in report["confusion_matrix"]["decision"]["matrix"]:
        for column, count in zip(decision_columns, row, strict=True):
            answered[column] += count
    assert answered["(no answer)"] == 64
    assert answered["cellphone"] == Counter(raw.values())["The object is cellphone."] == 45


def _seed_stage_file(tmp_path, raw, with_view=False):
    """The seed's `{id: {object, clarity}}` format, built from the real file's answers."""
    stage_answers = {}
    for i, (sample_id, answer) in enumerate(raw.items()):
        # the seed stores clarity already normalised: responses[1].lower().strip().replace(".", "")
        entry = {"object": answer, "clarity": "no" if i % 4 == 0 else "yes"}
        if with_view:
            entry["view_answer"] = "The object is jar." if i % 4 == 0 else None
        stage_answers[sample_id] = entry
    path = tmp_path / "predictions-stages.json"
    path.write_text(json.dumps(stage_answers))
    return path


def test_seed_stage_format(tmp_path):
    _, raw = _seed_mpo()
    predictions = load_predictions(_seed_stage_file(tmp_path, raw))
    assert predictions.stages == ("description", "reflection")
    record = predictions.records["00000003"]  # first entry: clarity "no"
    assert record.description == "The object is cellphone." and record.clarity == "no"
    references = [Reference(sample_id, answer_class(answer)) for sample_id, answer in raw.items()]
    report = score_predictions(references, predictions)
    assert report["metrics"]["description"] == {"accuracy": 1.0, "correct": 100, "total": 100}
    # all descriptions right: Reflection is right exactly where the clarity is "yes" (3 of every 4)
    assert report["metrics"]["reflection"] == {"accuracy": 0.75, "correct": 75, "total": 100}
    assert "decision" not in report["metrics"]


def test_seed_stage_format_with_view_answers(tmp_path):
    _, raw = _seed_mpo()
    predictions = load_predictions(_seed_stage_file(tmp_path, raw, with_view=True))
    assert predictions.stages == ("description", "reflection", "decision")
    references = [Reference(sample_id, answer_class(answer)) for sample_id, answer in raw.items()]
    report = score_predictions(references, predictions)
    jar_unclear = sum(1 for i, answer in enumerate(raw.values()) if i % 4 == 0 and answer == "The object is jar.")
    assert report["metrics"]["decision"]["correct"] == 75 + jar_unclear


def test_staged_jsonl_round_trip(tmp_path):
    records = [
        ImagePrediction.from_stages("00000001", "The object is jar.", "No.", "The object is bowl."),
        ImagePrediction.from_stages("00000002", None, None),
        ImagePrediction("00000003", "The object is can.", "yes", None, decision="The object is cellphone."),
    ]
    path = save_predictions(PredictionSet.from_records(records), tmp_path / "run" / "predictions.jsonl")
    loaded = load_predictions(path)
    assert loaded.stages == ("description", "reflection", "decision")
    assert list(loaded.records.values()) == records  # a voted final answer survives the round trip


def test_json_list_of_rows(tmp_path):
    rows = [{"id": 7, "description": "The object is jar.", "clarity": "Yes.", "view_answer": None}]
    (tmp_path / "p.json").write_text(json.dumps(rows))
    record = load_predictions(tmp_path / "p.json").records["00000007"]
    assert record.decision == "The object is jar."


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("p.json", "{not json", r"p.json: not valid JSON"),
        (
            "p.jsonl",
            '{"id": 1, "description": "a", "clarity": "b", "view_answer": null}\n{bad',
            r"p.jsonl:2: not valid",
        ),
        ("p.json", "{}", r"p.json: no predictions"),
        ("p.jsonl", "\n", r"p.jsonl: no predictions"),
        ("p.json", '{"1": "The object is jar.", "2": {"object": "x", "clarity": "y"}}', r"p.json: values are a mix"),
        ("p.json", '{"1": {"object": "x"}}', r"p.json, id 1: missing \['clarity'\]"),
        ("p.json", '{"1": {"object": 3, "clarity": "yes"}}', r"p.json, id 1: 'object' is a int"),
        (
            "p.json",
            '{"1": {"object": "x", "clarity": "no", "view_answer": null}, "2": {"object": "x", "clarity": "no"}}',
            r"p.json: 1 of 2 entries have 'view_answer'",
        ),
        ("p.jsonl", '{"id": 1, "description": "a"}', r"p.jsonl:1: missing keys \['clarity', 'view_answer'\]"),
        ("p.json", "3", r"p.json: expected a JSON object or list"),
        # One id twice: json keeps the last answer, so the first would be lost silently.
        ("p.json", '{"3": "The object is jar.", "3": "The object is can."}', r"p.json: key '3' appears twice"),
        (
            "p.jsonl",
            '{"id": 1, "description": "a", "clarity": "b", "view_answer": null, "clarity": "c"}',
            r"p.jsonl:1: key 'clarity' appears twice",
        ),
        ("p.json", b'{"3": "The object is caf\xe9."}', r"p.json: not UTF-8 text"),
        *[
            ("p.json", f'[{{"id": {raw}, "description": "a", "clarity": "b", "view_answer": null}}]', message)
            for raw, message in (
                ("3.0", r"p.json:0: sample id 3.0 is a float"),
                ("null", r"p.json:0: sample id None is a NoneType"),
                ("[1]", r"p.json:0: sample id \[1\] is a list"),
            )
        ],
    ],
)
def test_bad_files_name_the_file_and_entry(tmp_path, name, content, message):
    if isinstance(content, bytes):
        (tmp_path / name).write_bytes(content)
    else:
        (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match=message):
        load_predictions(tmp_path / name)


def test_missing_file_and_partial_save(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json: predictions file not found"):
        load_predictions(tmp_path / "nothing.json")
    path, _ = _seed_mpo()
    with pytest.raises(ValueError, match="hold only \\['decision'\\]"):
        save_predictions(load_predictions(path), tmp_path / "out.jsonl")


def test_seed_stage_format_with_view_answers_round_trip(tmp_path):
    records = [
        ImagePrediction.from_stages("00000001", "The object is jar.", "No.", "The object is bowl."),
        ImagePrediction.from_stages("00000002", "The object is can.", "No.", None),  # its view was missing
        ImagePrediction.from_stages("00000003", None, None),  # its inference raised
        ImagePrediction.from_stages("00000004", "The object is knife.", "Yes."),
    ]
    path = save_seed_predictions(PredictionSet.from_records(records), tmp_path / "run" / "predictions.json")
    assert json.loads(path.read_text())["00000002"] == {
        "object": "The object is can.",
        "clarity": "No.",
        "view_answer": None,
    }
    loaded = load_predictions(path)
    assert loaded.stages == ("description", "reflection", "decision")
    assert list(loaded.records.values()) == records
    voted = ImagePrediction("00000005", "The object is can.", "Yes.", None, decision="The object is jar.")
    with pytest.raises(ValueError, match="00000005 .* does not follow from its stage answers"):
        save_seed_predictions(PredictionSet.from_records(records + [voted]), tmp_path / "voted.json")
    seed_path, _ = _seed_mpo()
    with pytest.raises(ValueError, match="hold only \\['decision'\\]"):
        save_seed_predictions(load_predictions(seed_path), tmp_path / "out.json")
