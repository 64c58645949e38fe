"""`occ-hf eval`: predictions (from a model or from files) -> records -> metrics -> report, in one line.

```bash
occ-hf eval --predictions runs/mpo/predictions.jsonl --references data/obman --split test --output_dir runs/eval
occ-hf eval --predictions ../shared/seed/predictions-mpo.head100.json --references labels.json
occ-hf eval --predictions s0.jsonl s1.jsonl s2.jsonl s3.jsonl s4.jsonl --references data/obman   # self-consistency
occ-hf eval --predictions seed_run.json --references eccv_test.json --denominator seed   # divide as the seed divides
```

Several prediction files are k sampled runs: they are reduced by majority vote
(`occ_hf.eval.predictions.load_prediction_runs`) and the vote is scored. With `--model` and `--dataset` instead, the
model is run over the dataset's test rows (`occ_hf.eval.inference`), whose labels and occlusion are the references;
the run also writes its answers as `predictions.json`, in the seed's stage format with the 3D-view answer
(`{id: {object, clarity, view_answer}}`), so that `occ-hf eval --predictions` re-scores it:

```bash
occ-hf eval --model runs/tiny --dataset occ-obman-cot --data_dir data/obman --views_dir data/views --batch_size 16
occ-hf eval --predictions runs/eval/predictions.json --references data/obman   # re-scores that run
occ-hf eval --model org/occ-internvl-1b --prompt_style code_published --dataset occ-obman-cot --data_dir data/obman
```

`--prompt_style code_published` asks the clarity question as the scripts behind the seed's published figures did
(`occ_hf.cot.prompts.EVALUATION_PROMPT_STYLES`), so that a released checkpoint is scored as it was.

Launched as several processes (`torchrun --nproc_per_node N -m occ_hf.cli eval --model ...`, or `accelerate launch`),
`--model` shards the rows: each process loads the model on its own device and recognises its share of whole
batches (`occ_hf.eval.inference.shard_items`), the records are all-gathered in the rows' order, every process scores
them, and only the main process writes the report and `predictions.json`, which are the files one process writes.
One process touches no distributed state at all.

Each step is one module and reads only the step before it: `inference` or `predictions` build the records
(`records`), `references` the truth, `metrics` scores them, `report` renders the scores. This module is the only one
that calls them all.
"""

import contextlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .inference import (
    gather_predictions,
    items_from_rows,
    load_test_rows,
    model_recognizer,
    predict,
    predict_sampled,
    prompt_tables_for,
    shard_items,
    views_as_images,
)
from .metrics import check_scoring_options, score_predictions
from .predictions import load_prediction_runs, save_seed_predictions
from .records import SEED_ANSWER_TEMPLATE, PredictionSet, Reference
from .references import load_references, references_from_rows
from .report import write_report


__all__ = ["EvalConfig", "run_eval"]


@dataclass
class EvalConfig:
    r"""
    Configuration of `occ-hf eval`, which scores predictions with [`score_predictions`] and writes the report.

    > Parameters that select the inputs: a model and a dataset, or predictions and references

    Parameters:
        model (`str`, *optional*):
            A checkpoint folder or Hub repo id, loaded with `AutoModelForImageTextToText` and `AutoProcessor`, whose
            `recognize()` is run over the dataset's rows (an OccInternVL model, `code` prompts, `staged` policy).
        dataset (`str`, *optional*):
            With `model`: `occ-obman-cot` (built from `data_dir`), a parquet folder or a Hub dataset repo; its rows'
            `label` and `occlusion` are the references.
        dataset_config (`str`, *optional*, defaults to `"test"`):
            The dataset config to read (`--config`): it must have `image`, `view`, `id`, `label`, `occlusion`.
        data_dir (`str`, *optional*), views_dir (`str`, *optional*):
            The ObMan root and the folder of 3D views, passed to `load_dataset` (for the `occ-obman-cot` builder).
        prompt_style (`str`, *optional*):
            With `model`: the prompt style `recognize()` asks in, a key of the checkpoint's `config.prompts` or one of
            occ-hf's (`code`, `code_published`; a style the checkpoint lacks is taken from
            `occ_hf.cot.prompts`, the checkpoint's own table wins where both have it); defaults to the checkpoint's
            `config.prompt_style`. `code_published` is `code` with the clarity question as the seed's published
            figures were scored (`"Is it clear to identify the object in the hand??\n"`).
        batch_size (`int`, *optional*, defaults to `256`):
            Images per `recognize()` call. Larger batches are faster on a GPU (the 1B shape on an H200: 161 images/s
            at 256, 226 at 512, benchmarks/README.md); lower it where memory is short (an 8B model's KV cache at 256
            images is ~12 GB).
        max_samples (`int`, *optional*):
            Evaluate only the first rows.
        view_only (`bool`, *optional*, defaults to `False`):
            With `model`: ask every question on each row's 3D view instead of its image (rows without a view are
            left out, and counted in the report's source). The Description of that run is the view-only accuracy:
            what the Decision stage gets for an image it sends to its view.
        device (`str`, *optional*):
            Where the model runs; defaults to `cuda` when available, else `cpu`. Under several processes each one
            takes its own device of that kind (`cuda:LOCAL_RANK`, or the CPU).
        dtype (`str`, *optional*, defaults to `"auto"`):
            Weights dtype passed to `from_pretrained` (`auto` keeps the checkpoint's; `bfloat16` on a GPU).
        predictions (`list[str]`):
            Predictions file(s): the seed's `{id: answer}` or `{id: {object, clarity}}` JSON, or occ-hf's staged
            JSONL. Several files are k sampled runs, reduced by majority vote (self-consistency).
        references (`str`):
            An ObMan root folder (read with `ObManSplit`), the seed's chat JSONL (or its rows as one JSON array, like
            the seed's `eccv_test.json`), or a JSON/JSONL of `{id, label[, occlusion]}`.
        split (`str`, *optional*, defaults to `"test"`):
            The split of the dataset, or of the ObMan root given as `references`.
        reference_ids (`str`, *optional*):
            A list of the test ids (e.g. the seed's `obman_view_test_all.txt`); the references are restricted to
            it, in its order, and every id must have a reference.
        shapenet_root (`str`, *optional*), on_unknown_class (`str`, *optional*, defaults to `"error"`):
            Passed to `ObManSplit` when `references` is an ObMan root.

    > Parameters that control the scoring and the output

    Parameters:
        answer_template (`str`, *optional*, defaults to `"The object is {class_name}."`):
            The exact answer that counts as right, formatted with the class name.
        on_extra_prediction (`str`, *optional*, defaults to `"error"`):
            `error` or `ignore` (listed in the report) for predicted ids that no reference has.
        denominator (`str`, *optional*, defaults to `"references"`):
            What Description and Reflection divide by: `references` (the reference images with a prediction) or
            `seed` (every prediction, as the seed's script: a predicted id outside the references has no label here
            and counts as wrong; see `occ_hf.eval.metrics`).
        output_dir (`str`, *optional*, defaults to `"runs/eval"`):
            Where `report.json`, `report.md` and the PNG plots go (and `predictions.json` with `model`).
    """

    model: str | None = field(default=None, metadata={"help": "Checkpoint folder or Hub id to run and score."})
    dataset: str | None = field(
        default=None, metadata={"help": "With --model: occ-obman-cot (with --data_dir), a parquet folder or a repo."}
    )
    dataset_config: str = field(
        default="test", metadata={"help": "Dataset config with image, view, id, label.", "aliases": ["--config"]}
    )
    data_dir: str | None = field(default=None, metadata={"help": "ObMan root, for the occ-obman-cot builder."})
    views_dir: str | None = field(default=None, metadata={"help": "Folder of 3D views (seed file names)."})
    prompt_style: str | None = field(
        default=None,
        metadata={
            "help": "With --model: the prompt style recognize() asks in (code; code_published: the clarity question "
            "as the seed's published figures were scored); defaults to the checkpoint's config.prompt_style."
        },
    )
    batch_size: int = field(
        default=256, metadata={"help": "Images per recognize() call; lower it where GPU memory is short."}
    )
    max_samples: int | None = field(default=None, metadata={"help": "Evaluate only the first rows."})
    view_only: bool = field(
        default=False,
        metadata={"help": "With --model: ask on each row's 3D view instead of its image (the view-only accuracy)."},
    )
    device: str | None = field(default=None, metadata={"help": "cuda or cpu; cuda when available by default."})
    dtype: str = field(default="auto", metadata={"help": "Weights dtype for from_pretrained (auto, bfloat16, ...)."})
    num_samples: int = field(
        default=1, metadata={"help": "With --model: k > 1 sampled runs, majority-voted (self-consistency)."}
    )
    temperature: float = field(default=0.7, metadata={"help": "Sampling temperature of those runs."})
    sampling_seed: int = field(default=0, metadata={"help": "Seed of the sampled runs."})

    predictions: list[str] = field(
        default_factory=list, metadata={"help": "Predictions file(s); several = k sampled runs, majority-voted."}
    )
    references: str | None = field(
        default=None,
        metadata={"help": "ObMan root, seed chat jsonl/json array (eccv_test.json), or JSON/JSONL of {id, label}."},
    )
    split: str = field(default="test", metadata={"help": "Split of the ObMan root to read."})
    reference_ids: str | None = field(default=None, metadata={"help": "Id list restricting the references."})
    shapenet_root: str | None = field(default=None, metadata={"help": "ShapeNetCore.v2 root (checks meshes)."})
    on_unknown_class: str = field(default="error", metadata={"help": "error or skip for non-OCC ObMan classes."})
    answer_template: str = field(
        default=SEED_ANSWER_TEMPLATE, metadata={"help": "Expected answer; {class_name} (or {}) is the class."}
    )
    on_extra_prediction: str = field(default="error", metadata={"help": "error or ignore ids without reference."})
    denominator: str = field(
        default="references",
        metadata={
            "help": "Description/Reflection over: references (their images with a prediction) or seed (every "
            "prediction, as the seed divides; ids outside the references count as wrong, having no label)."
        },
    )
    output_dir: str = field(default="runs/eval", metadata={"help": "Where the report and plots go."})


def _references_and_predictions(config: EvalConfig) -> tuple[list[Reference], PredictionSet]:
    """`--predictions` with `--references`: both read from files."""
    if not config.predictions:
        raise ValueError(
            "occ-hf eval needs --predictions FILE [FILE ...] with --references, or --model with --dataset."
        )
    if config.prompt_style is not None:
        raise ValueError(
            "occ-hf eval --prompt_style only applies with --model (it says what the model is asked); predictions "
            "already hold the answers: leave it out."
        )
    if config.references is None:
        raise ValueError("occ-hf eval needs --references (an ObMan root, a seed chat jsonl, or a labels JSON/JSONL).")
    ids = None
    if config.reference_ids is not None:
        from ..obman import read_id_list

        ids, _ = read_id_list(config.reference_ids)
    references = load_references(
        config.references,
        split=config.split,
        ids=ids,
        shapenet_root=config.shapenet_root,
        on_unknown_class=config.on_unknown_class,
        template=config.answer_template,
    )
    return references, load_prediction_runs(config.predictions)


def _process_state(device: str):
    """accelerate's `PartialState` when this process is one of several (a launcher set `WORLD_SIZE` > 1, or the
    caller already joined a process group), else `None`, so that a single process creates no distributed state.

    `cpu` follows the device asked for: without it, accelerate takes each process of a CPU-only `torchrun` for a
    lone one, and every process would recognise and write everything.
    """
    import torch

    joined = torch.distributed.is_available() and torch.distributed.is_initialized()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not joined:
        return None
    from accelerate import PartialState

    state = PartialState(cpu=torch.device(device).type == "cpu")
    return state if state.num_processes > 1 else None


def _model_references_and_predictions(config: EvalConfig) -> tuple[list[Reference], PredictionSet, bool]:
    """`--model` with `--dataset`: the rows' labels are the references, the model's answers the predictions.

    Returns:
        `(references, predictions, is_main_process)`; under several processes each recognises its shard and
        every process gets all the records.
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
    state = _process_state(device)
    if state is not None:  # one device per process: cuda:LOCAL_RANK, or the CPU
        device = state.device
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
    # The main process builds the dataset's cache first, the others then read it instead of building it again.
    with state.main_process_first() if state is not None else contextlib.nullcontext():
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
    shard = items
    if state is not None:
        shard = shard_items(items, config.batch_size, state.num_processes, state.process_index)
    if sampled:
        # Every process seeds the same: its shard's sampled answers differ from a single process's (the random
        # stream runs over other batches), as any two sampled runs do.
        torch.manual_seed(config.sampling_seed)
        predictions = predict_sampled(recognize, shard, k=config.num_samples, batch_size=config.batch_size)
        source += f", majority vote of {config.num_samples} runs sampled at temperature {config.temperature}"
    else:
        predictions = predict(recognize, shard, batch_size=config.batch_size)
    if state is not None:
        predictions = gather_predictions(predictions, [item.sample_id for item in items])
    return references, replace(predictions, source=source), state is None or state.is_main_process


def run_eval(config: EvalConfig) -> tuple[dict, dict[str, Path]]:
    """Reads the predictions and references of `config` (or runs `config.model` over `config.dataset`), scores them
    and writes the report; returns both.

    Returns:
        `(report, paths)`: the dict of [`score_predictions`] and the written files by name (`predictions` too with a
        greedy `model` run). Under several processes every process returns the report, and only the main process
        writes: the others return empty `paths`.
    """
    check_scoring_options(config.on_extra_prediction, config.denominator)  # before loading anything
    if config.model is not None:
        references, predictions, writes = _model_references_and_predictions(config)
    else:
        references, predictions = _references_and_predictions(config)
        writes = True
    report = score_predictions(
        references,
        predictions,
        template=config.answer_template,
        on_extra_prediction=config.on_extra_prediction,
        denominator=config.denominator,
    )
    if not writes:
        return report, {}
    paths = write_report(report, config.output_dir)
    if config.model is not None and config.num_samples == 1:
        # A voted final answer need not follow from the voted stage answers, so only greedy runs are written in the
        # seed's per-stage format (which re-scores to the same numbers).
        paths["predictions"] = save_seed_predictions(predictions, Path(config.output_dir) / "predictions.json")
    return report, paths
