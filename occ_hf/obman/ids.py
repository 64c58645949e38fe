"""Sample-id lists in the formats the seed and ObMan users keep them in.

```python
ids, classes = read_id_list("../shared/seed/obman_view_test_all.txt")      # 6,227 ids, classes None
ids, classes = read_id_list("../shared/seed/train_Q1_10140.head20.jsonl")  # ids and their classes
```
"""

import os
from pathlib import Path

from ..jsonl import parse_json, read_jsonl_rows
from .classes import OCC_CLASSES


__all__ = ["obman_sample_id", "read_id_list"]


def read_id_list(path: str | os.PathLike) -> tuple[list[str], list[str | None]]:
    """Reads sample ids (and classes where the file names them) from an id list or a seed file.

    Accepted formats:
        - text (`.txt`, the seed's `obman_view_test_all.txt`): the first whitespace-separated field of each line;
        - the seed's jsonl (`train_*.jsonl`): `id` (or the stem of `image` for DPO pairs), and the class from
          an answer `"The object is {class}."` when one of the id's rows has one;
        - json: a list of `{"answer": id}` (the seed's unclear-id lists), a list of ids, or a `{id: ...}` mapping.

    Returns:
        `(ids, classes)`: 8-digit ids in file order without repeats, and each id's class or `None`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not a text file ({error}); expected ids, one a line, or a seed .json/.jsonl."
        ) from None
    pairs: list[tuple[str, str | None]] = []
    if path.suffix == ".jsonl":
        for line_number, row in read_jsonl_rows(path, text):
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{line_number}: expected a JSON object per line, got {row!r}.")
            if "id" in row:
                sample_id = row["id"]
            elif "image" in row:  # the seed's DPO pairs name only the image
                sample_id = Path(row["image"]).stem
            else:
                raise ValueError(f"{path}:{line_number}: row has neither 'id' nor 'image' (is this a seed jsonl?).")
            pairs.append((sample_id, _class_in_row(row)))
    elif path.suffix == ".json":
        data = parse_json(text, path)
        if not isinstance(data, dict | list):
            raise ValueError(f"{path}: expected a list of ids or an {{id: ...}} mapping, got {type(data).__name__}.")
        for entry in data.keys() if isinstance(data, dict) else data:
            if isinstance(entry, dict) and "answer" not in entry:
                raise ValueError(f"{path}: {entry!r} has no 'answer' (the seed's unclear-id lists hold the id there).")
            pairs.append((entry["answer"] if isinstance(entry, dict) else entry, None))
    else:
        pairs = [(line.split()[0], None) for line in text.splitlines() if line.strip()]

    # An id can come back on several rows (the seed's CoT file has a step-by-step row and a Q1 row per image):
    # keep its first position and the first class any of its rows names.
    class_of: dict[str, str | None] = {}
    for raw_id, class_name in pairs:
        sample_id = obman_sample_id(raw_id, path)
        if class_of.get(sample_id) is None:
            class_of[sample_id] = class_name
    return list(class_of), list(class_of.values())


def obman_sample_id(raw_id: object, where: str | os.PathLike | None = None) -> str:
    """An ObMan sample id (digits, as a string or an int) as 8 digits; anything else is a `ValueError` naming
    `where` (the file it came from) when given.

    The one home of the 8-digit form of ObMan's file names (`meta/00000003.pkl`): the reader, the views' names, the
    id lists and the evaluation's records all normalise through it.
    """
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip().isdecimal():
        prefix = f"{where}: " if where is not None else ""
        raise ValueError(f"{prefix}{raw_id!r} is not an ObMan sample id (expected digits, e.g. '00000003').")
    return f"{int(raw_id):08d}"


def _class_in_row(row: dict) -> str | None:
    """The class a seed row's answer names (an answer that is exactly "The object is bottle."), or `None`."""
    # Imported here: the prompt tables' package (cot) imports this one, and they pull in transformers.
    from ..cot.prompts import PROMPT_STYLES
    from ..models.occ_internvl.prompts_occ_internvl import parse_class_answer

    answers = [turn.get("value", "") for turn in row.get("conversations", []) if turn.get("from") == "gpt"]
    answers += [row.get("chosen", "")]
    for answer in answers:
        class_name = parse_class_answer(answer, PROMPT_STYLES["code"].answer_template, OCC_CLASSES)
        if class_name is not None:
            return class_name
    return None
