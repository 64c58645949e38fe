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

Several processes (`torchrun` or `accelerate launch`, one model each) split the work with [`shard_items`]: process
`i` of `n` recognises a contiguous run of whole batches, the batches a single process would have made, so every
`recognize()` call, padding included, is the one a single process makes and greedy answers are the same; shards
differ by at most one batch, a short last batch stays short (nothing is padded or repeated), and a process may get no
batch at all. [`gather_predictions`] all-gathers the records (`accelerate.utils.gather_object`) and
[`merge_shards`] joins them in process order, which is the rows' order, checking that every image is there exactly
once. (A strided split would give each process other batches than one process makes, and with them other padding.)
The records travel in memory rather than through per-process files merged after a barrier: no filesystem has to be
shared between nodes, no stale or half-written shard file of an earlier run can be merged by mistake, the gather is
its own barrier, and a record is a few short strings.

```python
shard = shard_items(items, batch_size=16, num_processes=state.num_processes, process_index=state.process_index)
predictions = gather_predictions(predict(recognize, shard, batch_size=16), [item.sample_id for item in items])
```
"""

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from .records import STAGES, ImagePrediction, PredictionSet, normalize_sample_id, vote_predictions


__all__ = [
    "EvalItem",
    "Recognizer",
    "RecognizerOutputError",
    "StageTexts",
    "gather_predictions",
    "items_from_rows",
    "load_test_rows",
    "merge_shards",
    "model_recognizer",
    "predict",
    "predict_sampled",
    "prompt_tables_for",
    "shard_items",
    "views_as_images",
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


def views_as_images(rows):
    """The rows that have a 3D view, with the view as their `image` and no view (every question asked on the view);
    returns them and a note for the report's source that says so and counts the rows left out."""
    if "view" not in rows.column_names:
        raise ValueError(
            f"view_only asks on the 3D views, but the rows have no `view` column (they have {rows.column_names}); "
            "build the test config with views_dir or views_url."
        )
    with_view = rows.filter(lambda view: view is not None, input_columns="view")
    asked = with_view.remove_columns("image").rename_column("view", "image")
    note = f", asked on their 3D views alone ({rows.num_rows - with_view.num_rows} without a view left out)"
    return asked, note


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
        # Decoding is PIL's C code, which releases the GIL: threads decode a batch several times faster.
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            images, views = list(pool.map(_decode, images)), list(pool.map(_decode, views))
        results = model.recognize(
            images,
            views=views,
            processor=processor,
            prompt_style=prompt_style,
            **recognize_kwargs,
        )
        return [_stage_texts(result) for result in results]

    return recognize


def shard_items(items: Sequence[EvalItem], batch_size: int, num_processes: int, process_index: int) -> list[EvalItem]:
    """The items that process `process_index` of `num_processes` recognises: a contiguous run of whole batches.

    The items are cut into the batches of `batch_size` that [`predict`] makes in one process, and the batches are
    dealt out in order, `num_batches * i // n` up to `num_batches * (i + 1) // n` to process `i`: the shards
    differ by at most one batch, concatenated in process order they are `items` again, and no item is padded or
    repeated (a process gets an empty shard when there are fewer batches than processes).

    Args:
        items (`Sequence[EvalItem]`): Every test image, in order.
        batch_size (`int`): Images per `recognize()` call, as passed to [`predict`].
        num_processes (`int`): How many processes share the work.
        process_index (`int`): This process, `0 <= process_index < num_processes`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    if not 0 <= process_index < num_processes:
        raise ValueError(f"process_index must be in [0, {num_processes}), got {process_index}.")
    num_batches = -(-len(items) // batch_size)
    first = num_batches * process_index // num_processes
    last = num_batches * (process_index + 1) // num_processes
    return list(items[first * batch_size : last * batch_size])


def merge_shards(shards: Sequence[Sequence[ImagePrediction]], sample_ids: Sequence[str]) -> list[ImagePrediction]:
    """The records of every process, joined in process order, checked to be `sample_ids` exactly once, in order.

    Args:
        shards (`Sequence[Sequence[ImagePrediction]]`): Each process's records, in process order, as
            [`shard_items`] dealt the items out.
        sample_ids (`Sequence[str]`): The ids of every item, in order.

    Raises:
        `ValueError`: when an image is missing, repeated or out of place (shards not made by [`shard_items`] with
            these items, or gathered out of order), naming the first one.
    """
    records = [record for shard in shards for record in shard]
    merged_ids = [record.sample_id for record in records]
    if merged_ids != list(sample_ids):
        position = next(
            (i for i, (got, want) in enumerate(zip(merged_ids, sample_ids, strict=False)) if got != want),
            min(len(merged_ids), len(sample_ids)),
        )
        got = merged_ids[position] if position < len(merged_ids) else "nothing"
        want = sample_ids[position] if position < len(sample_ids) else "nothing"
        raise ValueError(
            f"the {len(shards)} processes returned {len(merged_ids)} records for {len(sample_ids)} images, "
            f"{got} at position {position} where {want} belongs; each image must be recognised exactly once "
            "(shard the items with shard_items)."
        )
    return records


def gather_predictions(predictions: PredictionSet, sample_ids: Sequence[str]) -> PredictionSet:
    """Every process's records, gathered to every process and joined by [`merge_shards`].

    Call it on every process of a sharded run (it is a collective: each process waits for the others) with the
    records of its shard and the ids of all items; the result is the same on every process.
    """
    from accelerate.utils import gather_object

    shards = gather_object([list(predictions.records.values())])
    records = merge_shards(shards, sample_ids)
    return PredictionSet.from_records(records, stages=predictions.stages, source=predictions.source)
