"""`occ-hf eval --model M --dataset D`: run a checkpoint's three-stage recognition over test rows and score it.

```bash
occ-hf eval --model runs/tiny --dataset occ-obman-cot --data_dir data/obman --views_dir data/views
occ-hf eval --model org/occ-internvl-1b --dataset org/occ-obman-cot --batch_size 32 --output_dir runs/eval-1b
```
```python
rows = load_test_rows("occ-obman-cot", data_dir="data/obman", views_dir="data/views")
predictions = predict(model_recognizer(model, processor), items_from_rows(rows), batch_size=16)
report = score_predictions(references_from_rows(rows), predictions)
```

The rows are the `test` config of `occ-obman-cot` (`image`, `view` or `None`, `id`, `label`, `occlusion`), built
from raw ObMan by the plugin or read from a published parquet folder or Hub repo. Their labels and occlusion are the
references; the model's `recognize()` answers through `occ_hf.eval.runner.predict` (batches, and the seed's rule for
an image whose inference raises), and the records are scored on Description, Reflection and Decision as in
`--predictions` mode. Beside the report, `predictions.json` keeps the answers in the seed's stage format with the
3D-view answer (`{id: {object, clarity, view_answer}}`), so `occ-hf eval --predictions` re-scores the run.

Images stay encoded (bytes) until their batch is recognised, so a full test set is never held decoded in memory.
"""

from dataclasses import replace
from pathlib import Path
from typing import Any

from .metrics import score_predictions
from .predictions import save_seed_predictions
from .records import Reference, normalize_sample_id
from .report import write_report
from .runner import EvalItem, Recognizer, predict, predict_sampled


__all__ = [
    "items_from_rows",
    "load_test_rows",
    "model_recognizer",
    "prompt_tables_for",
    "references_from_rows",
    "run_model_eval",
    "views_as_images",
]

_REQUIRED_COLUMNS = ("id", "image", "label")


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


def references_from_rows(rows) -> list[Reference]:
    """One [`Reference`] per row: the class name of `label` (a `ClassLabel` or a string) and `occlusion` if any."""
    import datasets

    label_feature = rows.features["label"]
    columns = rows.select_columns([c for c in ("id", "label", "occlusion") if c in rows.column_names])
    references = []
    for row in columns:
        label = row["label"]
        if isinstance(label_feature, datasets.ClassLabel):
            label = label_feature.int2str(label)
        occlusion = row.get("occlusion")
        references.append(
            Reference(normalize_sample_id(row["id"]), label, float(occlusion) if occlusion is not None else None)
        )
    return references


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
        results = model.recognize(
            [_decode(image) for image in images],
            views=[_decode(view) for view in views],
            processor=processor,
            prompt_style=prompt_style,
            **recognize_kwargs,
        )
        return [_stage_texts(result) for result in results]

    return recognize


def run_model_eval(config) -> tuple[dict, dict[str, Path]]:
    """Loads `config.model` and the rows of `config.dataset`, recognises, scores and writes the report.

    Args:
        config ([`EvalConfig`]): With `model` and `dataset` set.

    Returns:
        `(report, paths)`: the dict of [`score_predictions`] and the written files by name (`predictions` included).
    """
    if config.predictions or config.references is not None:
        raise ValueError(
            "occ-hf eval takes either --model with --dataset (the rows' labels are the references) or --predictions "
            "with --references, not both."
        )
    if config.dataset is None:
        raise ValueError(
            "occ-hf eval --model needs --dataset (occ-obman-cot with --data_dir, a parquet folder or a repo)."
        )
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    if config.num_samples < 1:
        raise ValueError(f"--num_samples must be at least 1, got {config.num_samples}.")
    model_config = AutoConfig.from_pretrained(config.model)
    prompt_style = config.prompt_style or getattr(model_config, "prompt_style", None)
    if config.prompt_style is not None:  # checked before the weights load, which can take minutes
        model_config.prompts = prompt_tables_for(getattr(model_config, "prompts", None), prompt_style, config.model)
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForImageTextToText.from_pretrained(config.model, config=model_config, dtype=config.dtype)
    model = model.to(device).eval()
    processor = AutoProcessor.from_pretrained(config.model)
    if not hasattr(model, "recognize"):
        raise ValueError(
            f"{config.model}: a {type(model).__name__} has no three-stage recognize(); evaluate an OccInternVL "
            "checkpoint (occ-hf convert-checkpoint converts InternVL ones)."
        )
    sampled = config.num_samples > 1
    generation_kwargs = {"do_sample": True, "temperature": config.temperature} if sampled else None
    recognize = model_recognizer(model, processor, prompt_style=prompt_style, generation_kwargs=generation_kwargs)
    rows = load_test_rows(
        config.dataset,
        config_name=config.dataset_config,
        split=config.split,
        data_dir=config.data_dir,
        views_dir=config.views_dir,
        max_samples=config.max_samples,
    )
    asked_on = ""
    if config.view_only:
        rows, asked_on = views_as_images(rows)
    references = references_from_rows(rows)
    items = items_from_rows(rows)
    source = (
        f"{config.model} on {config.dataset} ({config.dataset_config}/{config.split}, {len(references)} images"
        f"{asked_on}), prompt style {prompt_style}"
    )
    if sampled:
        torch.manual_seed(config.sampling_seed)
        predictions = predict_sampled(recognize, items, k=config.num_samples, batch_size=config.batch_size)
        source += f", majority vote of {config.num_samples} runs sampled at temperature {config.temperature}"
    else:
        predictions = predict(recognize, items, batch_size=config.batch_size)
    predictions = replace(predictions, source=source)
    report = score_predictions(
        references, predictions, template=config.answer_template, denominator=config.denominator
    )
    paths = write_report(report, config.output_dir)
    if not sampled:
        # A voted final answer need not follow from the voted stage answers, so only greedy runs are written in the
        # seed's per-stage format (which re-scores to the same numbers).
        paths["predictions"] = save_seed_predictions(predictions, Path(config.output_dir) / "predictions.json")
    return report, paths
