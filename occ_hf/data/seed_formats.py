"""The seed's InternVL chat jsonl files, in and out of dataset rows, byte for byte.

The seed trains from jsonl files of two shapes (`../shared/seed/*.jsonl`):

- chat rows, `{"id", "image", "conversations": [{"from": "human" | "gpt", "value"}]}`: SFT1 (Q1), SFT2 (Q1 + Q6)
  and the CoT mix (Q0 rows among Q1 + Q6 rows);
- DPO pairs, `{"image", "question", "chosen", "rejected"}`, where the question carries no `<image>`: InternVL's
  loader puts the image in front of it.

`import_seed_jsonl` turns each line into a row with the builder's columns (`images`, `messages` or
`prompt`/`chosen`/`rejected`, `id`, `label`, `occlusion`, `clear`) plus `seed_image`, the line's image name;
`export_seed_jsonl` writes rows back. Lines are written as the seed wrote them (`json.dumps` with its default
separators and key order), so import then export reproduces the file byte for byte.
"""

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from ..cot import content_to_text, get_prompt_style, parse_clarity, text_to_content
from ..jsonl import read_jsonl_rows
from ..obman import ObManFormatError, ObManSplit
from ..obman.classes import OCC_CLASSES
from .occ_obman_cot import _features, _image_file


__all__ = [
    "SeedExportConfig",
    "SeedImportConfig",
    "export_seed_jsonl",
    "import_seed_jsonl",
    "seed_export",
    "seed_features",
    "seed_format_of",
    "seed_import",
]

_ROLES = {"human": "user", "gpt": "assistant"}
_FROM = {role: name for name, role in _ROLES.items()}


def seed_format_of(row: dict) -> str:
    """`chat` or `dpo`, from a seed line's keys."""
    if "conversations" in row:
        return "chat"
    if {"question", "chosen", "rejected"} <= set(row):
        return "dpo"
    raise ValueError(f"Not a seed row (no 'conversations', no 'question'/'chosen'/'rejected'): keys {sorted(row)}.")


def seed_features(seed_format: str) -> datasets.Features:
    """The builder's features for the matching config (`reflection` or `preference`), plus `seed_image`."""
    features = _features("preference" if seed_format == "dpo" else "reflection")
    features["seed_image"] = datasets.Value("string")
    return features


def import_seed_jsonl(
    path: str | os.PathLike, obman_root: str | os.PathLike, split: str = "train"
) -> datasets.Dataset:
    """Reads a seed jsonl into rows, with each line's image (and occlusion) taken from the ObMan split.

    Raises:
        `ValueError`: a line is not JSON or not in one of the seed's shapes (the message names file and line).
        `ObManFormatError`: an image or meta file of the ObMan split is missing or corrupt (named).
    """
    path = Path(path)
    lines = read_jsonl_rows(path)
    if not lines:
        raise ValueError(f"{path}: empty file.")
    seed_format = seed_format_of(lines[0][1])
    obman = ObManSplit(obman_root, split)

    def rows():
        for number, line in lines:
            if seed_format_of(line) != seed_format:
                raise ValueError(f"{path}:{number}: mixes {seed_format} rows with another format.")
            image_name = line["image"]
            sample_id = line.get("id", Path(image_name).stem)
            try:
                sample = obman.read(sample_id)
                image = _image_file(sample.rgb_path.with_name(image_name))
            except ObManFormatError as error:
                raise ObManFormatError(f"{path}:{number}: {error}") from error
            row = {"id": line.get("id"), "seed_image": image_name, "images": [image], "occlusion": sample.occlusion}
            if seed_format == "chat":
                messages = [
                    {"role": _ROLES[turn["from"]], "content": text_to_content(turn["value"])}
                    for turn in line["conversations"]
                ]
                answers = [turn["value"] for turn in line["conversations"] if turn["from"] == "gpt"]
                row["messages"] = messages
            else:
                row["prompt"] = [{"role": "user", "content": text_to_content(line["question"], image_first=True)}]
                row["chosen"] = [{"role": "assistant", "content": [{"type": "text", "text": line["chosen"]}]}]
                row["rejected"] = [{"role": "assistant", "content": [{"type": "text", "text": line["rejected"]}]}]
                answers = [line["chosen"]]
            # Labels come from the answers where the line has them (a CoT line has neither class nor clarity).
            style = get_prompt_style("code")
            classes = [style.parse_class(a, OCC_CLASSES) for a in answers if style.parse_class(a, OCC_CLASSES)]
            clarity = [parse_clarity(answer) for answer in answers if parse_clarity(answer) is not None]
            row["label"] = classes[0] if classes else sample.class_name
            row["clear"] = clarity[0] if clarity else None
            yield row

    return datasets.Dataset.from_list(list(rows()), features=seed_features(seed_format))


def export_seed_jsonl(rows: Iterable[dict], path: str | os.PathLike) -> Path:
    """Writes rows (from [`import_seed_jsonl`] or the builder) as a seed jsonl file; returns its path.

    Rows with `prompt`/`chosen`/`rejected` become DPO lines; rows with `messages` become chat lines. The image name
    is `seed_image` when the row has it, else `{id}.jpg` as in the seed's files.
    """
    path = Path(path)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            image_name = row.get("seed_image") or f"{row['id']}.jpg"
            if row.get("prompt") is not None:
                line = {
                    "image": image_name,
                    "question": content_to_text(row["prompt"][0]["content"], implicit_leading_image=True),
                    "chosen": content_to_text(row["chosen"][0]["content"]),
                    "rejected": content_to_text(row["rejected"][0]["content"]),
                }
            else:
                line = {
                    "id": row["id"],
                    "image": image_name,
                    "conversations": [
                        {"from": _FROM[turn["role"]], "value": content_to_text(turn["content"])}
                        for turn in row["messages"]
                    ],
                }
            f.write(json.dumps(line) + "\n")
    return path


@dataclass
class SeedImportConfig:
    r"""
    Configuration of `occ-hf seed import FILE`: a seed jsonl to a dataset folder (parquet + card).

    Parameters:
        file (`str`): The seed jsonl (SFT1, SFT2, CoT or DPO pairs).
        obman_root (`str`): ObMan root whose split holds the images the file names.
        out (`str`, *optional*, defaults to `"out/seed-import"`): Dataset folder to write.
        split (`str`, *optional*, defaults to `"train"`): ObMan split the ids belong to.
        overwrite (`bool`, *optional*, defaults to `False`): Replace a previous dataset in a non-empty `out` (see
            `occ_hf.data.export`); without it a non-empty `out` is refused.
    """

    file: str = field(metadata={"help": "Seed jsonl file (SFT1, SFT2, CoT or DPO pairs)."})
    obman_root: str = field(default=None, metadata={"help": "ObMan root holding the images (required)."})
    out: str = field(default="out/seed-import", metadata={"help": "Dataset folder to write."})
    split: str = field(default="train", metadata={"help": "ObMan split of the ids."})
    overwrite: bool = field(
        default=False, metadata={"help": "Replace a previous dataset in a non-empty --out (refused without it)."}
    )


@dataclass
class SeedExportConfig:
    r"""
    Configuration of `occ-hf seed export DATASET`: dataset rows back to a seed jsonl.

    Parameters:
        dataset (`str`): A dataset folder written by `seed import` or `build-dataset` (its `*/train-*.parquet`).
        out (`str`): The jsonl file to write.
        config (`str`, *optional*): Which config folder of the dataset to read; defaults to the only one.
        split (`str`, *optional*, defaults to `"train"`): Which split.
    """

    dataset: str = field(metadata={"help": "Dataset folder (parquet shards under <config>/)."})
    out: str = field(default="seed.jsonl", metadata={"help": "jsonl file to write."})
    config: str | None = field(default=None, metadata={"help": "Config folder to read; the only one by default."})
    split: str = field(default="train", metadata={"help": "Split to export."})


def seed_import(config: SeedImportConfig) -> Path:
    """Imports a seed jsonl and writes it as a dataset folder with a card; returns the folder."""
    from .export import export_dataset

    if config.obman_root is None:
        raise ValueError("seed import needs --obman_root, the ObMan root that holds the file's images.")
    dataset = import_seed_jsonl(config.file, config.obman_root, split=config.split)
    return export_dataset(
        {"default": datasets.DatasetDict({config.split: dataset})},
        config.out,
        source=f"the seed file `{Path(config.file).name}`",
        notes=["Imported with `occ-hf seed import`; `occ-hf seed export` writes the file back byte for byte."],
        overwrite=config.overwrite,
    )


def seed_export(config: SeedExportConfig) -> Path:
    """Writes one split of a dataset folder as a seed jsonl; returns the file."""
    root = Path(config.dataset)
    configs = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob(f"{config.split}-*.parquet")))
    if config.config is None and len(configs) != 1:
        raise ValueError(f"{root}: holds configs {configs}; choose one with --config.")
    name = config.config or configs[0]
    files = sorted(str(p) for p in (root / name).glob(f"{config.split}-*.parquet"))
    if not files:
        raise FileNotFoundError(f"{root / name}: no {config.split}-*.parquet shards.")
    dataset = datasets.Dataset.from_parquet(files)
    return export_seed_jsonl(
        dataset.remove_columns([c for c in ("images", "image", "view") if c in dataset.column_names]), config.out
    )
