"""Runs a three-stage recognizer over test images in batches and collects one [`ImagePrediction`] per image.

The model package supplies the recognizer (its `recognize()`, which asks Q1, the clarity question and, for the
images it finds unclear, Q1 again on the 3D view); this module batches the images, keeps their ids, and treats
failures as the seed does: an image whose inference raises gets no prediction (Description and Reflection leave it
out, Decision counts it wrong) and the run goes on.

```python
items = [EvalItem(sample.sample_id, sample.rgb_path, view=views.get(sample.sample_id)) for sample in split]
predictions = predict(lambda images, views: model.recognize(images, views), items, batch_size=16)
voted = predict_sampled(lambda images, views: model.recognize(images, views, do_sample=True), items, k=5)
```
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .records import STAGES, ImagePrediction, PredictionSet
from .self_consistency import vote_predictions


__all__ = ["EvalItem", "Recognizer", "RecognizerOutputError", "StageTexts", "predict", "predict_sampled"]

logger = logging.getLogger(__name__)


class StageTexts(Protocol):
    """What a recognizer returns per image: the raw text of each stage (a mapping with these keys also works)."""

    description: str | None
    clarity: str | None
    view_answer: str | None


Recognizer = Callable[[Sequence[Any], Sequence[Any | None]], Sequence[StageTexts | Mapping[str, str | None]]]
"""`recognize(images, views)`: one result per image, in order; `views[i]` is `None` when image i has no 3D view."""


@dataclass(frozen=True)
class EvalItem:
    """One test image as the recognizer takes it.

    Attributes:
        sample_id (`str`): The image's id.
        image (`Any`): What the recognizer reads (a path or a PIL image).
        view (`Any`, *optional*): The 3D-reconstructed view, or `None` when there is none.
    """

    sample_id: str
    image: Any
    view: Any | None = None


class RecognizerOutputError(ValueError):
    """The recognizer broke its contract (wrong number of results, answers that are not text): a bug, not a
    failed inference, so it stops the run instead of costing an image its prediction."""


def _stage_text(result, name: str) -> str | None:
    value = result.get(name) if isinstance(result, Mapping) else getattr(result, name)
    if value is not None and not isinstance(value, str):
        raise RecognizerOutputError(f"the recognizer returned {name}={value!r}; each answer must be a string or None.")
    return value


def _recognize_batch(recognize: Recognizer, batch: Sequence[EvalItem]) -> list:
    results = list(recognize([item.image for item in batch], [item.view for item in batch]))
    if len(results) != len(batch):
        raise RecognizerOutputError(
            f"the recognizer returned {len(results)} results for {len(batch)} images; it must return one per image."
        )
    return results


def predict(recognize: Recognizer, items: Iterable[EvalItem], batch_size: int = 8) -> PredictionSet:
    """Runs `recognize` over `items`, `batch_size` images at a time, and builds the records by the seed's rule.

    A batch that raises is retried image by image, so one bad image costs only its own prediction; an image that
    raises alone gets a record without answers, and the errors are logged with their ids. A recognizer that
    returns the wrong number of results or non-text answers is a bug and raises [`RecognizerOutputError`].

    Args:
        recognize ([`Recognizer`]): `recognize(images, views)` -> one [`StageTexts`] per image.
        items (`Iterable[EvalItem]`): The test images, each id once.
        batch_size (`int`, *optional*, defaults to `8`): Images per call.

    Returns:
        [`PredictionSet`] over every item, scored on all three stages.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    items = list(items)
    records: list[ImagePrediction] = []
    failed: dict[str, str] = {}
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        try:
            pairs = list(zip(batch, _recognize_batch(recognize, batch), strict=True))
        except RecognizerOutputError:
            raise
        except Exception:  # the seed's loop skips an image whose inference raised; find which one did
            pairs = []
            for item in batch:
                try:
                    pairs.append((item, _recognize_batch(recognize, [item])[0]))
                except RecognizerOutputError:
                    raise
                except Exception as error:
                    failed[item.sample_id] = f"{type(error).__name__}: {error}"
                    pairs.append((item, None))
        for item, result in pairs:
            if result is None:
                records.append(ImagePrediction.from_stages(item.sample_id, None, None))
                continue
            texts = {name: _stage_text(result, name) for name in ("description", "clarity", "view_answer")}
            records.append(ImagePrediction.from_stages(item.sample_id, **texts))
    if failed:
        first = next(iter(failed.items()))
        logger.warning("Inference raised on %d of %d images (first: %s %s)", len(failed), len(items), *first)
    return PredictionSet.from_records(records, stages=STAGES, source=f"recognizer over {len(items)} images")


def predict_sampled(recognize: Recognizer, items: Iterable[EvalItem], k: int, batch_size: int = 8) -> PredictionSet:
    """Self-consistency: `k` runs of a sampling `recognize` over `items`, reduced by [`vote_predictions`]."""
    if k < 1:
        raise ValueError(f"self-consistency needs k >= 1 sampled runs, got {k}.")
    items = list(items)
    runs = [predict(recognize, items, batch_size).records for _ in range(k)]
    return PredictionSet(vote_predictions(runs), stages=STAGES, source=f"majority vote of {k} sampled runs")
