"""Converts InternVL checkpoints into OccInternVL checkpoints (transformers' native InternVL format, subclassed).

The output is an OccInternVL checkpoint end to end by default: `OccInternVLConfig` (the source's network plus the
OCC prompts), `OccInternVLForConditionalGeneration` (`recognize()`) and `OccInternVLProcessor`, whose chat template is
the source's chat format with `stage` parts added ([`add_stage_prompts`]). Pass `config_class=InternVLConfig,
model_class=InternVLForConditionalGeneration` for a plain InternVL checkpoint with an `InternVLProcessor`.

Two kinds of source are read, each as a folder or as a `.tar.gz` / `.tgz` / `.tar` archive:

- **transformers-native** checkpoints (`model_type` `internvl`, e.g. InternVL2.5-MPO, InternVL3, InternVL3.5 `-hf`):
  loaded strictly (a missing, unexpected or mis-shaped weight is an error), then saved again with their processor,
  so that their chat template is kept as it is.
- **original OpenGVLab** `InternVLChatModel` checkpoints (`model_type` `internvl_chat`, remote code, the format of
  InternVL2 and of the seed's released OCC-MLLM-CoT models): InternViT + `mlp1` + a Qwen2, Llama, InternLM2 /
  InternLM2.5 or Phi-3 language model. Their config is mapped to an `InternVLConfig` and their weights renamed (and
  the fused projections split) into `InternVLForConditionalGeneration`'s layout.

```python
from occ_hf.models.occ_internvl.convert_occ_internvl import convert_checkpoint

summary = convert_checkpoint("InternVL2-2B.tar.gz", "occ-internvl-2b")   # then from_pretrained("occ-internvl-2b")
```
```bash
occ-hf convert-checkpoint InternVL2-2B.tar.gz occ-internvl-2b --dtype bfloat16
```

This module holds the entry point ([`convert_checkpoint`], its CLI config and summary) and the order of the steps;
each step lives in a sibling module, whose names are re-exported here:

- `convert_source.py`: archives checked and extracted, `config.json` and index files, weight files; the
  [`CheckpointConversionError`] that every step raises.
- `convert_config.py`: an original config mapped to an `InternVLConfig`, and what cannot be represented refused.
- `convert_weights.py`: the original weights renamed, the fused projections split.
- `convert_chat_template.py`: the source's conversation template as a chat template.
- `convert_tokenizer.py`: the source's tokenizer, InternLM2's sentencepiece model converted to a fast tokenizer.

None of them travels with a checkpoint (transformers copies only the configuration, modeling and processing files
that `auto_map` names, and what those import), so they may import the rest of occ-hf.

Chat format: an original checkpoint's processor gets a chat template that renders its conversation template byte
for byte (see `convert_chat_template.py`), and the generation config stops on the template's separator token, as
`chat()` does. A native checkpoint keeps its own chat template; both get the stage parts on top, which leave every
other message's rendering alone. The image processor of an original checkpoint is `GotOcr2ImageProcessor` at the
source's tile size with ImageNet statistics and its `min/max_dynamic_patch`; note that `InternVLProcessor` tiles by
default and always adds a thumbnail to a multi-tile image, which is what InternVL2 checkpoints (`dynamic_image_size`
and `use_thumbnail` true) expect; a warning says when the source differs.

Memory: the source weights are read once, renamed (only the split projections are copied), staged as safetensors
beside `output_dir`, then loaded strictly into `model_class` by `from_pretrained` and written by its
`save_pretrained`, so a registered subclass writes its `auto_map` and modeling files as usual.

Nothing is written into `output_dir` until the conversion is complete: the config and the template name are checked
first, the whole output is written into a temporary folder beside `output_dir` (the same file system) and renamed
into place at the end ([`occ_hf.staging`]); a failure removes it and leaves `output_dir` as it was, so a rerun
starts afresh.
"""

import json
import os
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import (
    GenerationConfig,
    GotOcr2ImageProcessor,
    InternVLProcessor,
    InternVLVideoProcessor,
)

from ...staging import move_into_place, staging_folder
from .configuration_occ_internvl import OccInternVLConfig
from .convert_chat_template import conversation_chat_template, conversation_stop_token
from .convert_config import check_chat_config, convert_internvl_chat_config
from .convert_source import (
    ARCHIVE_SUFFIXES,
    CheckpointConversionError,
    UnsafeArchiveError,
    extract_archive,
    load_checkpoint_state_dict,
    read_json_object,
)
from .convert_tokenizer import check_tokenizer_fits_source, convert_internlm2_tokenizer, load_tokenizer
from .convert_weights import convert_internvl_chat_state_dict, split_internlm2_wqkv
from .modeling_occ_internvl import OccInternVLForConditionalGeneration
from .processing_occ_internvl import OccInternVLProcessor, add_stage_prompts


__all__ = [
    "CheckpointConversionError",
    "ConversionSummary",
    "ConvertCheckpointConfig",
    "UnsafeArchiveError",
    "conversation_chat_template",
    "convert_checkpoint",
    "run_convert_checkpoint",
    "convert_internlm2_tokenizer",
    "convert_internvl_chat_config",
    "convert_internvl_chat_state_dict",
    "extract_archive",
    "load_checkpoint_state_dict",
    "split_internlm2_wqkv",
]

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# Weight files (and their indexes) that save_pretrained writes; an overwrite removes an earlier conversion's.
_WEIGHT_FILE = re.compile(r"(model|pytorch_model)(-\d+-of-\d+)?\.(safetensors|bin)(\.index\.json)?")


@dataclass
class ConvertCheckpointConfig:
    r"""
    Configuration of `occ-hf convert-checkpoint SRC OUTPUT_DIR`, which runs [`convert_checkpoint`].

    Parameters:
        src (`str`):
            Source checkpoint: a folder, or a `.tar.gz` / `.tgz` / `.tar` archive of one, in transformers' native
            InternVL format or in OpenGVLab's original `InternVLChatModel` format.
        output_dir (`str`):
            Folder to write the converted checkpoint (model, processor, generation config) into.
        dtype (`str`, *optional*, defaults to `"auto"`):
            Weight dtype of the output: `auto` (the source's declared dtype, else float32), `float32`, `bfloat16` or
            `float16`.
        image_token_id (`int`, *optional*):
            Id of the `<IMG_CONTEXT>` token; only needed for an original checkpoint without tokenizer files.
        tokenizer (`str`, *optional*):
            Folder of a fast tokenizer (`tokenizer.json`) of the same vocabulary to use instead of the source's own;
            not needed for InternLM2's `tokenizer.model`, which is converted.
        overwrite (`bool`, *optional*, defaults to `False`):
            Whether to write into a non-empty `output_dir`: files of the same names are replaced, weight files of an
            earlier conversion removed, other files kept.
    """

    src: str = field(metadata={"help": "Source checkpoint folder or .tar.gz/.tgz/.tar archive."})
    output_dir: str = field(metadata={"help": "Folder to write the converted checkpoint into."})
    dtype: str = field(default="auto", metadata={"help": "auto, float32, bfloat16 or float16."})
    image_token_id: int | None = field(
        default=None, metadata={"help": "Id of <IMG_CONTEXT>, for an original checkpoint without tokenizer files."}
    )
    tokenizer: str | None = field(
        default=None, metadata={"help": "Fast tokenizer folder to use instead of the source's own."}
    )
    overwrite: bool = field(default=False, metadata={"help": "Write into a non-empty output_dir."})


@dataclass
class ConversionSummary:
    r"""
    What [`convert_checkpoint`] wrote.

    Parameters:
        output_dir (`str`): The converted checkpoint.
        source_format (`str`): `transformers` (native InternVL) or `internvl_chat` (original OpenGVLab).
        language_model (`str`): Architecture of the source's language model, e.g. `InternLM2ForCausalLM`.
        num_parameters (`int`): Parameters of the converted model.
        dtype (`str`): Weight dtype written.
        has_processor (`bool`): Whether a processor (tokenizer, image processor, chat template) was written.
        chat_template_source (`str`): Where the chat template came from.
    """

    output_dir: str
    source_format: str
    language_model: str
    num_parameters: int
    dtype: str
    has_processor: bool
    chat_template_source: str

    def to_dict(self) -> dict:
        return asdict(self)


def run_convert_checkpoint(config: ConvertCheckpointConfig) -> ConversionSummary:
    """`occ-hf convert-checkpoint`: [`convert_checkpoint`] with `config`'s fields."""
    return convert_checkpoint(
        config.src,
        config.output_dir,
        dtype=config.dtype,
        image_token_id=config.image_token_id,
        tokenizer=config.tokenizer,
        overwrite=config.overwrite,
    )


def convert_checkpoint(
    src: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    config_class: type = OccInternVLConfig,
    model_class: type = OccInternVLForConditionalGeneration,
    dtype: str = "auto",
    image_token_id: int | None = None,
    tokenizer: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> ConversionSummary:
    """
    Converts an InternVL checkpoint (native or original OpenGVLab, folder or archive) into `output_dir`.

    Args:
        src (`str` or `os.PathLike`): Source folder or `.tar.gz` / `.tgz` / `.tar` archive.
        output_dir (`str` or `os.PathLike`): Where to write the converted checkpoint.
        config_class (`type`, *optional*, defaults to `OccInternVLConfig`): Config class of the output
            (`InternVLConfig` or a subclass). With `OccInternVLConfig` (or a subclass of it) the processor is an
            `OccInternVLProcessor` whose chat template also renders the stage prompts; otherwise an
            `InternVLProcessor`.
        model_class (`type`, *optional*, defaults to `OccInternVLForConditionalGeneration`): Model class of the
            output; the converted weights are loaded into it strictly and saved with its `save_pretrained`.
        dtype (`str`, *optional*, defaults to `"auto"`): `auto` (the source's dtype), `float32`, `bfloat16`, `float16`.
        image_token_id (`int`, *optional*): Id of `<IMG_CONTEXT>` when the source has no tokenizer files.
        tokenizer (`str` or `os.PathLike`, *optional*): A fast tokenizer folder to use instead of the source's own.
        overwrite (`bool`, *optional*, defaults to `False`): Whether to write into a non-empty `output_dir`.

    Returns:
        [`ConversionSummary`]: What was written.
    """
    src, output_dir = Path(src), Path(output_dir)
    if not src.exists():
        raise CheckpointConversionError(f"{src}: no such checkpoint folder or archive.")
    if src.is_file() and not src.name.endswith(ARCHIVE_SUFFIXES):
        raise CheckpointConversionError(f"{src}: a file source must be a {', '.join(ARCHIVE_SUFFIXES)} archive.")
    if output_dir.exists() and not output_dir.is_dir():
        raise CheckpointConversionError(f"{output_dir}: exists and is not a folder; choose another output folder.")
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise CheckpointConversionError(f"{output_dir}: not empty; choose another folder or pass overwrite=True.")
    _torch_dtype(dtype, None)  # a bad --dtype is refused before any work
    destination = output_dir.resolve()
    # Extraction and the whole output are staged beside the destination, and vanish with the staging folder whatever
    # happens: a failed conversion leaves output_dir as it was.
    with staging_folder(destination) as work:
        folder = extract_archive(src, work / "source") if src.is_file() else src
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise CheckpointConversionError(f"{folder}: no config.json; is this a checkpoint folder?")
        source_config = read_json_object(config_path)
        model_type = source_config.get("model_type")
        staged = work / "output"
        if model_type == "internvl_chat":
            summary = _convert_original(
                folder, source_config, staged, work, config_class, model_class, dtype, image_token_id, tokenizer
            )
        elif model_type in ("internvl", config_class.model_type):
            summary = _convert_native(folder, source_config, staged, config_class, model_class, dtype)
        else:
            raise CheckpointConversionError(
                f"{config_path}: model_type {model_type!r} is neither an original InternVL checkpoint "
                f"('internvl_chat') nor a native one ('internvl' or {config_class.model_type!r})."
            )
        # overwrite=True: the weight files of an earlier conversion go (as save_pretrained removes stale shards), so
        # that no stale shard gets loaded; other files of the same names are replaced, the rest kept.
        earlier_weights = [p for p in destination.glob("*") if p.is_file() and _WEIGHT_FILE.fullmatch(p.name)]
        move_into_place(staged, destination, previous=earlier_weights)
    summary.output_dir = str(output_dir)
    return summary


def _torch_dtype(dtype: str, declared: str | None) -> torch.dtype:
    name = (declared or "float32") if dtype == "auto" else dtype
    if name not in ("float32", "bfloat16", "float16"):
        raise CheckpointConversionError(f"dtype {name!r} is not one of auto, float32, bfloat16, float16.")
    return getattr(torch, name)


def _load_strictly(model_class: type, folder: Path, config, dtype: torch.dtype):
    model, info = model_class.from_pretrained(folder, config=config, dtype=dtype, output_loading_info=True)
    problems = {name: info.get(name) for name in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems = {name: sorted(map(str, keys)) for name, keys in problems.items() if keys}
    if problems:
        raise CheckpointConversionError(
            f"{folder}: the weights do not fit {model_class.__name__} exactly: {json.dumps(problems)[:2000]}"
        )
    return model.eval()


def _convert_native(folder: Path, source_config: dict, output_dir: Path, config_class, model_class, dtype: str):
    from transformers import AutoProcessor

    config = config_class(**{key: value for key, value in source_config.items() if key != "model_type"})
    config.architectures = [model_class.__name__]
    declared = source_config.get("dtype") or source_config.get("torch_dtype")
    model = _load_strictly(model_class, folder, config, _torch_dtype(dtype, declared))
    model.save_pretrained(output_dir)
    has_processor = (folder / "processor_config.json").is_file() or (folder / "preprocessor_config.json").is_file()
    if has_processor:
        processor = AutoProcessor.from_pretrained(folder)
        if issubclass(config_class, OccInternVLConfig) and not isinstance(processor, OccInternVLProcessor):
            image_processor = processor.image_processor
            if isinstance(processor, InternVLProcessor):
                # InternVLProcessor tiles on every call whatever its image processor says; OccInternVLProcessor
                # follows the image processor, so the setting moves there to keep the source's inputs.
                image_processor.crop_to_patches = True
            processor = OccInternVLProcessor(
                image_processor=image_processor,
                tokenizer=processor.tokenizer,
                video_processor=processor.video_processor,
                image_seq_length=processor.image_seq_length,
                chat_template=add_stage_prompts(processor.chat_template, config.prompts, processor.image_token),
            )
        processor.save_pretrained(output_dir)
    return ConversionSummary(
        output_dir=str(output_dir),
        source_format="transformers",
        language_model=type(model.model.language_model).__name__.removesuffix("Model") + "ForCausalLM",
        num_parameters=model.num_parameters(),
        dtype=str(model.dtype).removeprefix("torch."),
        has_processor=has_processor,
        chat_template_source="the source processor's chat template" if has_processor else "none",
    )


def _convert_original(
    folder: Path,
    chat_config: dict,
    output_dir: Path,
    work: Path,
    config_class,
    model_class,
    dtype,
    image_token_id,
    tokenizer_path,
):
    from huggingface_hub import save_torch_state_dict

    source = str(folder / "config.json")
    check_chat_config(chat_config, source)
    declared = chat_config.get("torch_dtype") or chat_config["llm_config"].get("torch_dtype")
    torch_dtype = _torch_dtype(dtype, declared)
    tokenizer = load_tokenizer(Path(tokenizer_path) if tokenizer_path is not None else folder, work)
    template_name = chat_config.get("template")
    if tokenizer is not None:
        check_tokenizer_fits_source(tokenizer, folder, chat_config["llm_config"]["vocab_size"])
        if template_name is None:
            raise CheckpointConversionError(
                f"{source}: no 'template' (conversation template name) to build a chat from."
            )
        try:
            conversation_chat_template(template_name)  # an unknown name is refused before anything is converted
        except CheckpointConversionError as error:
            raise CheckpointConversionError(f"{source}: {error}") from None
    if image_token_id is None:
        if tokenizer is None:
            raise CheckpointConversionError(
                f"{folder}: no tokenizer.json, nor a tokenizer.model to convert, so the <IMG_CONTEXT> id is unknown; "
                "pass tokenizer=<fast tokenizer folder> (--tokenizer) or image_token_id (--image_token_id)."
            )
        image_token_id = tokenizer.context_image_token_id
    if not 0 <= image_token_id < chat_config["llm_config"]["vocab_size"]:
        raise CheckpointConversionError(
            f"{source}: image_token_id {image_token_id} is outside the language model's vocabulary "
            f"({chat_config['llm_config']['vocab_size']} tokens)."
        )
    config = convert_internvl_chat_config(chat_config, image_token_id, config_class=config_class, source=source)
    config.architectures = [model_class.__name__]
    state_dict = convert_internvl_chat_state_dict(load_checkpoint_state_dict(folder), chat_config, source=str(folder))
    staging = work / "staging"
    config.save_pretrained(staging)
    save_torch_state_dict(state_dict, staging)
    del state_dict
    model = _load_strictly(model_class, staging, config, torch_dtype)
    model.save_pretrained(output_dir)

    chat_template_source = "none (no tokenizer)"
    if tokenizer is not None:
        chat_template = conversation_chat_template(
            template_name, chat_config.get("system_message"), tokenizer.context_image_token
        )
        processor_class = InternVLProcessor
        if issubclass(config_class, OccInternVLConfig):
            processor_class = OccInternVLProcessor
            chat_template = add_stage_prompts(chat_template, config.prompts, tokenizer.context_image_token)
        tokenizer.chat_template = chat_template
        image_size = chat_config.get("force_image_size") or chat_config["vision_config"]["image_size"]
        if not chat_config.get("use_thumbnail", False) and chat_config.get("dynamic_image_size", False):
            warnings.warn(
                f"{source}: use_thumbnail is false, but transformers' GotOcr2ImageProcessor always adds a thumbnail "
                "to a multi-tile image; prompts will hold one more tile than the original model saw.",
                stacklevel=3,
            )
        if not chat_config.get("dynamic_image_size", False):
            warnings.warn(
                f"{source}: dynamic_image_size is false, but InternVLProcessor tiles images by default; call the "
                "processor with crop_to_patches=False to feed one tile per image as the original model did.",
                stacklevel=3,
            )
        processor = processor_class(
            image_processor=GotOcr2ImageProcessor(
                size={"height": image_size, "width": image_size},
                crop_to_patches=bool(chat_config.get("dynamic_image_size", False)),
                min_patches=chat_config.get("min_dynamic_patch", 1),
                max_patches=chat_config.get("max_dynamic_patch", 12),
                image_mean=IMAGENET_MEAN,
                image_std=IMAGENET_STD,
                do_convert_rgb=True,
            ),
            tokenizer=tokenizer,
            video_processor=InternVLVideoProcessor(
                size={"height": image_size, "width": image_size}, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD
            ),
            image_seq_length=config.image_seq_length,
            chat_template=chat_template,
        )
        processor.save_pretrained(output_dir)
        chat_template_source = f"conversation template {template_name!r} of {source}"
        # chat() stops on the template's separator token (e.g. <|im_end|>), not on the LLM's own eos.
        stop_token = conversation_stop_token(template_name)
        stop_id = tokenizer.convert_tokens_to_ids(stop_token)
        if stop_id is not None and stop_id != tokenizer.unk_token_id:
            generation_config = GenerationConfig.from_pretrained(output_dir)
            generation_config.eos_token_id = stop_id
            generation_config.save_pretrained(output_dir)
    return ConversionSummary(
        output_dir=str(output_dir),
        source_format="internvl_chat",
        language_model=chat_config["llm_config"]["architectures"][0],
        num_parameters=model.num_parameters(),
        dtype=str(model.dtype).removeprefix("torch."),
        has_processor=tokenizer is not None,
        chat_template_source=chat_template_source,
    )
