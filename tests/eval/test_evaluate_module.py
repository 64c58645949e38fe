import os
import subprocess
import sys
from pathlib import Path

import evaluate
import pytest

from occ_hf.eval import EVALUATE_MODULE_PATH, PredictionSet, score_predictions

from .test_metrics import BRANCHES


def _rows():
    """The hand-built branches as evaluate rows; an image without a prediction is a row of Nones, and the first
    row holds a None (evaluate type-checks each batch's first row: the module's features must accept it)."""
    predictions, references, occlusion = [], [], []
    for reference, record, *_ in BRANCHES.values():
        predictions.append(
            {"description": None, "clarity": None, "view_answer": None}
            if record is None
            else {"description": record.description, "clarity": record.clarity, "view_answer": record.view_answer}
        )
        references.append(reference.label)
        occlusion.append(reference.occlusion)
    assert predictions[0]["view_answer"] is None
    return predictions, references, occlusion


def test_evaluate_load_staged_matches_the_library():
    metric = evaluate.load(EVALUATE_MODULE_PATH)
    predictions, references, occlusion = _rows()
    result = metric.compute(predictions=predictions, references=references, occlusion=occlusion)
    assert (result["description"], result["reflection"], result["decision"]) == (4 / 10, 5 / 10, 3 / 12)
    assert result["num_images"] == 12 and result["num_predicted"] == 10
    library = score_predictions(
        [value[0] for value in BRANCHES.values()],
        PredictionSet.from_records([value[1] for value in BRANCHES.values() if value[1] is not None]),
    )
    assert result["report"]["decision_breakdown"] == library["decision_breakdown"]
    assert result["report"]["occlusion"]["decision"] == library["occlusion"]["decision"]


def test_evaluate_load_decision_config_and_batches():
    metric = evaluate.load(EVALUATE_MODULE_PATH, "decision")
    metric.add_batch(predictions=["The object is jar.", None], references=["jar", "can"])
    metric.add_batch(predictions=["The object is Can."], references=["can"])
    result = metric.compute()
    assert result["decision"] == 1 / 3 and result["description"] is None and result["reflection"] is None
    with pytest.raises(ValueError, match="occlusion has 1 values for 2 references"):
        metric.compute(predictions=["a", "b"], references=["jar", "can"], occlusion=[0.1])


def test_evaluate_load_offline_from_a_fresh_process(tmp_path):
    """`evaluate.load(<path>)` with the Hub unreachable on purpose and an empty modules cache."""
    script = Path(EVALUATE_MODULE_PATH) / "occ_accuracy.py"
    code = (
        "import evaluate\n"
        f"metric = evaluate.load({str(script)!r})\n"
        "r = metric.compute(predictions=[{'description': 'The object is jar.', 'clarity': 'No.', "
        "'view_answer': 'The object is bowl.'}], references=['bowl'])\n"
        "print(r['description'], r['reflection'], r['decision'])\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.0", "1.0", "1.0"]
