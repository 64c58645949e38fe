"""Clarity labels ("is it clear to identify the object?") for the reflection and preference data.

The seed labels an image "No." when the stage-1 model got its class wrong on the training set, from a list of such
ids (`seed/obman_train_checkpoint-30000_wrong_1_moho.json`, `[{"answer": "<id>"}, ...]`). `ClarityLabeler` takes
that list, a predictions file of a stage-1 model (the seed's `{id: answer}` or `{id: {"object": ...}}`: clear when
the answer is exactly the code style's class answer, the Description metric's match), or an occlusion threshold
(clear when less than that share of the object is hidden), which needs no model.

```python
labeler = ClarityLabeler.from_unclear_ids("obman_train_checkpoint-30000_wrong_1_moho.json")
labeler.is_clear("00000001", label="jar", occlusion=0.3)   # False: the id is in the list
```
"""

import os
from dataclasses import dataclass
from pathlib import Path

from ..jsonl import parse_json, read_text_file
from ..obman.classes import OCC_CLASSES
from ..obman.ids import obman_sample_id
from .prompts import get_prompt_style


__all__ = ["ClarityLabeler", "SEED_UNCLEAR_IDS"]

# The seed's list, shipped with the package (MIT, see occ_hf/data/assets/LICENSE-OCC-MLLM).
SEED_UNCLEAR_IDS = (
    Path(__file__).resolve().parents[1] / "data" / "assets" / "obman_train_checkpoint-30000_wrong_1_moho.json"
)


@dataclass(frozen=True)
class ClarityLabeler:
    """Decides `clear` per sample from one source.

    Attributes:
        source (`str`): `unclear_ids`, `predictions` or `occlusion`.
        unclear (`frozenset[str]`): Ids labelled unclear (`unclear_ids` source).
        predictions (`dict[str, str]`): Id to stage-1 answer (`predictions` source).
        occlusion_threshold (`float`): Clear below this occlusion (`occlusion` source).
        origin (`str`): The file or value it came from, for dataset cards and errors.
    """

    source: str
    unclear: frozenset = frozenset()
    predictions: dict | None = None
    occlusion_threshold: float = 0.5
    origin: str = ""

    @classmethod
    def from_unclear_ids(cls, path: str | os.PathLike) -> "ClarityLabeler":
        """From a list in the seed's format `[{"answer": "<id>"}, ...]` (plain id lists are accepted too)."""
        entries = _read_json(path)
        if not isinstance(entries, list):
            raise ValueError(
                f"{path}: expected a JSON list of {{'answer': id}} entries (the seed's unclear-id format)."
            )
        if any(isinstance(e, dict) and "answer" not in e for e in entries):
            raise ValueError(f"{path}: an entry has no 'answer' (the seed's unclear-id lists hold the id there).")
        ids = frozenset(obman_sample_id(e["answer"] if isinstance(e, dict) else e, path) for e in entries)
        return cls(source="unclear_ids", unclear=ids, origin=str(path))

    @classmethod
    def from_predictions(cls, path: str | os.PathLike) -> "ClarityLabeler":
        """From stage-1 predictions: `{id: answer}` or `{id: {"object": answer, ...}}`."""
        data = _read_json(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object mapping ids to answers (the seed's predictions format).")
        predictions = {}
        for sample_id, answer in data.items():
            if isinstance(answer, dict):
                answer = answer.get("object")
            if not isinstance(answer, str):
                raise ValueError(f"{path}: prediction for {sample_id!r} is not an answer string.")
            predictions[obman_sample_id(sample_id, path)] = answer
        return cls(source="predictions", predictions=predictions, origin=str(path))

    @classmethod
    def from_occlusion(cls, threshold: float) -> "ClarityLabeler":
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"occlusion_threshold must be in (0, 1], got {threshold}.")
        return cls(source="occlusion", occlusion_threshold=threshold, origin=f"occlusion < {threshold}")

    def is_clear(self, sample_id: str, label: str, occlusion: float | None) -> bool:
        """Whether the sample's clarity answer is "Yes"."""
        if self.source == "unclear_ids":
            return sample_id not in self.unclear
        if self.source == "predictions":
            if sample_id not in self.predictions:
                raise KeyError(f"{self.origin}: no prediction for sample {sample_id} (predict the whole split).")
            return get_prompt_style("code").parse_class(self.predictions[sample_id], OCC_CLASSES) == label
        if occlusion is None:
            raise ValueError(f"Sample {sample_id} has no occlusion ratio; use an unclear-id list or predictions.")
        return occlusion < self.occlusion_threshold


def _read_json(path: str | os.PathLike):
    try:
        return parse_json(read_text_file(path), path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: clarity source not found.") from None
