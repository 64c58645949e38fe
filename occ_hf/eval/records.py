"""The per-image records that evaluation works on: what the model answered (`ImagePrediction`), what is true
(`Reference`), a run's set of answers (`PredictionSet`), and the majority vote that turns k sampled runs into one
record per image.

Evaluation flows one way, and this module is the type at its centre, imported by every step and importing none:

```
inference.py (a model over test rows) | predictions.py (a predictions file)    references.py (the truth)
        -> records.py: one ImagePrediction per image, built once     Reference per image
        -> metrics.py: pure functions of (references, records) -> the report dict
        -> report.py: report.json, report.md, plots          (run_eval.py, `occ-hf eval`, runs the whole line)
```

A source of predictions (the model's three-stage `recognize()`, a file) builds one `ImagePrediction` per image from
the raw text of each stage and lets the record derive the final answer by the seed's rule:

```python
record = ImagePrediction.from_stages(
    "00000003",
    description="The object is jar.",  # stage 1: Q1 on the image (None when its inference raised)
    clarity="No.",  # stage 2: the clarity question, raw text
    view_answer="The object is bowl.",  # stage 3: Q1 again on the 3D view; None when not asked or no view
)
record.decision  # "The object is bowl.": the answer Decision scores
```

The parsed class and the parsed clarity that a model may also return are not needed: the seed scores the texts
themselves (exact match for answers, its own normalisation for clarity), and so does `occ_hf.eval.metrics`.

Self-consistency (Wang et al., 2023): the seed decodes greedily, once; here the chain can also be sampled k times
and each image's record is the majority vote of its k records ([`vote_predictions`]). Each stage is voted on its
own, so that Description and Reflection still score a single stage-1 and stage-2 answer, while Decision scores the
vote over the k final answers (not a final answer rebuilt from voted stages, which could pair a voted "no" with a
view answer that no "no" run gave).

```python
runs = [predict(sampling_recognize, items).records for _ in range(5)]  # each: {sample_id: ImagePrediction}
voted = PredictionSet(vote_predictions(runs), source="self-consistency k=5")
```
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..cot.prompts import PROMPT_STYLES
from ..models.occ_internvl.prompts_occ_internvl import normalize_clarity
from ..obman.ids import obman_sample_id


__all__ = [
    "DECISION",
    "DESCRIPTION",
    "REFLECTION",
    "SEED_ANSWER_TEMPLATE",
    "STAGES",
    "ImagePrediction",
    "PredictionSet",
    "Reference",
    "final_answer",
    "majority_vote",
    "normalize_clarity",
    "normalize_sample_id",
    "vote_predictions",
]

DESCRIPTION, REFLECTION, DECISION = "description", "reflection", "decision"
STAGES = (DESCRIPTION, REFLECTION, DECISION)
# The seed's Q1 target (its `train_Q1_*.jsonl` answers and the ground truth its inference script compares with):
# what a right answer reads, for the references read from chat files and for the metrics.
SEED_ANSWER_TEMPLATE = PROMPT_STYLES["code"].answer_template


def normalize_sample_id(value: str | int, where: str | None = None) -> str:
    """ObMan ids as the reader names them: digit strings and ints become 8 digits (`3` -> `"00000003"`).

    Any other string is kept as it is, so that datasets with other ids can be scored too. Anything else (`3.0`,
    `null`, a list, a boolean) is a `ValueError` that names `where` (the file and row it came from) when given.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        prefix = f"{where}: " if where else ""
        raise ValueError(
            f"{prefix}sample id {value!r} is a {type(value).__name__}, expected a string or a whole number "
            '(e.g. "00000003" or 3).'
        )
    text = str(value).strip()
    return obman_sample_id(text, where) if text.isdigit() else text


@dataclass(frozen=True)
class Reference:
    """The truth about one test image.

    Attributes:
        sample_id (`str`): The image's id (8 digits for ObMan).
        label (`str`): Its class name, one of `occ_hf.obman.OCC_CLASSES`.
        occlusion (`float` or `None`): Share of the object hidden by the hand, for accuracy by occlusion level.
    """

    sample_id: str
    label: str
    occlusion: float | None = None


@dataclass(frozen=True)
class ImagePrediction:
    """What a model answered for one image, stage by stage, as raw text.

    Attributes:
        sample_id (`str`): The image's id.
        description (`str` or `None`): Stage 1, the answer to Q1 ("What's the object in the hand?") on the image;
            `None` when the image got no prediction (its inference raised).
        clarity (`str` or `None`): Stage 2, the raw answer to "Is it clear to identify the object in the hand?".
        view_answer (`str` or `None`): Stage 3, the answer to Q1 asked again, without history, on the
            3D-reconstructed view; `None` when it was not asked (the model said the image is clear) or the view was
            missing.
        decision (`str` or `None`): The final answer that Decision scores. [`ImagePrediction.from_stages`] derives
            it by the seed's rule; a file of final answers only (the seed's `{id: answer}`) sets it directly.
    """

    sample_id: str
    description: str | None = None
    clarity: str | None = None
    view_answer: str | None = None
    decision: str | None = None

    @classmethod
    def from_stages(
        cls,
        sample_id: str | int,
        description: str | None,
        clarity: str | None,
        view_answer: str | None = None,
    ) -> "ImagePrediction":
        """Builds the record from the stage texts; the final answer is [`final_answer`] of them (the seed's rule)."""
        return cls(
            normalize_sample_id(sample_id),
            description,
            clarity,
            view_answer,
            final_answer(description, clarity, view_answer),
        )


def final_answer(description: str | None, clarity: str | None, view_answer: str | None) -> str | None:
    """The answer that Decision scores, by the seed's `process_unclear_images`.

    Clarity `"yes"` (after [`normalize_clarity`]) keeps the description, `"no"` takes the answer on the 3D view
    (`None` when the view was missing), and any other clarity text, or no description at all, leaves the image
    without a final answer, which Decision counts as wrong.
    """
    clear = normalize_clarity(clarity) if description is not None else None
    if clear == "yes":
        return description
    if clear == "no":
        return view_answer
    return None


@dataclass
class PredictionSet:
    """The predictions of one run, keyed by sample id, with the stages they can be scored on.

    Attributes:
        records (`dict[str, ImagePrediction]`): One record per image that the run saw.
        stages (`tuple[str, ...]`): Which of `"description"`, `"reflection"`, `"decision"` the records hold:
            the seed's `{id: {object, clarity}}` files have no 3D-view answers (no Decision), its `{id: answer}`
            files hold only final answers (Decision only).
        source (`str`): Where the predictions came from, for reports and error messages.
    """

    records: dict[str, ImagePrediction]
    stages: tuple[str, ...] = STAGES
    source: str = "<memory>"

    def __post_init__(self):
        unknown = [stage for stage in self.stages if stage not in STAGES]
        if unknown or not self.stages:
            raise ValueError(f"{self.source}: unknown stages {unknown}; expected a subset of {STAGES}.")

    @classmethod
    def from_records(cls, records: Mapping[str, ImagePrediction] | list[ImagePrediction], **kwargs) -> "PredictionSet":
        """Keys a list of records by their ids (a repeated id is an error naming the id)."""
        if isinstance(records, Mapping):
            return cls(dict(records), **kwargs)
        keyed: dict[str, ImagePrediction] = {}
        for record in records:
            if record.sample_id in keyed:
                raise ValueError(f"{kwargs.get('source', '<memory>')}: sample id {record.sample_id} appears twice.")
            keyed[record.sample_id] = record
        return cls(keyed, **kwargs)


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most frequent answer among those that are not `None`; `None` when every sample abstained.

    Abstentions (an image whose sample raised, or a final answer missing for want of a view) do not vote. A tie
    goes to the tied answer that appears first in `answers`, so the result depends only on the samples' order.
    """
    counts: dict[str, int] = {}
    for answer in answers:
        if answer is not None:
            counts[answer] = counts.get(answer, 0) + 1
    if not counts:
        return None
    # dicts keep first-occurrence order and max() returns the first maximum: ties go to the earliest answer.
    return max(counts, key=counts.__getitem__)


def vote_predictions(runs: Sequence[Mapping[str, ImagePrediction]]) -> dict[str, ImagePrediction]:
    """One record per image from k sampled runs: each stage's text and the final answer by [`majority_vote`].

    Args:
        runs (`Sequence[Mapping[str, ImagePrediction]]`): The k runs, each keyed by sample id; an image that a run
            lacks counts as that run's abstention.

    Returns:
        `dict[str, ImagePrediction]` keyed like the runs (ids in order of first appearance). Clarity is voted on
        its normalised text (`"yes"`, `"no"`, ...), which the metrics normalise the same way.
    """
    if not runs:
        raise ValueError("self-consistency needs at least one run of predictions (k >= 1).")
    sample_ids = list(dict.fromkeys(sample_id for run in runs for sample_id in run))
    voted = {}
    for sample_id in sample_ids:
        samples = [run[sample_id] for run in runs if sample_id in run]
        voted[sample_id] = ImagePrediction(
            sample_id=sample_id,
            description=majority_vote([s.description for s in samples]),
            clarity=majority_vote([normalize_clarity(s.clarity) for s in samples if s.description is not None]),
            view_answer=majority_vote([s.view_answer for s in samples]),
            decision=majority_vote([s.decision for s in samples]),
        )
    return voted
