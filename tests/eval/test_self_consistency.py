import pytest

from occ_hf.eval import ImagePrediction, PredictionSet, Reference, majority_vote, score_predictions, vote_predictions


def test_majority_vote():
    assert majority_vote(["a", "b", "b", "a", "b"]) == "b"
    assert majority_vote(["a", "b", "b", "a"]) == "a"  # tie: the answer seen first
    assert majority_vote(["b", "a", "a", "b"]) == "b"
    assert majority_vote([None, None, "c"]) == "c"  # abstentions do not vote
    assert majority_vote([None, None]) is None
    assert majority_vote([]) is None
    assert majority_vote(["The object is jar.", "the object is jar."]) == "The object is jar."  # texts, not classes


def _run(description, clarity, view_answer=None, sample_id="00000001"):
    return {sample_id: ImagePrediction.from_stages(sample_id, description, clarity, view_answer)}


def test_vote_each_stage_and_the_final_answers():
    jar, bowl, can = "The object is jar.", "The object is bowl.", "The object is can."
    runs = [
        _run(jar, "Yes."),  # final: jar
        _run(jar, "No.", bowl),  # final: bowl
        _run(can, " no. ", bowl),  # final: bowl
        _run(jar, "NO", None),  # final: none (no view)
        _run(None, None),  # this sample raised
    ]
    voted = vote_predictions(runs)["00000001"]
    assert voted.description == jar  # 3 jar, 1 can, 1 abstention
    assert voted.clarity == "no"  # normalised before voting: 3 "no" against 1 "yes"
    assert voted.view_answer == bowl
    assert voted.decision == bowl  # the vote over final answers: bowl 2, jar 1
    references = [Reference("00000001", "bowl")]
    report = score_predictions(references, PredictionSet(vote_predictions(runs)))
    assert report["metrics"]["decision"]["correct"] == 1
    assert report["metrics"]["description"]["correct"] == 0
    assert report["metrics"]["reflection"]["correct"] == 1  # wrong description, voted "no"


def test_vote_keeps_every_image_and_its_order():
    runs = [
        {**_run("A", "Yes.", sample_id="00000002"), **_run("B", "Yes.", sample_id="00000001")},
        _run("C", "Yes.", sample_id="00000003"),
    ]
    voted = vote_predictions(runs)
    assert list(voted) == ["00000002", "00000001", "00000003"]
    assert voted["00000003"].decision == "C"  # only one run saw it; the other abstains
    with pytest.raises(ValueError, match="at least one run"):
        vote_predictions([])


def test_k_equals_one_is_greedy():
    run = {**_run("The object is jar.", "No.", "The object is can."), **_run(None, None, sample_id="00000002")}
    voted = vote_predictions([run])
    for sample_id, record in run.items():
        assert voted[sample_id].description == record.description
        assert voted[sample_id].decision == record.decision
