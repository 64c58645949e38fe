"""Runs a model's three-stage recognition over test rows in batches and collects one [`ImagePrediction`] per image.

The first step of evaluation with a model (predictions -> records -> metrics -> report; the other source of
predictions is a file, `occ_hf.eval.predictions`). The model package supplies the recognizer (its `recognize()`,
which asks Q1, the clarity question and, for the images it finds unclear, Q1 again on the 3D view); this module turns
dataset rows into [`EvalItem`]s, batches them, keeps their ids, and treats failures as the seed does: an image whose
inference raises gets no prediction (Description and Reflection leave it out, Decision counts it wrong) and the run
goes on. Each record is built once, here, from the stage texts (`occ_hf.eval.records`).

```python
rows = load_test_rows("occ-obman-cot", data_dir="data/obman", views_dir="data/views")
items = items_from_rows(rows)
predictions = predict(model_recognizer(model, processor), items, batch_size=16)
sampling = model_recognizer(model, processor, generation_kwargs={"do_sample": True, "temperature": 0.7})
voted = predict_sampled(sampling, items, k=5)
```

Images stay encoded (bytes) until their batch is recognised, so a full test set is never held decoded in memory.
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .records import STAGES, ImagePrediction, PredictionSet, normalize_sample_id, vote_predictions


__all__ = [
    "EvalItem",
    "Recognizer",
    "RecognizerOutputError",
    "StageTexts",
    "items_from_rows",
    "load_test_rows",
    "model_recognizer",
    "predict",
    "predict_sampled",
    "prompt_tables_for",
]

logger = logging.getLogger(__name__)

_REQUIRED_COLUMNS = ("id", "image", "label")


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


def load_test_rows(
    dataset: str,
    config_name: str = "test",
    split: str = "test",
    data_dir: str | None = None,
    views_dir: str | None = None,
    max_samples: int | None = None,
):
    """Loads the test rows with `datasets.load_dataset`, images left encoded.

    Args:
        dataset (`str`): `"occ-obman-cot"` (the plugin builder, with `data_dir`), a parquet folder or a Hub repo id.
        config_name (`str`, *optional*, defaults to `"test"`): The dataset config holding `image`, `view`, `id`,
            `label` and `occlusion`.
        split (`str`, *optional*, defaults to `"test"`): The split to read.
        data_dir (`str`, *optional*): Passed to `load_dataset` (the ObMan root, for the plugin builder).
        views_dir (`str`, *optional*): Folder of 3D views, passed to the plugin builder (`views_dir`).
        max_samples (`int`, *optional*): Keep only the first rows.

    Returns:
        `datasets.Dataset` with `image` (and `view`) as `{"bytes", "path"}` dicts.
    """
    import datasets

    kwargs = {key: value for key, value in (("data_dir", data_dir), ("views_dir", views_dir)) if value is not None}
    rows = datasets.load_dataset(dataset, config_name, split=split, **kwargs)
    missing = [column for column in _REQUIRED_COLUMNS if column not in rows.column_names]
    if missing:
        raise ValueError(
            f"{dataset} ({config_name}/{split}) has no column(s) {missing} (it has {rows.column_names}); evaluation "
            "reads the `test` config of occ-obman-cot (image, view, id, label, occlusion): pass --config test."
        )
    if max_samples is not None:
        if max_samples < 1:
            raise ValueError(f"max_samples must be at least 1, got {max_samples}.")
        rows = rows.select(range(min(max_samples, rows.num_rows)))
    for column in ("image", "view"):
        if isinstance(rows.features.get(column), datasets.Image):
            rows = rows.cast_column(column, datasets.Image(decode=False))
    return rows


def items_from_rows(rows) -> list[EvalItem]:
    """One [`EvalItem`] per row, with the image and view as the rows hold them (`None` where a view is missing)."""
    columns = rows.select_columns([c for c in ("id", "image", "view") if c in rows.column_names])
    return [EvalItem(normalize_sample_id(row["id"]), row["image"], row.get("view")) for row in columns]


def _decode(image: Any):
    """A PIL RGB image from what a row holds: an encoded `{"bytes", "path"}` dict, a path or a PIL image."""
    import datasets
    from PIL import Image

    if image is None:
        return None
    if not isinstance(image, Image.Image):
        image = datasets.Image().decode_example(image if isinstance(image, dict) else {"path": str(image)})
    return image.convert("RGB")


def _stage_texts(recognition) -> dict[str, str | None]:
    # The seed's stages: Q1 on the image, the clarity answer, and Q1 on the 3D view only where the decision used it
    # (`decide` is None when the image was judged clear or its view was missing).
    return {
        "description": recognition.describe[0],
        "clarity": recognition.reflect,
        "view_answer": recognition.decide if recognition.used_view else None,
    }


def prompt_tables_for(checkpoint_prompts: dict | None, prompt_style: str, checkpoint: str = "the checkpoint") -> dict:
    """The prompt tables to give a checkpoint so that it can be asked in `prompt_style`: its own `config.prompts`,
    plus occ-hf's table of that style (`occ_hf.cot.prompts`) when the checkpoint lacks it (a checkpoint saved before
    the style was added); the checkpoint's own table wins where both have it.

    Raises:
        `ValueError`: for a style neither has, listing the known ones.
    """
    from ..cot.prompts import checkpoint_prompt_tables

    tables = dict(checkpoint_prompts or {})
    known = {**checkpoint_prompt_tables(), **tables}
    if prompt_style not in known:
        raise ValueError(
            f"--prompt_style {prompt_style!r} is unknown: {checkpoint} and occ-hf know {', '.join(sorted(known))}."
        )
    tables.setdefault(prompt_style, known[prompt_style])
    return tables


def model_recognizer(model, processor, prompt_style: str | None = None, **recognize_kwargs) -> Recognizer:
    """The [`Recognizer`] of an OccInternVL model: decodes a batch, calls `model.recognize`, returns the stage texts.

    Args:
        model (`OccInternVLForConditionalGeneration`): The model; its config must use the `staged` decision policy and
            a prompt style whose describe stage names the class (`code`), the seed's chain that the metrics score.
        processor (`OccInternVLProcessor`): Its processor.
        prompt_style (`str`, *optional*, defaults to `model.config.prompt_style`): The style to ask in, a key of
            `model.config.prompts` (see [`prompt_tables_for`] to add one of occ-hf's).
        **recognize_kwargs: Passed to `model.recognize` (`max_new_tokens`, `reuse_cache`, `generation_kwargs`).
    """
    config = model.config
    prompt_style = prompt_style or config.prompt_style
    prompts = config.prompts[prompt_style]
    if config.decision_policy != "staged" or not prompts["class_in_describe"]:
        raise ValueError(
            f"{config.name_or_path or 'this model'}: prompt style {prompt_style!r} with the "
            f"{config.decision_policy!r} policy does not answer the seed's Q1 first, so Description and Reflection "
            "cannot be scored; use --prompt_style code (or code_published) and config.decision_policy='staged' "
            "(config.json)."
        )

    def recognize(images, views):
        results = model.recognize(
            [_decode(image) for image in images],
            views=[_decode(view) for view in views],
            processor=processor,
            prompt_style=prompt_style,
            **recognize_kwargs,
        )
        return [_stage_texts(result) for result in results]

    return recognize
