import pytest

from occ_hf.eval import (
    NO_ANSWER,
    OTHER_ANSWER,
    ImagePrediction,
    PredictionSet,
    Reference,
    accuracy_by_occlusion,
    answer_class,
    confusion_matrix,
    decision_breakdown,
    normalize_clarity,
    per_class_accuracy,
    score_predictions,
    stage_score,
)


def _stages(sample_id, description, clarity, view_answer=None):
    return ImagePrediction.from_stages(sample_id, description, clarity, view_answer)


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("Yes.", "yes"),
        ("No.", "no"),
        (" YES. ", "yes"),
        ("no.\n", "no"),
        ("Y.e.s.", "yes"),  # the seed removes every "." before comparing
        ("Yes!", "yes!"),
        ("Yes, it is clear.", "yes, it is clear"),
        (None, None),
    ],
)
def test_normalize_clarity_as_the_seed(text, normalized):
    assert normalize_clarity(text) == normalized


# One hand-built image per branch of the chain: (reference, record, description right?, reflection right?,
# decision right?). `None` for description/reflection: not counted (the image got no prediction).
BRANCHES = {
    "clear and right": (
        Reference("00000001", "jar", 0.1),
        _stages(1, "The object is jar.", "Yes."),
        True,
        True,
        True,
    ),
    "clear and wrong": (
        Reference("00000002", "bottle", 0.3),
        _stages(2, "The object is jar.", "Yes."),
        False,
        False,
        False,
    ),
    "unclear and fixed by the view": (
        Reference("00000003", "bowl", 0.5),
        _stages(3, "The object is jar.", "No.", "The object is bowl."),
        False,
        True,
        True,
    ),
    "unclear, right, broken by the view": (
        Reference("00000004", "can", 0.7),
        _stages(4, "The object is can.", "No.", "The object is cellphone."),
        True,
        False,
        False,
    ),
    "unclear and missing view": (
        Reference("00000005", "knife", 0.9),
        _stages(5, "The object is remote.", "No.", None),
        False,
        True,
        False,
    ),
    "clarity in odd case and spacing": (
        Reference("00000006", "camera", 1.0),
        _stages(6, "The object is camera.", "  YES.\n"),
        True,
        True,
        True,
    ),
    "clarity neither yes nor no": (
        Reference("00000007", "remote", 0.0),
        _stages(7, "The object is remote.", "Yes, it is clear."),
        True,
        False,
        False,
    ),
    "answer in lower case": (
        Reference("00000008", "jar", 0.15),
        _stages(8, "the object is jar.", "Yes."),
        False,
        False,
        False,
    ),
    "answer without its full stop": (
        Reference("00000009", "jar", 0.25),
        _stages(9, "The object is jar", "No.", "The object is jar"),
        False,
        True,
        False,
    ),
    "answer with a trailing space": (
        Reference("00000010", "bottle", None),
        _stages(10, "The object is bottle. ", "yes"),
        False,
        False,
        False,
    ),
    "inference raised (no description)": (
        Reference("00000011", "bottle", 0.45),
        _stages(11, None, None),
        None,
        None,
        False,
    ),
    "no record at all": (Reference("00000012", "cellphone", 0.55), None, None, None, False),
}


@pytest.mark.parametrize("branch", list(BRANCHES))
def test_each_branch_alone(branch):
    reference, record, description, reflection, decision = BRANCHES[branch]
    records = {} if record is None else {record.sample_id: record}
    for stage, expected in (("description", description), ("reflection", reflection), ("decision", decision)):
        score = stage_score([reference], records, stage)
        if expected is None:
            assert (score.correct, score.total) == (0, 0), stage
        else:
            assert (score.correct, score.total) == (int(expected), 1), stage


def _all_branches():
    references = [value[0] for value in BRANCHES.values()]
    records = [value[1] for value in BRANCHES.values() if value[1] is not None]
    return references, PredictionSet.from_records(records, source="hand-built")


def test_denominators_as_the_seed():
    references, predictions = _all_branches()
    report = score_predictions(references, predictions)
    predicted = [value for value in BRANCHES.values() if value[2] is not None]
    # Description and Reflection over the 10 images with a prediction; Decision over all 12 test images.
    assert report["num_images"] == 12 and report["num_predicted"] == len(predicted) == 10
    assert report["metrics"]["description"] == {"accuracy": 4 / 10, "correct": 4, "total": 10}
    assert report["metrics"]["reflection"] == {"accuracy": 5 / 10, "correct": 5, "total": 10}
    assert report["metrics"]["decision"] == {"accuracy": 3 / 12, "correct": 3, "total": 12}


def test_decision_breakdown_adds_up():
    references, predictions = _all_branches()
    counts = decision_breakdown(references, predictions.records)
    assert counts == {
        "no_prediction": 2,
        "clear_right": 2,  # "clear and right", "clarity in odd case and spacing"
        "clear_wrong": 3,  # "clear and wrong", lower case, trailing space
        "unclear_view_right": 1,
        "unclear_view_wrong": 2,  # broken by the view, answer without its full stop
        "unclear_no_view": 1,
        "clarity_unparsed": 1,
        "fixed_by_view": 1,
        "broken_by_view": 1,
    }
    exclusive = [key for key in counts if key not in ("fixed_by_view", "broken_by_view")]
    assert sum(counts[key] for key in exclusive) == len(references)


def test_per_class_uses_each_stage_denominator():
    references, predictions = _all_branches()
    description = per_class_accuracy(references, predictions.records, "description")
    decision = per_class_accuracy(references, predictions.records, "decision")
    # bottle: "clear and wrong", trailing space, and one whose inference raised (not counted in Description).
    assert (description["bottle"].correct, description["bottle"].total) == (0, 2)
    assert (decision["bottle"].correct, decision["bottle"].total) == (0, 3)
    assert (decision["jar"].correct, decision["jar"].total) == (1, 3)
    assert decision["cellphone"].accuracy == 0.0 and decision["cellphone"].total == 1
    assert sum(score.total for score in decision.values()) == len(references)


def test_answer_class_is_exact():
    assert answer_class("The object is jar.") == "jar"
    assert answer_class("the object is jar.") == OTHER_ANSWER
    assert answer_class("The object is mug.") == OTHER_ANSWER
    assert answer_class(None) == NO_ANSWER


def test_confusion_matrix_diagonal_is_the_correct_answers():
    references, predictions = _all_branches()
    for stage in ("description", "decision"):
        matrix = confusion_matrix(references, predictions.records, stage)
        assert matrix["columns"][-2:] == [OTHER_ANSWER, NO_ANSWER]
        assert sum(map(sum, matrix["matrix"])) == len(references)
        diagonal = sum(matrix["matrix"][i][i] for i in range(len(matrix["rows"])))
        assert diagonal == stage_score(references, predictions.records, stage).correct
    decision = confusion_matrix(references, predictions.records, "decision")
    rows, columns = decision["rows"], decision["columns"]
    # "clear and wrong": a bottle answered jar; "broken by the view": a can answered cellphone.
    assert decision["matrix"][rows.index("bottle")][columns.index("jar")] == 1
    assert decision["matrix"][rows.index("can")][columns.index("cellphone")] == 1
    # no final answer: missing view (knife), unparsed clarity (remote), no prediction (bottle, cellphone).
    assert decision["matrix"][rows.index("knife")][columns.index(NO_ANSWER)] == 1
    assert decision["matrix"][rows.index("remote")][columns.index(NO_ANSWER)] == 1
    with pytest.raises(ValueError, match="confusion matrix"):
        confusion_matrix(references, predictions.records, "reflection")


def test_accuracy_by_occlusion_bins():
    references, predictions = _all_branches()
    by_level = accuracy_by_occlusion(references, predictions.records, "decision", bins=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0))
    assert by_level["bins"] == ["0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0"]
    totals = [score.total for score in by_level["scores"]]
    # occlusions: 0.1, 0.3, 0.5, 0.7, 0.9, 1.0 (last bin is closed), 0.0, 0.15, 0.25, None, 0.45, 0.55
    assert totals == [3, 2, 3, 1, 2]
    assert [score.correct for score in by_level["scores"]] == [1, 0, 1, 0, 1]
    assert (by_level["unknown"].correct, by_level["unknown"].total) == (0, 1)
    with pytest.raises(ValueError, match="outside the bins"):
        accuracy_by_occlusion([Reference("1", "jar", 1.5)], {}, "decision")


def test_final_answers_only_score_decision():
    references = [Reference("00000001", "jar"), Reference("00000002", "can"), Reference("00000003", "bowl")]
    records = [ImagePrediction("00000001", decision="The object is jar."), ImagePrediction("00000002", decision="x")]
    predictions = PredictionSet.from_records(records, stages=("decision",))
    report = score_predictions(references, predictions)
    assert report["stages"] == ["decision"] and list(report["metrics"]) == ["decision"]
    assert report["metrics"]["decision"] == {"accuracy": 1 / 3, "correct": 1, "total": 3}
    assert report["num_predicted"] == 2 and "decision_breakdown" not in report
    assert list(report["confusion_matrix"]) == ["decision"]


def test_bad_inputs_are_refused_with_the_fix():
    references, predictions = _all_branches()
    extra = PredictionSet.from_records([*predictions.records.values(), _stages(99, "x", "Yes.")], source="p.json")
    with pytest.raises(ValueError, match=r"p.json: 1 predicted ids are not among the references.*ignore"):
        score_predictions(references, extra)
    report = score_predictions(references, extra, on_extra_prediction="ignore")
    assert report["extra_predictions_ignored"] == ["00000099"] and report["metrics"]["decision"]["correct"] == 3
    with pytest.raises(ValueError, match="appears twice"):
        score_predictions([*references, references[0]], predictions)
    with pytest.raises(ValueError, match="'mug' of sample 00000001 is not one of"):
        score_predictions([Reference("00000001", "mug")], predictions, on_extra_prediction="ignore")
    with pytest.raises(ValueError, match="unknown stages"):
        PredictionSet({}, stages=("description", "answer"))
    with pytest.raises(ValueError, match="appears twice"):
        PredictionSet.from_records([_stages(1, "a", "b"), _stages("00000001", "a", "b")])


def _seed_staged_run():
    """The seed's real prediction file read as Q1 answers with "Yes." to the clarity question, and references for
    its first 50 ids only (labelled as answered for 40 of them, with the next class for 10)."""
    import json

    from occ_hf.obman import OCC_CLASSES

    from ..testing_utils import seed_file

    raw = json.loads(seed_file("predictions-mpo.head100.json").read_text())
    records = [_stages(sample_id, answer, "Yes.") for sample_id, answer in raw.items()]
    references = []
    for index, (sample_id, answer) in enumerate(list(raw.items())[:50]):
        answered = answer.removeprefix("The object is ").removesuffix(".")
        label = answered if index < 40 else OCC_CLASSES[(OCC_CLASSES.index(answered) + 1) % len(OCC_CLASSES)]
        references.append(Reference(sample_id, label))
    return references, PredictionSet.from_records(records, source="predictions-mpo.head100.json"), list(raw)


def test_seed_denominator_counts_predictions_outside_the_references_as_wrong():
    """The seed divides Description and Reflection by all its predictions, ids outside its test list included."""
    references, predictions, ids = _seed_staged_run()
    with pytest.raises(ValueError, match=r"50 predicted ids are not among the references.*--denominator seed"):
        score_predictions(references, predictions)
    ours = score_predictions(references, predictions, on_extra_prediction="ignore")
    seed = score_predictions(references, predictions, denominator="seed")
    assert ours["metrics"]["description"] == {"accuracy": 40 / 50, "correct": 40, "total": 50}
    assert seed["metrics"]["description"] == {"accuracy": 40 / 100, "correct": 40, "total": 100}
    assert seed["metrics"]["reflection"] == {"accuracy": 40 / 100, "correct": 40, "total": 100}
    # Decision, per class and the confusion matrix count the references only, with either denominator.
    for key in ("per_class", "confusion_matrix", "occlusion", "decision_breakdown"):
        assert seed[key] == ours[key]
    assert seed["metrics"]["decision"] == ours["metrics"]["decision"] == {"accuracy": 0.8, "correct": 40, "total": 50}
    assert seed["denominator"] == "seed" and seed["extra_predictions_counted"] == sorted(ids[50:])
    assert seed["extra_predictions_ignored"] == [] and ours["extra_predictions_counted"] == []


def test_seed_denominator_on_final_answers_only_and_bad_options():
    from occ_hf.eval import load_predictions

    from ..testing_utils import seed_file

    references, _, ids = _seed_staged_run()
    final = load_predictions(seed_file("predictions-mpo.head100.json"))  # the seed's {id: answer}: Decision only
    report = score_predictions(references, final, denominator="seed")
    # No Q1 answer to count: the ids outside the references are in no denominator, and listed as left out.
    assert report["extra_predictions_counted"] == [] and report["extra_predictions_ignored"] == sorted(ids[50:])
    assert report["metrics"]["decision"]["total"] == 50
    with pytest.raises(ValueError, match=r"denominator \(--denominator\) must be one of references, seed, got 'all'"):
        score_predictions(references, final, denominator="all")
    with pytest.raises(ValueError, match="pass one of the two"):
        score_predictions(references, final, denominator="seed", on_extra_prediction="ignore")
