"""References (the true class, and the occlusion ratio where known) from the sources a test set comes in.

[`load_references`] reads:

- an ObMan root (a folder holding `test/`), through `occ_hf.obman.ObManSplit`: label = `sample.class_name`,
  occlusion = `sample.occlusion`; `ids` restricts it to a list such as the seed's `obman_view_test_all.txt`;
- the seed's chat JSONL (InternVL `conversations`), or the same rows as one JSON array (the seed's
  `eccv_test.json`): the label is read from the Q1 answer `"The object is X."`, the ground truth the seed's
  inference script compares with (rows without a Q1 answer, such as the CoT rows, are skipped, but every id needs
  one);
- a JSON/JSONL of `{"id", "label"[, "occlusion"]}` rows, or a JSON object `{id: label}` / `{id: {label, occlusion}}`.

[`references_from_rows`] reads them from the rows of a dataset (the `test` config of occ-obman-cot), which
`occ-hf eval --model` runs the model over. The references enter the flow beside the records (predictions -> records ->
metrics -> report): they depend on `occ_hf.eval.records` only, and the metrics read them.

```python
references = load_references("data/obman", split="test", ids=read_id_list("obman_view_test_all.txt")[0])
references = load_references("../shared/seed/train_Q1_10140.head20.jsonl")
```
"""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from ..cot.prompts import PROMPT_STYLES
from ..jsonl import parse_json, read_jsonl_rows, read_text_file
from ..models.occ_internvl.prompts_occ_internvl import IMAGE_MARKER, answer_text, parse_class_answer
from ..obman.classes import OCC_CLASSES
from ..obman.reader import ObManSplit
from .records import SEED_ANSWER_TEMPLATE, Reference, normalize_sample_id


__all__ = ["load_references", "references_from_rows"]

# The seed's Q1 as its chat files ask it, the text before the image: "What's the object in the hand?".
_Q1_PREFIX = PROMPT_STYLES["code"].describe[0].split(IMAGE_MARKER)[0].strip()


def _occlusion(value, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}: occlusion {value!r} is not a number between 0 and 1 (a share of pixels).")
    return float(value)


def _label(value, where: str, classes: Sequence[str]) -> str:
    if value not in classes:
        raise ValueError(f"{where}: label {value!r} is not one of {list(classes)}.")
    return value


def _from_chat_rows(rows: list[tuple[int, dict]], source: str, classes: Sequence[str], template: str) -> list:
    labels: dict[str, str] = {}
    for line_number, row in rows:
        where = f"{source}:{line_number}"
        if "id" not in row:
            raise ValueError(f"{where}: chat row has no 'id' (is this one of the seed's chat jsonl files?).")
        turns = row["conversations"]
        for question, answer in zip(turns[:-1], turns[1:], strict=True):
            if question.get("from") == "human" and question.get("value", "").startswith(_Q1_PREFIX):
                if answer.get("from") != "gpt":
                    raise ValueError(f"{where}: Q1 is not followed by a 'gpt' answer.")
                label = parse_class_answer(answer.get("value", ""), template, classes)
                if label is None:
                    raise ValueError(
                        f"{where}: Q1 answer {answer.get('value')!r} is not {answer_text(template, '<class>')!r} "
                        f"with a class of {list(classes)}."
                    )
                sample_id = normalize_sample_id(row["id"], where)
                if labels.setdefault(sample_id, label) != label:
                    raise ValueError(f"{where}: id {sample_id} is labelled {labels[sample_id]!r} on an earlier row.")
                break
    ids = list(dict.fromkeys(normalize_sample_id(row["id"], f"{source}:{line}") for line, row in rows))
    unlabelled = [sample_id for sample_id in ids if sample_id not in labels]
    if unlabelled:
        raise ValueError(f"{source}: ids {unlabelled[:5]} have no Q1 answer on any row, so no label.")
    return [Reference(sample_id, labels[sample_id]) for sample_id in ids]


def _from_label_rows(rows: list[tuple[int | str, dict]], source: str, classes: Sequence[str]) -> list:
    references = []
    for position, row in rows:
        where = f"{source}:{position}"
        if not isinstance(row, dict) or "id" not in row or "label" not in row:
            raise ValueError(f"{where}: expected a row {{'id', 'label'[, 'occlusion']}}, got {row!r}.")
        references.append(
            Reference(
                normalize_sample_id(row["id"], where),
                _label(row["label"], where, classes),
                _occlusion(row.get("occlusion"), where),
            )
        )
    return references


def load_references(
    path: str | os.PathLike,
    split: str = "test",
    ids: Sequence[str | int] | None = None,
    shapenet_root: str | os.PathLike | None = None,
    on_unknown_class: Literal["error", "skip"] = "error",
    classes: Sequence[str] = OCC_CLASSES,
    template: str = SEED_ANSWER_TEMPLATE,
) -> list[Reference]:
    """Reads the references of a test set; see the module docstring for the sources.

    Args:
        path (`str` or `os.PathLike`): An ObMan root folder, or a `.json` / `.jsonl` file.
        split (`str`, *optional*, defaults to `"test"`): The ObMan split to read (folders only).
        ids (`Sequence[str | int]`, *optional*): Keep only these ids, in this order (every one must be there).
        shapenet_root (`str` or `os.PathLike`, *optional*): Passed to `ObManSplit` (checks the meshes).
        on_unknown_class (`str`, *optional*, defaults to `"error"`): Passed to `ObManSplit` (ObMan's mugs).
        classes (`Sequence[str]`, *optional*, defaults to the 8 OCC classes): Allowed labels.
        template (`str`, *optional*, defaults to `"The object is {class_name}."`): How a chat file's Q1 answer
            names its class.

    Returns:
        `list[Reference]`, each id once.
    """
    path = Path(path)
    if path.is_dir():
        split_reader = ObManSplit(path, split, shapenet_root=shapenet_root, ids=ids, on_unknown_class=on_unknown_class)
        return [Reference(sample.sample_id, sample.class_name, sample.occlusion) for sample in split_reader]
    try:
        text = read_text_file(path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: references not found; pass an ObMan root folder or a .json/.jsonl file of labels."
        ) from None
    source = str(path)
    if path.suffix == ".jsonl":
        rows = read_jsonl_rows(path, text)
        if rows and all(isinstance(row, dict) and "conversations" in row for _, row in rows):
            references = _from_chat_rows(rows, source, classes, template)
        else:
            references = _from_label_rows(rows, source, classes)
    else:
        data = parse_json(text, path)
        if isinstance(data, list) and data and all(isinstance(row, dict) and "conversations" in row for row in data):
            references = _from_chat_rows(list(enumerate(data)), source, classes, template)
        elif isinstance(data, list):
            references = _from_label_rows(list(enumerate(data)), source, classes)
        elif isinstance(data, dict):
            rows = [
                (key, {"id": key, **(value if isinstance(value, dict) else {"label": value})})
                for key, value in data.items()
            ]
            references = _from_label_rows(rows, source, classes)
        else:
            raise ValueError(f"{path}: expected a JSON list or object of labels, got a {type(data).__name__}.")
    if not references:
        raise ValueError(f"{path}: no references in the file.")
    seen: set[str] = set()
    for reference in references:
        if reference.sample_id in seen:
            raise ValueError(f"{path}: id {reference.sample_id} appears twice; give each test image once.")
        seen.add(reference.sample_id)
    if ids is not None:
        by_id = {reference.sample_id: reference for reference in references}
        wanted = [normalize_sample_id(sample_id, "the requested ids") for sample_id in ids]
        missing = [sample_id for sample_id in wanted if sample_id not in by_id]
        if missing:
            raise ValueError(f"{path}: {len(missing)} of the requested ids have no reference (first: {missing[:5]}).")
        references = [by_id[sample_id] for sample_id in wanted]
    return references


def references_from_rows(rows) -> list[Reference]:
    """One [`Reference`] per row of a `datasets.Dataset`: the class name of `label` (a `ClassLabel` or a string) and
    `occlusion` if any."""
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
