"""Publishing `occ-obman-cot`: parquet shards with embedded images and a dataset card, on disk or on the Hub.

The folder written here is a complete Hub dataset repository: `<config>/<split>-NNNNN-of-NNNNN.parquet` plus a
`README.md` whose YAML lists every config (`configs:`) and its features (`dataset_info:`), so plain
`load_dataset(folder_or_repo, config)` loads it in a process that never imports `occ_hf`. Pushing uploads that
same folder, so what is tested on disk is what lands on the Hub.

```python
dataset_dicts = {"reflection": load_dataset("occ-obman-cot", "reflection", data_dir=root)}
export_dataset(dataset_dicts, "out/occ-obman-cot", repo_id="org/occ-obman-cot", source=root)
push_folder("out/occ-obman-cot", "org/occ-obman-cot")
```
"""

import math
import os
from pathlib import Path

import datasets
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData, HfApi

from .. import __version__
from ..cards import read_card_template
from ..obman import OCC_CLASSES
from .occ_obman_cot import _CITATION


__all__ = ["export_dataset", "push_folder"]

_MAX_SHARD_BYTES = 500 * 1024 * 1024


def export_dataset(
    dataset_dicts: dict[str, datasets.DatasetDict],
    out_dir: str | os.PathLike,
    repo_id: str = "occ-obman-cot",
    source: str = "an ObMan root",
    prompt_style: str = "code",
    clarity: str = "see the builder's defaults",
    notes: list[str] | None = None,
) -> Path:
    """Writes each config's splits as parquet shards under `out_dir/<config>/` and renders the dataset card.

    Args:
        dataset_dicts (`dict[str, DatasetDict]`): Config name to its splits.
        out_dir (`str` or `os.PathLike`): The repository folder to write.
        repo_id (`str`, *optional*): Named in the card's loading snippet.
        source (`str`, *optional*), prompt_style (`str`, *optional*), clarity (`str`, *optional*),
        notes (`list[str]`, *optional*): What the card says about how the data was built.

    Returns:
        `Path` of the folder.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    configs_yaml, infos, rows = [], {}, []
    for config_name, dataset_dict in dataset_dicts.items():
        data_files = []
        for split, dataset in dataset_dict.items():
            num_shards = max(1, math.ceil((dataset.data.nbytes or 1) / _MAX_SHARD_BYTES))
            for index in range(num_shards):
                shard = dataset.shard(num_shards, index, contiguous=True)
                path = out_dir / config_name / f"{split}-{index:05d}-of-{num_shards:05d}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                shard.to_parquet(path)
            data_files.append({"split": split, "path": f"{config_name}/{split}-*.parquet"})
        configs_yaml.append({"config_name": config_name, "data_files": data_files})
        first = next(iter(dataset_dict.values()))
        info = first.info.copy()
        info.config_name = config_name
        info.splits = datasets.SplitDict(
            {name: datasets.SplitInfo(name=name, num_examples=len(ds)) for name, ds in dataset_dict.items()}
        )
        infos[config_name] = info
        rows.append(
            {
                "name": config_name,
                "splits": ", ".join(f"{name} ({len(ds)})" for name, ds in dataset_dict.items()),
                "columns": ", ".join(f"`{column}`" for column in first.column_names),
            }
        )

    card_data = DatasetCardData(
        license="other",
        pretty_name="occ-obman-cot",
        task_categories=["image-text-to-text"],
        tags=["occlusion", "obman", "chain-of-thought", "3d", "trl"],
        configs=configs_yaml,
    )
    DatasetInfosDict(infos).to_dataset_card_data(card_data)
    card = DatasetCard.from_template(
        card_data,
        template_str=read_card_template("dataset_card.md"),
        pretty_name="occ-obman-cot",
        repo_id=repo_id,
        example_config=next(iter(dataset_dicts)),
        configs=rows,
        classes=", ".join(OCC_CLASSES),
        occ_hf_version=__version__,
        source=source,
        prompt_style=prompt_style,
        clarity=clarity,
        notes=notes or [],
        citation=_CITATION.strip(),
    )
    card.save(out_dir / "README.md")
    return out_dir


def push_folder(out_dir: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Uploads an exported folder as a dataset repository; returns the commit URL."""
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(
        folder_path=str(out_dir), repo_id=repo_id, repo_type="dataset", commit_message="Upload occ-obman-cot"
    )
    return commit.commit_url
