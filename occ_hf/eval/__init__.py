"""Evaluation: the seed's Description / Reflection / Decision, per class, by occlusion level, with plots.

```python
from occ_hf.eval import load_predictions, load_references, score_predictions, write_report

references = load_references("data/obman", split="test")  # or a seed chat jsonl, or {id, label} rows
predictions = load_predictions("../shared/seed/predictions-mpo.head100.json")
report = score_predictions(references, predictions)
write_report(report, "runs/eval")  # report.json, report.md, confusion_matrix.png, accuracy_by_occlusion.png, ...
```

The data flows one way, one module a step:

```
predictions   inference.py (a model's recognize() over test rows, sharded over processes) | predictions.py (files)
   -> records     records.py: one ImagePrediction per image, built once; Reference (references.py reads them)
   -> metrics     metrics.py: pure functions of references and records -> the report dict
   -> report      report.py: report.json, report.md, PNG plots
```

`run_eval.py` (`occ-hf eval`) runs the whole line. The same metric as an `evaluate` module:
`evaluate.load(occ_hf.eval.EVALUATE_MODULE_PATH)`. A model is scored through [`predict`] (batched
`recognize(images, views)` calls, one [`ImagePrediction`] per image) or [`predict_sampled`] (self-consistency over k
sampled runs, reduced by [`vote_predictions`]).
"""

from pathlib import Path

from .inference import EvalItem, Recognizer, RecognizerOutputError, StageTexts, predict, predict_sampled
from .metrics import (
    NO_ANSWER,
    OTHER_ANSWER,
    StageScore,
    accuracy_by_occlusion,
    answer_class,
    confusion_matrix,
    decision_breakdown,
    expected_answer,
    per_class_accuracy,
    score_predictions,
    stage_score,
)
from .predictions import load_predictions, save_predictions, save_seed_predictions
from .records import (
    DECISION,
    DESCRIPTION,
    REFLECTION,
    SEED_ANSWER_TEMPLATE,
    STAGES,
    ImagePrediction,
    PredictionSet,
    Reference,
    majority_vote,
    normalize_clarity,
    normalize_sample_id,
    vote_predictions,
)
from .references import load_references
from .report import format_report_markdown, write_report
from .run_eval import EvalConfig, run_eval


# The folder of the `evaluate` module script (`occ_accuracy/occ_accuracy.py`), for `evaluate.load(path)`.
EVALUATE_MODULE_PATH = str(Path(__file__).resolve().parent / "occ_accuracy")

__all__ = [
    "DECISION",
    "DESCRIPTION",
    "EVALUATE_MODULE_PATH",
    "EvalConfig",
    "EvalItem",
    "ImagePrediction",
    "NO_ANSWER",
    "OTHER_ANSWER",
    "PredictionSet",
    "REFLECTION",
    "Recognizer",
    "RecognizerOutputError",
    "Reference",
    "SEED_ANSWER_TEMPLATE",
    "STAGES",
    "StageTexts",
    "StageScore",
    "accuracy_by_occlusion",
    "answer_class",
    "confusion_matrix",
    "decision_breakdown",
    "expected_answer",
    "format_report_markdown",
    "load_predictions",
    "load_references",
    "majority_vote",
    "normalize_clarity",
    "normalize_sample_id",
    "per_class_accuracy",
    "predict",
    "predict_sampled",
    "run_eval",
    "save_predictions",
    "save_seed_predictions",
    "score_predictions",
    "stage_score",
    "vote_predictions",
    "write_report",
]
