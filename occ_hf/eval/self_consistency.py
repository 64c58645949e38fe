"""Self-consistency: k sampled runs of the three-stage chain, reduced to one record per image by majority vote.

The seed decodes greedily, once. With self-consistency (Wang et al., 2023) the chain is sampled k times and the
most frequent answer wins. Each stage is voted on its own, so that Description and Reflection still score a single
stage-1 and stage-2 answer, while Decision scores the vote over the k final answers (not a final answer rebuilt
from voted stages, which could pair a voted "no" with a view answer that no "no" run gave).

```python
runs = [recognize_all(sampling=True, seed=s) for s in range(5)]  # each: {sample_id: ImagePrediction}
voted = vote_predictions(runs)
report = score_predictions(references, PredictionSet(voted, source="self-consistency k=5"))
```
"""

from collections.abc import Mapping, Sequence

from .records import ImagePrediction, normalize_clarity


__all__ = ["majority_vote", "vote_predictions"]


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
