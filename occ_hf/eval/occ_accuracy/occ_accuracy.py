"""OCC-MLLM-CoT accuracy as an `evaluate` module: Description, Reflection and Decision, as the seed computes them.

```python
import evaluate
import occ_hf.eval

metric = evaluate.load(occ_hf.eval.EVALUATE_MODULE_PATH)  # a local path: works offline
metric.compute(
    predictions=[{"description": "The object is jar.", "clarity": "No.", "view_answer": "The object is bowl."}],
    references=["bowl"],
)
# {"description": 0.0, "reflection": 1.0, "decision": 1.0, ...}
```

The module only adapts `evaluate`'s row-by-row inputs to `occ_hf.eval.metrics`; the metric itself lives there.
"""

import datasets
import evaluate

from occ_hf.eval.metrics import score_predictions
from occ_hf.eval.records import DECISION, SEED_ANSWER_TEMPLATE, STAGES, ImagePrediction, PredictionSet, Reference
from occ_hf.obman.ids import obman_sample_id
from occ_hf.version import CITATION


_DESCRIPTION = """
Occluded-object recognition accuracy of OCC-MLLM-CoT (arXiv 2504.04781), exactly as the seed's
`inferenceImageAcc.py` computes it. Description: the Q1 answer equals "The object is {class}." (exact, case-sensitive),
over the images with a prediction. Reflection: the clarity answer (lower-cased, stripped, "." removed) is "yes" where
Q1 is right or "no" where it is wrong, same denominator. Decision: the description when clear, the answer on the 3D
view when unclear, over ALL test images (no prediction, no view, or any other clarity text is wrong).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one entry per test image. Config "staged" (default): a dict with the raw stage texts
        "description" (None when the image got no prediction), "clarity" and "view_answer" (None when not asked or
        the view was missing). Config "decision": the final answer string (None when there is none).
    references: the class name of each image ("jar", "bottle", ...).
    occlusion: optional list of occlusion ratios (0 to 1, or None), one per image, for accuracy by occlusion level.
    answer_template: the expected answer, "The object is {class_name}." by default.
Returns:
    description, reflection, decision: accuracies (None where not scored or nothing counted);
    num_images, num_predicted; report: the full report of occ_hf.eval.score_predictions (per class, by
    occlusion, confusion matrices, where each image ends in the chain).
"""

_CITATION = CITATION

# "large_string", not "string": evaluate type-checks the first row of each batch against "string" features and
# refuses `None` there, but `None` is meaningful here (no prediction, no view answer) and may come first.
_TEXT = datasets.Value("large_string")
_STAGED_FEATURES = datasets.Features(
    {
        "predictions": {
            "description": _TEXT,
            "clarity": _TEXT,
            "view_answer": _TEXT,
        },
        "references": datasets.Value("string"),
    }
)
_DECISION_FEATURES = datasets.Features({"predictions": _TEXT, "references": datasets.Value("string")})


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class OccAccuracy(evaluate.Metric):
    def _info(self):
        if self.config_name not in ("default", "staged", DECISION):
            raise ValueError(f"occ_accuracy has configs 'staged' (default) and 'decision', not {self.config_name!r}.")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_DECISION_FEATURES if self.config_name == DECISION else _STAGED_FEATURES,
            codebase_urls=["https://github.com/chaoyiwang09/OCC-MLLM"],
            reference_urls=["https://arxiv.org/abs/2504.04781"],
        )

    def _compute(self, predictions, references, occlusion=None, answer_template=SEED_ANSWER_TEMPLATE):
        if occlusion is not None and len(occlusion) != len(references):
            raise ValueError(f"occlusion has {len(occlusion)} values for {len(references)} references; give one each.")
        # evaluate's rows carry no ids: the row number stands for the image.
        sample_ids = [obman_sample_id(i) for i in range(len(references))]
        reference_list = [
            Reference(sample_id, label, None if occlusion is None else occlusion[i])
            for i, (sample_id, label) in enumerate(zip(sample_ids, references, strict=True))
        ]
        if self.config_name == DECISION:
            records = [ImagePrediction(i, decision=answer) for i, answer in zip(sample_ids, predictions, strict=True)]
            prediction_set = PredictionSet.from_records(records, stages=(DECISION,), source="evaluate inputs")
        else:
            records = [
                ImagePrediction.from_stages(i, p["description"], p["clarity"], p["view_answer"])
                for i, p in zip(sample_ids, predictions, strict=True)
            ]
            prediction_set = PredictionSet.from_records(records, stages=STAGES, source="evaluate inputs")
        report = score_predictions(reference_list, prediction_set, template=answer_template)
        return {
            **{
                stage: report["metrics"][stage]["accuracy"] if stage in report["metrics"] else None for stage in STAGES
            },
            "num_images": report["num_images"],
            "num_predicted": report["num_predicted"],
            "report": report,
        }
