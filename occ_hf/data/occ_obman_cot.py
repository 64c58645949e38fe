"""The `occ-obman-cot` dataset builder: raw ObMan (plus 3D views) to chain-of-thought, preference and test rows.

`import occ_hf` registers this module with `datasets` as the packaged module `occ-obman-cot` (datasets 5 has no
dataset scripts), so:

```python
import occ_hf
from datasets import load_dataset

ds = load_dataset("occ-obman-cot", "reflection", data_dir="/data/obman", prompt_style="code")
ds = load_dataset("occ-obman-cot", "test", data_dir="/data/obman", views_dir="/data/views", split="test")
ds = load_dataset("occ-obman-cot", "preference", data_dir="/data/obman", streaming=True)
```

`data_dir` is the ObMan root (`train/`, `val/`, `test/`); each split found there becomes a dataset split.
Configs and their columns (every config also has `id`, `label` (ClassLabel of the 8 classes), `occlusion`, `clear`):

| config        | rows                                                                | columns              |
|---------------|---------------------------------------------------------------------|----------------------|
| `description` | stage 1: the class question (`paper`: round/thin/long, then class)  | `images`, `messages` |
| `reflection`  | stage 2: stage 1, then the clarity question                         | `images`, `messages` |
| `decision`    | stage 3: the class question on the 3D view                          | `images`, `messages` |
| `cot`         | `code`: the seed's step-by-step Q0; `paper`: the figure's chain     | `images`, `messages` |
| `preference`  | MPO pairs on the clarity question, Yes/No balanced as the seed does | `images`, `prompt`,  |
|               |                                                                     | `chosen`, `rejected` |
| `test`        | what evaluation reads                                               | `image`, `view`      |

`messages`, `prompt`, `chosen` and `rejected` are TRL's conversational format with structured image parts, so
`SFTTrainer` and `DPOTrainer` take the rows unchanged. Images are stored as bytes (read and decoded once here, so a
corrupt file is caught at build time) and the built dataset needs no ObMan folder afterwards.

Generation streams sample by sample and shards the id list, so `num_proc` splits the work across processes; the
same inputs give the same rows and the same fingerprint.
"""

import logging
import os
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import datasets

from occ_hf.cot import (
    ClarityLabeler,
    cot_messages,
    decision_messages,
    description_messages,
    get_prompt_style,
    preference_pair,
    reflection_messages,
)
from occ_hf.cot.clarity import SEED_UNCLEAR_IDS
from occ_hf.data import obman_splits_under
from occ_hf.obman import OCC_CLASSES, ObManFormatError, ObManSplit, UnknownClassError, load_meta, read_id_list
from occ_hf.obman.input_files import MAX_IMAGE_FILE_BYTES, decode_image, read_regular_file
from occ_hf.obman.reader import SYNTH_MARKER
from occ_hf.version import CITATION
from occ_hf.views.naming import VIEW_NAME_TEMPLATE


logger = logging.getLogger(__name__)

# The card of an exported dataset cites the same works (occ_hf.data.export).
DATASET_CITATION = (
    CITATION
    + """\
@inproceedings{hasson19_obman,
  title     = {Learning joint reconstruction of hands and manipulated objects},
  author    = {Hasson, Yana and Varol, G{\\"u}l and Tzionas, Dimitris and Kalevatykh, Igor and Black, Michael J.
               and Laptev, Ivan and Schmid, Cordelia},
  booktitle = {CVPR},
  year      = {2019}
}
"""
)
_DESCRIPTION = "Occluded-object recognition on ObMan with 3D views and a staged chain of thought (OCC-MLLM-CoT)."
_HOMEPAGE = "https://github.com/chaoyiwang09/OCC-MLLM"
CONFIG_NAMES = ("description", "reflection", "decision", "cot", "preference", "test")
_SHARD_SIZE = 256
BALANCE_CLARITY = ("none", "downsample")
# The configs whose rows hold a clarity answer, which `balance_clarity` balances.
_CLARITY_CONFIGS = ("reflection", "cot", "preference")


@dataclass
class OccObManCotConfig(datasets.BuilderConfig):
    r"""
    A config of `occ-obman-cot`; `name` is one of `description`, `reflection`, `decision`, `cot`, `preference`, `test`.
    Pass any field to `load_dataset` as a keyword.

    Parameters:
        prompt_style (`str`, *optional*, defaults to `"code"`):
            `code` (the seed's released strings, byte for byte) or `paper` (the paper figure's questions).
        unclear_ids (`str`, *optional*):
            Clarity from a list of ids the stage-1 model got wrong, in the seed's format; `"seed"` is the seed's own
            list (train split). Default: the seed's list for the train split of a real ObMan root, otherwise the
            occlusion threshold.
        predictions (`str`, *optional*):
            Clarity from a stage-1 predictions file (`{id: answer}`): clear where the answer is right. ObMan numbers
            each split's samples from 0, so one file serves one split: with `{split}` in the path (e.g.
            `preds/{split}.json`) each split reads its own file.
        occlusion_threshold (`float`, *optional*, defaults to `0.5`):
            Clarity from occlusion: clear where less than this share of the object is hidden.
        balance_clarity (`str`, *optional*):
            `downsample` (the larger of the "Yes." and "No." sides down-sampled at random to the smaller's size, as
            the seed balances its MPO pairs) or `none`, for the configs with a clarity answer (`reflection`, `cot`,
            `preference`; the others ignore it). Defaults to `downsample` for `preference` and `none` for the
            others, as the seed's files are (its SFT2 rows keep every sample). A stage-1 model right on most (or
            few) training images makes one answer the majority, and a model trained on such rows learns to give it
            always: `downsample` keeps the clarity answer informative at the cost of rows.
        ids_file (`str`, *optional*):
            Keep only the ids of this file (a seed jsonl, a text id list, a json id list), e.g. the seed's 10K subset.
        max_samples (`int`, *optional*):
            Keep only the first `max_samples` ids of each split (after `ids_file`); at least 1.
        min_occlusion (`float`, *optional*, defaults to `0.0`), max_occlusion (`float`, *optional*, defaults to `1.0`):
            Keep samples whose occlusion lies in `[min_occlusion, max_occlusion]`. A split that these filters (or
            skips) leave without rows is an error that says which, not an empty split.
        views_dir (`str`, *optional*):
            Folder of 3D views named as the seed names them (`view_name`); `decision` needs views, `test` uses them.
        views_url (`str`, *optional*):
            Or a URL prefix or template of the views (`{id}`, `{split}`, `{name}`; the seed's test views are under
            `occ_hf.views.SEED_VIEWS_URL`): fetched through the download manager, so they are cached like any
            download (with `streaming=True`, each is read when its row is); a view that is not there or not an
            image is a missing view, reported by id.
        view_name (`str`, *optional*, defaults to `"{id}_0_obman_{split}_rgb_{id}.jpg.png"`):
            File name of a view; `{id}` and `{split}` are filled in.
        on_missing_view (`str`, *optional*):
            `error`, `skip` (counted and logged) or `keep` (the row keeps `view=None`; `test` only: a `decision` row
            without its view has no image to ask about, so `keep` is refused there). Defaults to `keep` for `test`
            and `error` for `decision`.
        on_unknown_class (`str`, *optional*, defaults to `"skip"`):
            `error` or `skip` (counted and logged) for ObMan's mugs and other non-OCC synsets.
        on_bad_sample (`str`, *optional*, defaults to `"error"`):
            `error` or `skip` (counted and logged) for a missing, truncated or corrupt file.
        seed (`int`, *optional*, defaults to `0`):
            Seed of the preference down-sampling.
    """

    prompt_style: str = "code"
    unclear_ids: str | None = None
    predictions: str | None = None
    occlusion_threshold: float = 0.5
    balance_clarity: str | None = None
    ids_file: str | None = None
    max_samples: int | None = None
    min_occlusion: float = 0.0
    max_occlusion: float = 1.0
    views_dir: str | None = None
    views_url: str | None = None
    view_name: str = VIEW_NAME_TEMPLATE
    on_missing_view: str | None = None
    on_unknown_class: str = "skip"
    on_bad_sample: str = "error"
    seed: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.on_missing_view is None:
            self.on_missing_view = "keep" if self.name == "test" else "error"
        if self.balance_clarity is None:
            self.balance_clarity = "downsample" if self.name == "preference" else "none"
        self.validate()

    def validate(self) -> None:
        """Refuses a config whose options contradict each other, naming the option and the fix.

        Runs in `__post_init__` and again in the builder's `_split_generators`: `load_dataset` sets options given as
        keywords on a copy of a predefined config after its `__post_init__` ran, so only the second call sees them.
        """
        if self.name not in CONFIG_NAMES:
            raise ValueError(f"Unknown config {self.name!r}; expected one of {list(CONFIG_NAMES)}.")
        get_prompt_style(self.prompt_style)
        # A decision row asks the class question on the view: without it there is nothing to ask, so `keep` (a row
        # with no image) is for `test` only.
        allowed = ("error", "skip", "keep") if self.name == "test" else ("error", "skip")
        if self.on_missing_view not in allowed:
            why = ""
            if self.name == "decision" and self.on_missing_view == "keep":
                why = " (a decision row without its view has no image to ask about: use 'skip')"
            raise ValueError(
                f"on_missing_view for {self.name!r} must be one of {list(allowed)}, got {self.on_missing_view!r}{why}."
            )
        if self.balance_clarity not in BALANCE_CLARITY:
            raise ValueError(
                f"balance_clarity must be one of {list(BALANCE_CLARITY)}, got {self.balance_clarity!r} (downsample: "
                "as many 'Yes.' as 'No.' rows; none: every sample)."
            )
        for option in ("on_unknown_class", "on_bad_sample"):
            if getattr(self, option) not in ("error", "skip"):
                raise ValueError(f"{option} must be 'error' or 'skip', got {getattr(self, option)!r}.")
        if self.views_dir is not None and self.views_url is not None:
            raise ValueError("Pass views_dir (a folder) or views_url (a URL), not both.")
        from occ_hf.views import resolve_views

        # Fills both templates once, so an unknown {field} is named here rather than while generating rows.
        resolve_views(["0"], self.views_url or ".", template=self.view_name)
        for option in ("min_occlusion", "max_occlusion", "occlusion_threshold"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{option} must be a number in [0, 1], got {value!r}.")
        if not 0.0 <= self.min_occlusion <= self.max_occlusion <= 1.0:
            raise ValueError(
                f"Need 0 <= min_occlusion <= max_occlusion <= 1, got {self.min_occlusion}, {self.max_occlusion}."
            )
        if self.max_samples is not None and (
            isinstance(self.max_samples, bool) or not isinstance(self.max_samples, int) or self.max_samples < 1
        ):
            raise ValueError(f"max_samples must be a whole number >= 1 (or left unset), got {self.max_samples!r}.")


def _features(config_name: str) -> datasets.Features:
    content = datasets.List({"type": datasets.Value("string"), "text": datasets.Value("string")})
    turns = datasets.List({"role": datasets.Value("string"), "content": content})
    metadata = {
        "id": datasets.Value("string"),
        "label": datasets.ClassLabel(names=list(OCC_CLASSES)),
        "occlusion": datasets.Value("float32"),
        "clear": datasets.Value("bool"),
    }
    if config_name == "test":
        columns = {"image": datasets.Image(), "view": datasets.Image()}
    elif config_name == "preference":
        columns = {"images": datasets.List(datasets.Image()), "prompt": turns, "chosen": turns, "rejected": turns}
    else:
        columns = {"images": datasets.List(datasets.Image()), "messages": turns}
    return datasets.Features({**columns, **metadata})


class OccObManCot(datasets.GeneratorBasedBuilder):
    """Builds `occ-obman-cot` rows from an ObMan root (`data_dir`)."""

    BUILDER_CONFIG_CLASS = OccObManCotConfig
    BUILDER_CONFIGS = [OccObManCotConfig(name=name) for name in CONFIG_NAMES]
    DEFAULT_CONFIG_NAME = "reflection"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=_features(self.config.name),
            homepage=_HOMEPAGE,
            citation=DATASET_CITATION,
        )

    def _split_generators(self, dl_manager):
        self.config.validate()
        splits = obman_splits_under(self.config.data_dir)
        root = Path(self.config.data_dir).expanduser()
        keep_ids = set(read_id_list(self.config.ids_file)[0]) if self.config.ids_file else None
        generators = []
        for folder, split in splits.items():
            ids = ObManSplit(root, folder).ids
            if keep_ids is not None:
                ids = [i for i in ids if i in keep_ids]
            if self.config.max_samples is not None:
                ids = ids[: self.config.max_samples]
            clarity = self._clarity_labeler(root, folder)
            if self.config.name in _CLARITY_CONFIGS and self.config.balance_clarity == "downsample":
                ids = self._balanced_ids(root, folder, ids, clarity)
            if not ids:
                # datasets cannot hold a split without rows; say why it is left out.
                logger.warning("occ-obman-cot %s: no rows for the %s split, left out.", self.config.name, folder)
                continue
            shards = [ids[i : i + _SHARD_SIZE] for i in range(0, len(ids), _SHARD_SIZE)]
            downloaded = None
            if self.config.views_url is not None and self.config.name in ("test", "decision"):
                from occ_hf.views import download_views

                # Streaming: URLs, each read (with the manager's authentication) when its row is.
                downloaded = download_views(
                    dl_manager, ids, self.config.views_url, split=folder, template=self.config.view_name
                )
            generators.append(
                datasets.SplitGenerator(
                    name=split,
                    gen_kwargs={
                        "root": str(root),
                        "split": folder,
                        "shards": shards,
                        "clarity": clarity,
                        "downloaded_views": downloaded,
                        "download_config": dl_manager.download_config if dl_manager.is_streaming else None,
                    },
                )
            )
        if not generators:
            raise ValueError(
                f"{root}: no rows for {self.config.name!r} in any split (the id filters keep nothing, or, for "
                "preference or with balance_clarity='downsample', every sample has the same clarity label)."
            )
        return generators

    def _prepare_split(self, split_generator, **kwargs):
        super()._prepare_split(split_generator, **kwargs)
        if split_generator.split_info.num_examples == 0:
            # datasets would only fail later, reading the split ("corresponds to no data"); say which filter it was.
            raise ValueError(self._why_no_rows(split_generator.gen_kwargs))

    def _why_no_rows(self, gen_kwargs: dict) -> str:
        """Why a split's generation yielded no row: the occlusion range, or skips (read again, only on failure)."""
        config, split = self.config, gen_kwargs["split"]
        ids = [sample_id for shard in gen_kwargs["shards"] for sample_id in shard]
        obman = ObManSplit(gen_kwargs["root"], split, ids=ids, on_unknown_class="skip", on_bad_sample="skip")
        occlusions = [sample.occlusion for sample in obman if sample.occlusion is not None]
        head = f"occ-obman-cot {config.name}: no rows for the {split} split"
        inside = [o for o in occlusions if config.min_occlusion <= o <= config.max_occlusion]
        if occlusions and not inside:
            return (
                f"{head}: min_occlusion={config.min_occlusion}, max_occlusion={config.max_occlusion} keep none of "
                f"its {len(ids)} samples (their occlusion lies in [{min(occlusions):.3f}, {max(occlusions):.3f}]); "
                "widen the range."
            )
        return (
            f"{head}: every one of its {len(ids)} samples was skipped (on_bad_sample={config.on_bad_sample!r}, "
            f"on_unknown_class={config.on_unknown_class!r}, on_missing_view={config.on_missing_view!r}; the "
            "warning above counts why); fix or add the files, or use 'error' to see the first one."
        )

    def _clarity_labeler(self, root: Path, split: str) -> ClarityLabeler:
        config = self.config
        if config.unclear_ids is not None:
            path = SEED_UNCLEAR_IDS if config.unclear_ids == "seed" else config.unclear_ids
            return ClarityLabeler.from_unclear_ids(path)
        if config.predictions is not None:
            return ClarityLabeler.from_predictions(config.predictions.replace("{split}", split))
        if split == "train" and not (root / SYNTH_MARKER).exists():
            # A real ObMan train split: the seed's own labels (ids the stage-1 model got wrong).
            return ClarityLabeler.from_unclear_ids(SEED_UNCLEAR_IDS)
        return ClarityLabeler.from_occlusion(config.occlusion_threshold)

    def _balanced_ids(self, root: Path, split: str, ids: list[str], clarity: ClarityLabeler) -> list[str]:
        """Ids of a Yes/No-balanced subset: the larger side down-sampled at random to the smaller's size.

        Reads only the meta files (class and the writer's visibility ratio), to label every id before generation.
        """
        by_answer: dict[bool, list[str]] = {True: [], False: []}
        skipped: Counter[str] = Counter()
        for sample_id in ids:
            meta_path = root / split / "meta" / f"{sample_id}.pkl"
            try:
                meta = load_meta(meta_path)
                label = ObManSplit.class_name_of(meta, meta_path, on_unknown_class=self.config.on_unknown_class)
                occlusion = ObManSplit.occlusion_from_meta(meta, meta_path)
            except UnknownClassError:
                raise  # on_unknown_class="error"
            except ObManFormatError:
                if self.config.on_bad_sample == "error":
                    raise
                skipped["bad file"] += 1
                continue
            if label is None:
                skipped["unknown class"] += 1
                continue
            if occlusion is not None and not self.config.min_occlusion <= occlusion <= self.config.max_occlusion:
                continue
            by_answer[clarity.is_clear(sample_id, label, occlusion)].append(sample_id)
        if skipped:
            logger.warning("Clarity balancing of %s/%s skipped %s", root, split, dict(skipped))
        size = min(len(by_answer[True]), len(by_answer[False]))
        rng = random.Random(f"{self.config.seed}/{split}")
        kept = set(by_answer[True] if len(by_answer[True]) == size else rng.sample(by_answer[True], size))
        kept |= set(by_answer[False] if len(by_answer[False]) == size else rng.sample(by_answer[False], size))
        logger.info(
            "Clarity-balanced %s rows for %s: %d Yes and %d No kept of %d/%d",
            self.config.name,
            split,
            size,
            size,
            *map(len, by_answer.values()),
        )
        return [i for i in ids if i in kept]

    def _read_view(self, sample_id, split, views_dir, downloaded_views, download_config) -> tuple[dict | None, str]:
        """The view of a sample as an image feature value, or `None` and why it is missing (absent or unreadable)."""
        from occ_hf.views import ViewImageError, read_view_image, resolve_views

        if downloaded_views is not None:
            locations, missing = downloaded_views
            location = locations.get(sample_id)
            if location is None:
                return None, missing.get(sample_id, "not downloaded")
        else:
            location = Path(resolve_views([sample_id], views_dir, split, self.config.view_name)[sample_id])
        try:
            data = read_view_image(location, download_config)
        except FileNotFoundError:
            return None, f"not found: {location}"
        except ViewImageError as error:
            return None, str(error)
        return {"path": os.path.basename(location), "bytes": data}, ""

    def _generate_examples(
        self,
        root: str,
        split: str,
        shards: list[list[str]],
        clarity: ClarityLabeler,
        downloaded_views: tuple[dict[str, str], dict[str, str]] | None = None,
        download_config: datasets.DownloadConfig | None = None,
    ):
        config = self.config
        style = get_prompt_style(config.prompt_style)
        # Only the configs that show the 3D view look it up; the others ignore views_dir.
        views_dir = Path(config.views_dir) if config.views_dir and config.name in ("test", "decision") else None
        if views_dir is not None and not views_dir.is_dir():
            raise FileNotFoundError(
                f"{views_dir}: views folder not found; render or fetch the views there (occ-hf views render|fetch) "
                "or pass the folder that holds them."
            )
        has_views = views_dir is not None or downloaded_views is not None
        if config.name == "decision" and not has_views:
            raise ValueError("The decision config asks the class question on 3D views: pass views_dir or views_url.")
        if not has_views and config.name == "test":
            logger.warning(
                "occ-obman-cot test/%s: no views_dir or views_url given, so every row has view=None.", split
            )
        skipped: Counter[str] = Counter()
        for shard in shards:
            obman = ObManSplit(
                root, split, ids=shard, on_unknown_class=config.on_unknown_class, on_bad_sample=config.on_bad_sample
            )
            for sample in obman:
                occlusion = sample.occlusion
                if occlusion is not None and not config.min_occlusion <= occlusion <= config.max_occlusion:
                    continue
                try:
                    image = _image_file(sample.rgb_path)
                except ObManFormatError:
                    if config.on_bad_sample == "error":
                        raise
                    skipped["bad file"] += 1
                    continue
                view, missing_reason = None, ""
                if has_views:
                    view, missing_reason = self._read_view(
                        sample.sample_id, split, views_dir, downloaded_views, download_config
                    )
                if missing_reason:
                    if config.on_missing_view == "error":
                        raise FileNotFoundError(
                            f"3D view of sample {sample.sample_id}: {missing_reason}; render or fetch it "
                            "(occ-hf views), or pass on_missing_view='skip'."
                        )
                    if config.on_missing_view == "skip":
                        skipped["missing view"] += 1
                        continue
                    skipped["missing view (kept, view=None)"] += 1
                clear = clarity.is_clear(sample.sample_id, sample.class_name, occlusion)
                metadata = {
                    "id": sample.sample_id,
                    "label": sample.class_name,
                    "occlusion": occlusion,
                    "clear": clear,
                }
                yield sample.sample_id, {**_row(config.name, style, sample.class_name, clear, image, view), **metadata}
            for reason, count in obman.skipped.items():
                skipped[reason] += count
        if skipped:
            # Counted per generation job (one per process with num_proc); nothing is dropped silently.
            logger.warning("occ-obman-cot %s/%s: skipped or incomplete rows %s", config.name, split, dict(skipped))


def _row(config_name: str, style, class_name: str, clear: bool, image: dict, view: dict | None) -> dict:
    if config_name == "test":
        return {"image": image, "view": view}
    if config_name == "preference":
        return {"images": [image], **preference_pair(style, clear)}
    if config_name == "description":
        return {"images": [image], "messages": description_messages(style, class_name)}
    if config_name == "reflection":
        return {"images": [image], "messages": reflection_messages(style, class_name, clear)}
    if config_name == "decision":
        return {"images": [view], "messages": decision_messages(style, class_name)}
    return {"images": [image], "messages": cot_messages(style, class_name, clear)}


def _image_file(path: Path) -> dict:
    """Reads an image file and decodes it fully once, so a corrupt or truncated file fails here, named."""
    try:
        data = read_regular_file(path, MAX_IMAGE_FILE_BYTES)
    except FileNotFoundError:
        raise ObManFormatError(f"{path}: image not found (is the split complete?).") from None
    decode_image(data, path)
    return {"path": path.name, "bytes": data}
