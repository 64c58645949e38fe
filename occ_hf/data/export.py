"""Publishing `occ-obman-cot`: parquet shards with embedded images and a dataset card, on disk or on the Hub.

The folder written here is a complete Hub dataset repository: `<config>/<split>-<digest>-NNNNN-of-NNNNN.parquet`
plus a `README.md` whose YAML lists every config (`configs:`) and its features (`dataset_info:`), so plain
`load_dataset(folder_or_repo, config)` loads it in a process that never imports `occ_hf`. Pushing uploads that
same folder, so what is tested on disk is what lands on the Hub.

`<digest>` is the first 12 hex digits of the SHA-256 of the split's shards, and the card's pattern for the split
names it (`<config>/<split>-<digest>-*.parquet`). That is what keeps `datasets`' cache honest: it keys a local
folder's cache by the folder's name, the card's `dataset_info` and those patterns, not by the files' paths, contents
or times, so without the digest a rebuild in place with the same row counts (new clarity labels, say), or another
folder of the same name, would be read back from the first build's cache.

Writing into a folder that is not empty is refused unless `overwrite=True` (`--overwrite`): shards left by an
earlier build would sit beside the new ones, and a reader globbing `<config>/<split>-*.parquet` would mix them. With
`overwrite`, the new build is written into a temporary folder beside `out_dir` first ([`occ_hf.staging`]); only
once it is complete are the files of the previous build (`README.md` and the `*.parquet` shards of its config
folders) removed and the new ones moved in. Anything else in the folder (a `.git` of a cloned Hub repository, say)
is kept, and a build that fails leaves the folder as it was. Pushing likewise deletes the repository's shards that
the new build did not write.

```python
dataset_dicts = {"reflection": load_dataset("occ-obman-cot", "reflection", data_dir=root)}
export_dataset(dataset_dicts, "out/occ-obman-cot", repo_id="org/occ-obman-cot", source=root)
push_folder("out/occ-obman-cot", "org/occ-obman-cot")
```
"""

import hashlib
import math
import os
from pathlib import Path

import datasets
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData, HfApi

from ..cards import project_url, read_card_template
from ..obman import OCC_CLASSES
from ..staging import move_into_place, staging_folder
from ..version import __version__
from .occ_obman_cot import DATASET_CITATION


__all__ = ["check_output_folder", "export_dataset", "push_folder"]

_MAX_SHARD_BYTES = 500 * 1024 * 1024
# What a build writes, relative to its folder: the card and the shards of each config folder.
_CARD_NAME = "README.md"
_SHARD_PATTERN = "*/*.parquet"


def check_output_folder(out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuses to write a dataset into a non-empty folder unless `overwrite`; returns the folder as a `Path`.

    Called before anything is built (so that a long build does not end in this error) and again by
    [`export_dataset`].
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: exists and is not a folder; choose a folder to write the dataset to.")
    if overwrite or not out_dir.is_dir() or not any(out_dir.iterdir()):
        return out_dir
    previous = _previous_build_files(out_dir)
    held = f"a previous build ({len(previous)} files)" if previous else "files of something else"
    raise FileExistsError(
        f"{out_dir}: not empty (it holds {held}); choose an empty folder, or pass --overwrite (overwrite=True) to "
        f"replace the previous build's {_CARD_NAME} and <config>/*.parquet shards (other files are kept)."
    )


def _previous_build_files(out_dir: Path) -> list[Path]:
    card = out_dir / _CARD_NAME
    return ([card] if card.is_file() else []) + sorted(p for p in out_dir.glob(_SHARD_PATTERN) if p.is_file())


def export_dataset(
    dataset_dicts: dict[str, datasets.DatasetDict],
    out_dir: str | os.PathLike,
    repo_id: str = "occ-obman-cot",
    source: str = "an ObMan root",
    prompt_style: str = "code",
    clarity: str = "see the builder's defaults",
    notes: list[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Writes each config's splits as parquet shards under `out_dir/<config>/` and renders the dataset card.

    A non-empty `out_dir` is refused unless `overwrite`, which replaces the previous build's files once the new
    build is complete (see the module docstring).

    Args:
        dataset_dicts (`dict[str, DatasetDict]`): Config name to its splits.
        out_dir (`str` or `os.PathLike`): The repository folder to write.
        repo_id (`str`, *optional*): Named in the card's loading snippet.
        source (`str`, *optional*), prompt_style (`str`, *optional*), clarity (`str`, *optional*),
        notes (`list[str]`, *optional*): What the card says about how the data was built.
        overwrite (`bool`, *optional*, defaults to `False`): Replace a previous build in `out_dir`.

    Returns:
        `Path` of the folder.
    """
    out_dir = check_output_folder(out_dir, overwrite)
    with staging_folder(out_dir) as staging:
        build = staging / "build"
        build.mkdir()
        _write_build(dataset_dicts, build, repo_id, source, prompt_style, clarity, notes)
        move_into_place(build, out_dir, previous=_previous_build_files(out_dir))
    return out_dir


def _write_build(
    dataset_dicts: dict[str, datasets.DatasetDict],
    out_dir: Path,
    repo_id: str,
    source: str,
    prompt_style: str,
    clarity: str,
    notes: list[str] | None,
) -> None:
    """Writes the shards and the card into `out_dir` (the staging folder of [`export_dataset`])."""
    configs_yaml, infos, rows = [], {}, []
    for config_name, dataset_dict in dataset_dicts.items():
        data_files = []
        for split, dataset in dataset_dict.items():
            num_shards = max(1, math.ceil((dataset.data.nbytes or 1) / _MAX_SHARD_BYTES))
            (out_dir / config_name).mkdir(parents=True, exist_ok=True)
            digest, written = hashlib.sha256(), []
            for index in range(num_shards):
                shard = dataset.shard(num_shards, index, contiguous=True)
                path = out_dir / config_name / f"{split}-{index:05d}-of-{num_shards:05d}.parquet.tmp"
                shard.to_parquet(path)
                digest.update(path.read_bytes())
                written.append(path)
            tag = digest.hexdigest()[:12]
            for path in written:
                path.rename(
                    path.with_name(f"{split}-{tag}-{path.name.removeprefix(f'{split}-').removesuffix('.tmp')}")
                )
            data_files.append({"split": split, "path": f"{config_name}/{split}-{tag}-*.parquet"})
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
        occ_hf_url=project_url(),
        source=source,
        prompt_style=prompt_style,
        clarity=clarity,
        notes=notes or [],
        citation=DATASET_CITATION.strip(),
    )
    card.save(out_dir / _CARD_NAME)


def push_folder(out_dir: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Uploads an exported folder as a dataset repository; returns the commit URL.

    Shards already in the repository that this folder does not hold are deleted in the same commit, so that no
    earlier build's shard is matched by the new card's globs.
    """
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(
        folder_path=str(out_dir),
        repo_id=repo_id,
        repo_type="dataset",
        commit_message="Upload occ-obman-cot",
        delete_patterns=[_SHARD_PATTERN],
    )
    return commit.commit_url
