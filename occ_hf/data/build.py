"""`occ-hf build-dataset`: build `occ-obman-cot` configs from an ObMan root, export parquet + card, optionally push.

```bash
occ-hf build-dataset --obman-root /data/obman --config reflection,preference --out out/occ-obman-cot
occ-hf build-dataset --obman-root /data/obman --config all --out out/occ-obman-cot --push-to-hub org/occ-obman-cot
occ-hf build-dataset --obman-root /data/obman --config all --out out/occ-obman-cot --overwrite   # rebuild in place
```

A non-empty `--out` is refused before anything is built; `--overwrite` replaces the previous build there (its
`README.md` and `<config>/*.parquet` shards, once the new build is complete; other files are kept), so the folder
never holds shards of two builds (`occ_hf.data.export`).
"""

from dataclasses import dataclass, field, fields
from pathlib import Path


__all__ = ["BuildDatasetConfig", "build_dataset"]

# Builder keywords that `BuildDatasetConfig` forwards to `load_dataset` unchanged.
_BUILDER_FIELDS = (
    "prompt_style",
    "unclear_ids",
    "predictions",
    "occlusion_threshold",
    "balance_clarity",
    "ids_file",
    "max_samples",
    "min_occlusion",
    "max_occlusion",
    "views_dir",
    "views_url",
    "on_missing_view",
    "on_unknown_class",
    "on_bad_sample",
    "seed",
)


@dataclass
class BuildDatasetConfig:
    r"""
    Configuration of `occ-hf build-dataset` (and `dataset_scripts/build_occ_obman_cot.py`).

    Parameters:
        obman_root (`str`): ObMan root holding `train/`, `val/`, `test/`.
        out (`str`): Folder to write (a complete dataset repository: parquet shards and `README.md`); it must be
            empty or absent unless `overwrite`.
        overwrite (`bool`, *optional*, defaults to `False`): Replace a previous build in `out`: its `README.md` and
            `<config>/*.parquet` shards are removed once the new build is complete; other files are kept.
        config (`str`, *optional*, defaults to `"all"`): Comma-separated configs of `occ-obman-cot`, or `all`.
        push_to_hub (`str`, *optional*): Dataset repository id to upload the folder to.
        private (`bool`, *optional*, defaults to `False`): Create the Hub repository private.
        num_proc (`int`, *optional*): Processes for generation.
        cache_dir (`str`, *optional*): datasets cache folder.
        prompt_style, unclear_ids, predictions, occlusion_threshold, balance_clarity, ids_file, max_samples,
        min_occlusion, max_occlusion, views_dir, views_url, on_missing_view, on_unknown_class, on_bad_sample, seed:
            Forwarded to the builder (see `OccObManCotConfig`).
    """

    obman_root: str | None = field(
        default=None, metadata={"help": "ObMan root holding train/, val/, test/ (required)."}
    )
    out: str = field(default="out/occ-obman-cot", metadata={"help": "Folder to write (parquet shards + README.md)."})
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Replace a previous build in a non-empty --out (its README.md and <config>/*.parquet shards; "
            "other files are kept). Without it a non-empty --out is refused."
        },
    )
    config: str = field(default="all", metadata={"help": "Comma-separated configs, or 'all'."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Dataset repo id to upload to."})
    private: bool = field(default=False, metadata={"help": "Create the Hub repository private."})
    num_proc: int | None = field(default=None, metadata={"help": "Processes for generation."})
    cache_dir: str | None = field(default=None, metadata={"help": "datasets cache folder."})
    prompt_style: str = field(default="code", metadata={"help": "code (seed strings) or paper (figure)."})
    unclear_ids: str | None = field(default=None, metadata={"help": "Unclear-id list (seed format) or 'seed'."})
    predictions: str | None = field(default=None, metadata={"help": "Stage-1 predictions file for clarity."})
    occlusion_threshold: float = field(default=0.5, metadata={"help": "Clear below this occlusion."})
    balance_clarity: str | None = field(
        default=None,
        metadata={
            "help": "downsample (as many Yes as No rows) or none, for reflection, cot, preference; default: "
            "downsample for preference, none for the others."
        },
    )
    ids_file: str | None = field(default=None, metadata={"help": "Keep only these ids (seed jsonl/txt/json)."})
    max_samples: int | None = field(default=None, metadata={"help": "First N ids of each split."})
    min_occlusion: float = field(default=0.0, metadata={"help": "Lowest occlusion kept."})
    max_occlusion: float = field(default=1.0, metadata={"help": "Highest occlusion kept."})
    views_dir: str | None = field(default=None, metadata={"help": "Folder of 3D views (seed naming)."})
    views_url: str | None = field(default=None, metadata={"help": "Or a URL prefix/template of the 3D views."})
    on_missing_view: str | None = field(default=None, metadata={"help": "error, skip or keep (test only)."})
    on_unknown_class: str = field(default="skip", metadata={"help": "error or skip (counted)."})
    on_bad_sample: str = field(default="error", metadata={"help": "error or skip (counted)."})
    seed: int = field(default=0, metadata={"help": "Seed of the preference down-sampling."})


def build_dataset(config: BuildDatasetConfig) -> Path:
    """Builds the requested configs, writes them with the card, pushes when asked; returns the folder."""
    # `load_dataset` finds the `occ-obman-cot` builder: importing this module imported `occ_hf`, which registers it
    # once `datasets` is imported, here.
    from datasets import load_dataset

    from .export import check_output_folder, export_dataset, push_folder
    from .occ_obman_cot import CONFIG_NAMES

    if config.obman_root is None:
        raise ValueError("build-dataset needs --obman_root, the ObMan root holding train/, val/, test/.")
    names = list(CONFIG_NAMES) if config.config == "all" else [name.strip() for name in config.config.split(",")]
    unknown = [name for name in names if name not in CONFIG_NAMES]
    if unknown:
        raise ValueError(f"Unknown configs {unknown}; expected some of {list(CONFIG_NAMES)} or 'all'.")
    if "decision" in names and config.views_dir is None and config.views_url is None:
        raise ValueError("The decision config needs views: pass --views_dir or --views_url (or leave decision out).")
    check_output_folder(config.out, config.overwrite)  # before the build, which can take hours
    options = {name: getattr(config, name) for name in _BUILDER_FIELDS}
    dataset_dicts = {
        name: load_dataset(
            "occ-obman-cot",
            name,
            data_dir=config.obman_root,
            num_proc=config.num_proc,
            cache_dir=config.cache_dir,
            **options,
        )
        for name in names
    }
    clarity = (
        f"unclear-id list {config.unclear_ids}"
        if config.unclear_ids
        else f"stage-1 predictions {config.predictions}"
        if config.predictions
        else f"occlusion below {config.occlusion_threshold} (the seed's list for a real ObMan train split)"
    )
    out = export_dataset(
        dataset_dicts,
        config.out,
        repo_id=config.push_to_hub or "occ-obman-cot",
        source=f"`{Path(config.obman_root).name}`",
        prompt_style=config.prompt_style,
        clarity=clarity,
        notes=[f"{f.name} = {getattr(config, f.name)}" for f in fields(config) if f.name in _BUILDER_FIELDS],
        overwrite=config.overwrite,
    )
    if config.push_to_hub:
        print(push_folder(out, config.push_to_hub, private=config.private))
    return out
