"""JSON and JSON Lines in: the seed's training files, id lists, and the prediction and reference files.

Every such file is read through [`read_text_file`] (UTF-8, a file that is not is named) and parsed by [`parse_json`]
or [`read_jsonl_rows`], which refuse a key given twice in one object: `json` would keep the last entry silently,
so a predictions file with an id twice would be scored on one of its two answers.

```python
for line_number, row in read_jsonl_rows("train_Q1_10140.jsonl"):
    ...
data = parse_json(read_text_file("predictions.json"), "predictions.json")
```
"""

import json
import os
from pathlib import Path


__all__ = ["parse_json", "read_jsonl_rows", "read_text_file"]


def read_text_file(path: str | os.PathLike) -> str:
    """Reads a UTF-8 text file (JSON, JSON Lines, id lists).

    Raises:
        `FileNotFoundError`: the file is missing (the caller usually says what it should hold).
        `ValueError`: it is not UTF-8 text; the message names the file.
    """
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: not UTF-8 text ({error}); expected a .json, .jsonl or text file (re-save it as UTF-8)."
        ) from None


def parse_json(text: str, where: str | os.PathLike) -> object:
    """`json.loads`, with errors that name `where`, and a key repeated in one object refused.

    Args:
        text (`str`): The JSON document.
        where (`str` or `os.PathLike`): The file (and line) it came from, named in errors.

    Raises:
        `ValueError`: invalid JSON, or a key twice in one object.
    """

    def refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
        data = {}
        for key, value in pairs:
            if key in data:
                raise ValueError(
                    f"{where}: key {key!r} appears twice in one object, and JSON keeps only the last; give it once."
                )
            data[key] = value
        return data

    try:
        return json.loads(text, object_pairs_hook=refuse_duplicate_keys)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not valid JSON ({error}).") from None


def read_jsonl_rows(path: str | os.PathLike, text: str | None = None) -> list[tuple[int, object]]:
    """Parses every non-blank line of a jsonl file; returns `(line_number, value)` pairs, numbered from 1.

    Args:
        path (`str` or `os.PathLike`): The file; named in errors.
        text (`str`, *optional*): Its content, when the caller has already read it.

    Raises:
        `ValueError`: the file is not UTF-8, or a line is not valid JSON or repeats a key; the message names the
        file and the line.
    """
    path = Path(path)
    text = read_text_file(path) if text is None else text
    return [
        (line_number, parse_json(line, f"{path}:{line_number}"))
        for line_number, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]
