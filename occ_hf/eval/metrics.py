"""Description, Reflection and Decision exactly as the seed computes them, with per-class, confusion-matrix and
per-occlusion views of the same outcomes.

The third step of evaluation (predictions -> records -> metrics -> report): pure functions of the references and the
records (`occ_hf.eval.records`), which read no file and write none; [`score_predictions`] gathers them into the
JSON-ready report dict that `occ_hf.eval.report` renders.

The seed's `inferenceImageAcc.py` (chaoyiwang09/OCC-MLLM, `occ-mllm-cot/src/SFT2/`) defines the three metrics:

- *Description*: Q1's answer equals `"The object is {class}."` exactly (case-sensitive, nothing stripped);
  divided by the images that got a prediction.
- *Reflection*: the clarity answer, normalised by [`normalize_clarity`], is `"yes"` where Q1 is right or `"no"`
  where Q1 is wrong; same denominator as Description (any other clarity text is wrong).
- *Decision*: the final answer (the description when clear, Q1 on the 3D view when unclear) equals the expected
  answer; divided by ALL test images, so an image with no prediction, no view or an unparseable clarity is wrong.

Description and Reflection count, by default (`denominator="references"`), the reference images that got a
prediction. The seed's script divides them by every image it predicted, ids outside its test list included (it reads
their class from the image path); `denominator="seed"` divides so too. occ-hf's references hold no label for an id
outside them, so such a prediction can only count as wrong: it adds one to the Description and Reflection
denominators and nothing to their numerators, and the report lists it (`extra_predictions_counted`). The seed's own
figure then lies between that accuracy and the one with those predictions counted right
(`(correct + counted) / total`).

```python
from occ_hf.eval import ImagePrediction, PredictionSet, Reference, score_predictions

references = [Reference("00000003", "jar", occlusion=0.45)]
predictions = PredictionSet.from_records([ImagePrediction.from_stages("00000003", "The object is jar.", "Yes.")])
report = score_predictions(references, predictions)
report["metrics"]["decision"]  # {"accuracy": 1.0, "correct": 1, "total": 1}
```
"""

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..models.occ_internvl.prompts_occ_internvl import answer_text, parse_class_answer
from ..obman.classes import OCC_CLASSES
from ..obman.summary import OCCLUSION_BINS
from .records import (
    DECISION,
    DESCRIPTION,
    REFLECTION,
    SEED_ANSWER_TEMPLATE,
    ImagePrediction,
    PredictionSet,
    Reference,
    normalize_clarity,
)


__all__ = [
    "DENOMINATORS",
    "NO_ANSWER",
    "OTHER_ANSWER",
    "StageScore",
    "accuracy_by_occlusion",
    "answer_class",
    "check_scoring_options",
    "confusion_matrix",
    "decision_breakdown",
    "expected_answer",
    "per_class_accuracy",
    "score_predictions",
    "stage_score",
]

OTHER_ANSWER, NO_ANSWER = "(other answer)", "(no answer)"
# What Description and Reflection divide by: the references' images with a prediction, or, as the seed's script,
# every prediction (see the module docstring).
DENOMINATORS = ("references", "seed")


@dataclass(frozen=True)
class StageScore:
    """Correct answers out of a total; `accuracy` is `None` when nothing was counted."""

    correct: int
    total: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "correct": self.correct, "total": self.total}


def expected_answer(label: str, template: str = SEED_ANSWER_TEMPLATE) -> str:
    """The exact answer that counts as right for class `label` (`"The object is jar."`)."""
    return answer_text(template, label)


def answer_class(answer: str | None, classes: Sequence[str] = OCC_CLASSES, template: str = SEED_ANSWER_TEMPLATE):
    """The class whose expected answer `answer` is exactly, [`OTHER_ANSWER`] for any other text, [`NO_ANSWER`] for
    `None`. Matching exactly (not parsing leniently) keeps the confusion matrix's diagonal equal to the correct
    answers that the metrics count."""
    if answer is None:
        return NO_ANSWER
    return parse_class_answer(answer, template, classes) or OTHER_ANSWER


def _image_outcome(
    reference: Reference, record: ImagePrediction | None, stage: str, template: str
) -> tuple[bool, bool]:
    """`(counted, correct)` of one image for one stage, by the seed's rules."""
    expected = expected_answer(reference.label, template)
    if stage == DECISION:
        return True, record is not None and record.decision == expected
    if record is None or record.description is None:
        return False, False
    description_right = record.description == expected
    if stage == DESCRIPTION:
        return True, description_right
    if stage == REFLECTION:
        clarity = normalize_clarity(record.clarity)
        return True, (description_right and clarity == "yes") or (not description_right and clarity == "no")
    raise ValueError(f"unknown stage {stage!r}; expected one of {DESCRIPTION!r}, {REFLECTION!r}, {DECISION!r}.")


def stage_score(
    references: Sequence[Reference],
    records: Mapping[str, ImagePrediction],
    stage: Literal["description", "reflection", "decision"],
    template: str = SEED_ANSWER_TEMPLATE,
) -> StageScore:
    """Description, Reflection or Decision over `references`, as the seed computes it (see the module docstring).

    Args:
        references (`Sequence[Reference]`): Every test image, once.
        records (`Mapping[str, ImagePrediction]`): Predictions by sample id; images missing here got none.
        stage (`str`): `"description"`, `"reflection"` or `"decision"`.
        template (`str`, *optional*, defaults to `"The object is {class_name}."`): The expected answer, formatted
            with the label.
    """
    correct = total = 0
    for reference in references:
        counted, right = _image_outcome(reference, records.get(reference.sample_id), stage, template)
        total += counted
        correct += right
    return StageScore(correct, total)


def per_class_accuracy(
    references: Sequence[Reference],
    records: Mapping[str, ImagePrediction],
    stage: str,
    classes: Sequence[str] = OCC_CLASSES,
    template: str = SEED_ANSWER_TEMPLATE,
) -> dict[str, StageScore]:
    """[`stage_score`] restricted to each reference class, with the stage's own denominator."""
    correct: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for reference in references:
        counted, right = _image_outcome(reference, records.get(reference.sample_id), stage, template)
        total[reference.label] += counted
        correct[reference.label] += right
    return {name: StageScore(correct[name], total[name]) for name in classes}


def confusion_matrix(
    references: Sequence[Reference],
    records: Mapping[str, ImagePrediction],
    stage: Literal["description", "decision"],
    classes: Sequence[str] = OCC_CLASSES,
    template: str = SEED_ANSWER_TEMPLATE,
) -> dict:
    """Counts of (reference class, answered class) over every reference image.

    Returns:
        `dict` with `rows` (the classes), `columns` (the classes, then [`OTHER_ANSWER`] for any text that is not an
        exact expected answer and [`NO_ANSWER`] for an image without one) and `matrix` (`rows x columns` ints).
        The diagonal is exactly the correct answers of the stage.
    """
    if stage not in (DESCRIPTION, DECISION):
        raise ValueError(f"a confusion matrix is defined for 'description' or 'decision' answers, not {stage!r}.")
    columns = [*classes, OTHER_ANSWER, NO_ANSWER]
    column_index = {name: i for i, name in enumerate(columns)}
    matrix = [[0] * len(columns) for _ in classes]
    row_index = {name: i for i, name in enumerate(classes)}
    for reference in references:
        record = records.get(reference.sample_id)
        answer = None if record is None else (record.description if stage == DESCRIPTION else record.decision)
        matrix[row_index[reference.label]][column_index[answer_class(answer, classes, template)]] += 1
    return {"rows": list(classes), "columns": columns, "matrix": matrix}


def _bin_labels(bins: Sequence[float]) -> list[str]:
    return [f"{low:.1f}-{high:.1f}" for low, high in zip(bins[:-1], bins[1:], strict=True)]


def accuracy_by_occlusion(
    references: Sequence[Reference],
    records: Mapping[str, ImagePrediction],
    stage: str,
    bins: Sequence[float] = OCCLUSION_BINS,
    template: str = SEED_ANSWER_TEMPLATE,
) -> dict:
    """[`stage_score`] per occlusion level: bins `[low, high)`, the last one closed, as `summarize_split` counts.

    Returns:
        `dict` with `bins` (labels such as `"0.2-0.4"`), `scores` (a [`StageScore`] per bin) and `unknown`
        (a [`StageScore`] over images whose reference has no occlusion ratio).
    """
    scores = [[0, 0] for _ in bins[:-1]]
    unknown = [0, 0]
    for reference in references:
        counted, right = _image_outcome(reference, records.get(reference.sample_id), stage, template)
        if reference.occlusion is None:
            slot = unknown
        else:
            if not bins[0] <= reference.occlusion <= bins[-1]:
                raise ValueError(
                    f"occlusion {reference.occlusion} of sample {reference.sample_id} is outside the bins "
                    f"[{bins[0]}, {bins[-1]}]; occlusion is a share of pixels, between 0 and 1."
                )
            slot = scores[min(bisect.bisect_right(bins, reference.occlusion) - 1, len(bins) - 2)]
        slot[0] += right
        slot[1] += counted
    return {
        "bins": _bin_labels(bins),
        "scores": [StageScore(c, t) for c, t in scores],
        "unknown": StageScore(*unknown),
    }


def decision_breakdown(
    references: Sequence[Reference], records: Mapping[str, ImagePrediction], template: str = SEED_ANSWER_TEMPLATE
) -> dict[str, int]:
    """Where each test image ends in the three-stage chain; the counts add up to `len(references)`.

    Keys: `no_prediction`, `clear_right`, `clear_wrong`, `unclear_view_right`, `unclear_view_wrong`,
    `unclear_no_view` (asked for the view but no answer on it: view missing or its inference raised),
    `clarity_unparsed` (clarity neither "yes" nor "no" after normalisation); then, overlapping those,
    `fixed_by_view` (Q1 wrong, right on the view) and `broken_by_view` (Q1 right, wrong on the view).
    """
    counts = dict.fromkeys(
        (
            "no_prediction",
            "clear_right",
            "clear_wrong",
            "unclear_view_right",
            "unclear_view_wrong",
            "unclear_no_view",
            "clarity_unparsed",
            "fixed_by_view",
            "broken_by_view",
        ),
        0,
    )
    for reference in references:
        record = records.get(reference.sample_id)
        if record is None or record.description is None:
            counts["no_prediction"] += 1
            continue
        expected = expected_answer(reference.label, template)
        description_right = record.description == expected
        clarity = normalize_clarity(record.clarity)
        if clarity == "yes":
            counts["clear_right" if description_right else "clear_wrong"] += 1
        elif clarity == "no":
            if record.view_answer is None:
                counts["unclear_no_view"] += 1
            else:
                view_right = record.view_answer == expected
                counts["unclear_view_right" if view_right else "unclear_view_wrong"] += 1
                counts["fixed_by_view"] += view_right and not description_right
                counts["broken_by_view"] += description_right and not view_right
        else:
            counts["clarity_unparsed"] += 1
    return counts


def check_scoring_options(on_extra_prediction: str = "error", denominator: str = "references") -> None:
    """Refuses an unknown `on_extra_prediction` or `denominator` of [`score_predictions`], or the two together
    contradicting each other; `occ-hf eval` calls it before loading anything."""
    if on_extra_prediction not in ("error", "ignore"):
        raise ValueError(f"on_extra_prediction must be 'error' or 'ignore', got {on_extra_prediction!r}.")
    if denominator not in DENOMINATORS:
        raise ValueError(
            f"denominator (--denominator) must be one of {', '.join(DENOMINATORS)}, got {denominator!r}: "
            "'references' (the default) or 'seed' (every prediction, as the seed's script divides)."
        )
    if denominator == "seed" and on_extra_prediction == "ignore":
        raise ValueError(
            "denominator='seed' counts the predicted ids outside the references, on_extra_prediction='ignore' leaves "
            "them out: pass one of the two (--denominator seed or --on_extra_prediction ignore)."
        )


def _check_inputs(
    references: Sequence[Reference],
    predictions: PredictionSet,
    classes: Sequence[str],
    on_extra_prediction: str,
    denominator: str,
) -> list[str]:
    check_scoring_options(on_extra_prediction, denominator)
    seen: set[str] = set()
    for reference in references:
        if reference.sample_id in seen:
            raise ValueError(f"references: sample id {reference.sample_id} appears twice; each test image once.")
        seen.add(reference.sample_id)
        if reference.label not in classes:
            raise ValueError(
                f"references: label {reference.label!r} of sample {reference.sample_id} is not one of {list(classes)}."
            )
    extra = sorted(set(predictions.records) - seen)
    if extra and on_extra_prediction == "error" and denominator != "seed":
        raise ValueError(
            f"{predictions.source}: {len(extra)} predicted ids are not among the references (first: {extra[:5]}); "
            "score against the references the predictions were made on, pass on_extra_prediction='ignore' "
            "(`--on_extra_prediction ignore`) to leave them out, or denominator='seed' (`--denominator seed`) to "
            "count them as wrong in Description and Reflection, as the seed's script divides."
        )
    return extra


def score_predictions(
    references: Sequence[Reference],
    predictions: PredictionSet,
    *,
    template: str = SEED_ANSWER_TEMPLATE,
    classes: Sequence[str] = OCC_CLASSES,
    bins: Sequence[float] = OCCLUSION_BINS,
    on_extra_prediction: Literal["error", "ignore"] = "error",
    denominator: Literal["references", "seed"] = "references",
) -> dict:
    """Every metric of the report, as a JSON-ready dict: the seed's three metrics on the stages `predictions` hold,
    per class, by occlusion level, the confusion matrices and where each image ends in the chain.

    Args:
        references (`Sequence[Reference]`): Every test image once; the Decision denominator is `len(references)`.
        predictions ([`PredictionSet`]): The run's records and the stages they can be scored on.
        template (`str`, *optional*, defaults to `"The object is {class_name}."`): The expected answer for a label.
        classes (`Sequence[str]`, *optional*, defaults to the 8 OCC classes): Allowed labels, in report order.
        bins (`Sequence[float]`, *optional*, defaults to `OCCLUSION_BINS`): Edges of the occlusion levels.
        on_extra_prediction (`str`, *optional*, defaults to `"error"`): What to do with predicted ids that no
            reference has: refuse them (`"error"`) or leave them out and list them (`"ignore"`). Not consulted with
            `denominator="seed"`, which counts them.
        denominator (`str`, *optional*, defaults to `"references"`): What Description and Reflection divide by:
            `"references"`, the reference images with a prediction; `"seed"`, as the seed's `inferenceImageAcc.py`,
            every prediction, so that each predicted id outside the references that has a Q1 answer counts as wrong
            (one more in both denominators, nothing in the numerators: there is no label to score it with) and is
            listed in `extra_predictions_counted`. Decision, per class, by occlusion and the confusion matrices
            always count the references only (the seed's Decision divides by its test list).
    """
    extra = _check_inputs(references, predictions, classes, on_extra_prediction, denominator)
    left_out = set(extra)
    records = {key: value for key, value in predictions.records.items() if key not in left_out}
    stages = [stage for stage in (DESCRIPTION, REFLECTION, DECISION) if stage in predictions.stages]
    metrics = {stage: stage_score(references, records, stage, template) for stage in stages}
    counted = []
    if denominator == "seed" and DESCRIPTION in stages:
        counted = [key for key in extra if predictions.records[key].description is not None]
        for stage in (DESCRIPTION, REFLECTION):
            if stage in metrics:
                metrics[stage] = StageScore(metrics[stage].correct, metrics[stage].total + len(counted))
    counted_set = set(counted)
    answer_stages = [stage for stage in (DESCRIPTION, DECISION) if stage in stages]
    report = {
        "source": predictions.source,
        "num_images": len(references),
        "num_predicted": sum(
            1
            for reference in references
            if (record := records.get(reference.sample_id)) is not None
            and (record.description if DESCRIPTION in stages else record.decision) is not None
        ),
        "denominator": denominator,
        "extra_predictions_ignored": [key for key in extra if key not in counted_set],
        "extra_predictions_counted": counted,
        "stages": stages,
        "metrics": {stage: score.to_dict() for stage, score in metrics.items()},
        "per_class": {
            stage: {
                name: score.to_dict()
                for name, score in per_class_accuracy(references, records, stage, classes, template).items()
            }
            for stage in stages
        },
        "confusion_matrix": {
            stage: confusion_matrix(references, records, stage, classes, template) for stage in answer_stages
        },
        "occlusion": {},
    }
    for stage in stages:
        by_level = accuracy_by_occlusion(references, records, stage, bins, template)
        report["occlusion"][stage] = {
            "bins": by_level["bins"],
            "scores": [score.to_dict() for score in by_level["scores"]],
            "unknown": by_level["unknown"].to_dict(),
        }
    if stages == [DESCRIPTION, REFLECTION, DECISION]:
        report["decision_breakdown"] = decision_breakdown(references, records, template)
    return report
