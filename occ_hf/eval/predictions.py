"""Prediction files in and out: the seed's two formats and occ-hf's own staged JSONL.

One of the two sources of predictions (the other is a model, `occ_hf.eval.inference`): a file is read into one
record per image (`occ_hf.eval.records`), which the metrics then score; writing goes the other way, records to a
file, so that a model's run can be scored again later.

Accepted by [`load_predictions`]:

- the seed's final answers, `{id: answer}` (`predictions-mpo.json`, written by its `process_unclear_images`):
  scored on Decision only, since they hold neither the Q1 answer nor the clarity;
- the seed's stage answers, `{id: {"object": answer, "clarity": text}}` (its `process_test_images`): scored on
  Description and Reflection; with a `"view_answer"` in every entry (the answer on the 3D view, `null` where not
  asked or no view), on Decision too;
- occ-hf's JSONL (or a JSON list) of `{"id", "description", "clarity", "view_answer"[, "decision"]}` rows, which
  [`save_predictions`] writes: every stage.

[`load_prediction_runs`] reads several files as k sampled runs and reduces them by majority vote (self-consistency,
`occ_hf.eval.records.vote_predictions`); given one file it is [`load_predictions`].

[`save_seed_predictions`] writes the seed's stage format with `"view_answer"` (what `occ-hf eval --model` leaves
beside its report), which reads back scored on every stage.

```python
predictions = load_predictions("../shared/seed/predictions-mpo.head100.json")
predictions.stages  # ("decision",)
save_predictions(predictions, "runs/eval/predictions.jsonl")
```
"""

import json
import os
from collections.abc import Sequence
from pathlib import Path

from ..jsonl import parse_json, read_jsonl_rows, read_text_file
from .records import (
    DECISION,
    DESCRIPTION,
    REFLECTION,
    STAGES,
    ImagePrediction,
    PredictionSet,
    final_answer,
    normalize_sample_id,
    vote_predictions,
)


__all__ = ["load_prediction_runs", "load_predictions", "save_predictions", "save_seed_predictions"]

_ROW_KEYS = ("id", "description", "clarity", "view_answer")


def _text(value, where: str, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{where}: {key!r} is a {type(value).__name__} ({value!r}), expected a string or null.")


def _from_mapping(data: dict, source: str) -> PredictionSet:
    kinds = {type(value).__name__ for value in data.values()}
    if kinds <= {"str", "NoneType"}:
        records = [
            ImagePrediction(normalize_sample_id(key), decision=_text(value, f"{source}, id {key}", "answer"))
            for key, value in data.items()
        ]
        return PredictionSet.from_records(records, stages=(DECISION,), source=source)
    if kinds != {"dict"}:
        raise ValueError(
            f"{source}: values are a mix of {sorted(kinds)}; expected all answers ({{id: answer}}) or all "
            "stage dicts ({id: {'object': ..., 'clarity': ...}}), as the seed writes them."
        )
    with_view = [key for key, value in data.items() if "view_answer" in value]
    if with_view and len(with_view) != len(data):
        raise ValueError(
            f"{source}: {len(with_view)} of {len(data)} entries have 'view_answer'; give it for every image "
            "(null where the view was not asked or missing) or for none."
        )
    records = []
    for key, value in data.items():
        where = f"{source}, id {key}"
        description_key = "object" if "object" in value else "description"
        missing = [name for name in (description_key, "clarity") if name not in value]
        if missing:
            raise ValueError(f"{where}: missing {missing}; the seed's stage format is {{'object', 'clarity'}}.")
        records.append(
            ImagePrediction.from_stages(
                key,
                _text(value[description_key], where, description_key),
                _text(value["clarity"], where, "clarity"),
                _text(value.get("view_answer"), where, "view_answer"),
            )
        )
    stages = STAGES if with_view else (DESCRIPTION, REFLECTION)
    return PredictionSet.from_records(records, stages=stages, source=source)


def _from_rows(rows: list, source: str) -> PredictionSet:
    records = []
    for position, row in rows:
        where = f"{source}:{position}"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object with keys {list(_ROW_KEYS)}, got {row!r}.")
        missing = [key for key in _ROW_KEYS if key not in row]
        if missing:
            raise ValueError(
                f"{where}: missing keys {missing}; each row needs {list(_ROW_KEYS)} "
                "(null where a stage has no answer)."
            )
        sample_id = normalize_sample_id(row["id"], where)
        description = _text(row["description"], where, "description")
        clarity = _text(row["clarity"], where, "clarity")
        view_answer = _text(row["view_answer"], where, "view_answer")
        if "decision" in row:  # a voted (self-consistency) record keeps its own final answer
            decision = _text(row["decision"], where, "decision")
        else:
            decision = final_answer(description, clarity, view_answer)
        records.append(ImagePrediction(sample_id, description, clarity, view_answer, decision))
    return PredictionSet.from_records(records, stages=STAGES, source=source)


def load_predictions(path: str | os.PathLike) -> PredictionSet:
    """Reads a predictions file in any format of the module docstring; errors name the file and the entry.

    Args:
        path (`str` or `os.PathLike`): A `.json` (seed formats, or a list of rows) or `.jsonl` file.

    Returns:
        [`PredictionSet`] with the stages that the format can be scored on.
    """
    path = Path(path)
    source = str(path)
    try:
        text = read_text_file(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: predictions file not found.") from None
    if path.suffix == ".jsonl":
        rows = read_jsonl_rows(path, text)
        if not rows:
            raise ValueError(f"{path}: no predictions (the file is empty).")
        return _from_rows(rows, source)
    data = parse_json(text, path)
    if not data:
        raise ValueError(f"{path}: no predictions (empty {type(data).__name__}).")
    if isinstance(data, dict):
        return _from_mapping(data, source)
    if isinstance(data, list):
        return _from_rows(list(enumerate(data)), source)
    raise ValueError(f"{path}: expected a JSON object or list of predictions, got a {type(data).__name__}.")


def load_prediction_runs(paths: Sequence[str | os.PathLike]) -> PredictionSet:
    """Reads one predictions file, or several as k sampled runs reduced by majority vote on the stages they share.

    Args:
        paths (`Sequence[str | os.PathLike]`): The files, each in a format of [`load_predictions`].

    Returns:
        [`PredictionSet`]: the file's records, or the vote of the runs ([`vote_predictions`]).
    """
    runs = [load_predictions(path) for path in paths]
    if len(runs) == 1:
        return runs[0]
    names = [str(path) for path in paths]
    stages = tuple(stage for stage in STAGES if all(stage in run.stages for run in runs))
    if not stages:
        raise ValueError(f"{names}: these runs share no stage to vote on; give runs in the same format.")
    return PredictionSet(
        vote_predictions([run.records for run in runs]),
        stages=stages,
        source=f"majority vote of {len(runs)} runs ({', '.join(names)})",
    )


def save_predictions(predictions: PredictionSet, path: str | os.PathLike) -> Path:
    """Writes every record as a JSONL row `{id, description, clarity, view_answer, decision}`; returns the path.

    Only sets that hold every stage are written: rows of the seed's partial formats would read back as if the
    missing stages had been asked and left unanswered. Keep such files as they are.
    """
    if tuple(predictions.stages) != STAGES:
        raise ValueError(
            f"{predictions.source}: these predictions hold only {list(predictions.stages)}; staged rows need every "
            f"stage of {list(STAGES)}. Keep the original file instead."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for record in predictions.records.values():
            row = {
                "id": record.sample_id,
                "description": record.description,
                "clarity": record.clarity,
                "view_answer": record.view_answer,
                "decision": record.decision,
            }
            f.write(json.dumps(row) + "\n")
    return path


def save_seed_predictions(predictions: PredictionSet, path: str | os.PathLike) -> Path:
    """Writes the seed's stage format with the 3D-view answer, `{id: {"object", "clarity", "view_answer"}}`.

    [`load_predictions`] reads it back to the same records, since their final answer follows from the three stage
    texts by the seed's rule ([`final_answer`]). Records whose final answer does not (a majority vote of sampled
    runs) cannot be written in this format: use [`save_predictions`] for them.

    Args:
        predictions ([`PredictionSet`]): Records with every stage.
        path (`str` or `os.PathLike`): The `.json` file to write.

    Returns:
        `Path` of the file.
    """
    if tuple(predictions.stages) != STAGES:
        raise ValueError(
            f"{predictions.source}: these predictions hold only {list(predictions.stages)}; the seed's stage format "
            f"with view answers needs every stage of {list(STAGES)}."
        )
    data = {}
    for record in predictions.records.values():
        if final_answer(record.description, record.clarity, record.view_answer) != record.decision:
            raise ValueError(
                f"{predictions.source}: the final answer of {record.sample_id} ({record.decision!r}) does not follow "
                "from its stage answers (a voted record?); write it with save_predictions (staged JSONL) instead."
            )
        data[record.sample_id] = {
            "object": record.description,
            "clarity": record.clarity,
            "view_answer": record.view_answer,
        }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
