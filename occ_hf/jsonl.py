"""JSON Lines in: the seed's training files and the prediction and reference files all go through `read_jsonl_rows`.

```python
for line_number, row in read_jsonl_rows("train_Q1_10140.jsonl"):
    ...
```
"""

import json
import os
from pathlib import Path


__all__ = ["read_jsonl_rows"]


def read_jsonl_rows(path: str | os.PathLike, text: str | None = None) -> list[tuple[int, object]]:
    """Parses every non-blank line of a jsonl file; returns `(line_number, value)` pairs, numbered from 1.

    Args:
        path (`str` or `os.PathLike`): The file; named in errors.
        text (`str`, *optional*): Its content, when the caller has already read it.

    Raises:
        `ValueError`: a line is not valid JSON; the message names the file and the line.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    rows = []
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((line_number, json.loads(line)))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{line_number}: not valid JSON ({error}).") from None
    return rows
