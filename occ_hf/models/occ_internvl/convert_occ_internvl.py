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

How the original layout maps (checked against OpenGVLab/InternVL `internvl_chat/internvl/model/`:
`internvl_chat/modeling_intern_vit.py`, `internvl_chat/modeling_internvl_chat.py`, `internlm2/modeling_internlm2.py`,
`phi3/`, `conversation.py`; and transformers' `models/internvl/convert_internvl_weights_to_hf.py` and
`modeling_internvl.py`):

- InternViT `vision_model.*` -> `model.vision_tower.*`: `class_embedding` -> `cls_token`, `patch_embedding` ->
  `patch_embeddings.projection`, `position_embedding` -> `position_embeddings`, `layers.{i}` -> `layer.{i}`,
  `ls1`/`ls2` (layer scale) -> `lambda_1`/`lambda_2`, `norm1`/`norm2` -> `layernorm_before`/`layernorm_after`,
  `attn.proj` -> `attention.projection_layer`, `attn.q_norm`/`k_norm` kept, and the fused `attn.qkv` (rows ordered
  q, k, v, since InternViT reshapes it to `[B, N, 3, heads, head_dim]`) split into `q_proj`/`k_proj`/`v_proj`.
- `mlp1.{0,1,3}` (LayerNorm, Linear, GELU, Linear) -> `model.multi_modal_projector.{layer_norm,linear_1,linear_2}`.
- Qwen2 / Llama / Phi-3 language models are native in transformers: `language_model.model.*` ->
  `model.language_model.*` and `language_model.lm_head` -> `lm_head` (Phi-3 keeps its fused `qkv_proj` and
  `gate_up_proj`, which transformers' Phi-3 has too; its `su` rope scaling is transformers' `longrope`).
- InternLM2 / InternLM2.5 become Llama: `tok_embeddings` -> `embed_tokens`, `output` -> `lm_head`,
  `attention_norm`/`ffn_norm` -> `input_layernorm`/`post_attention_layernorm`, `attention.wo` -> `self_attn.o_proj`,
  `feed_forward.w1/w3/w2` -> `mlp.gate_proj/up_proj/down_proj`, and the fused `attention.wqkv`, whose rows are
  grouped by key-value head (for each kv head: its `heads // kv_heads` query heads, then its key, then its value),
  split into `q_proj`/`k_proj`/`v_proj`.
- Chat format: an original checkpoint is prompted through its conversation template (config `template`, e.g.
  `Hermes-2`, `internlm2-chat`, `phi3-chat`), which is what its `chat()` and its training scripts use; the converted
  processor gets a chat template that renders that conversation byte for byte (with the source's system message;
  images where `chat()` puts them, see [`conversation_chat_template`]), and the generation config stops on the
  template's separator token, as `chat()` does. A native checkpoint keeps its own chat template; both get the stage
  parts on top, which leave every other message's rendering alone.

Things that cannot be represented natively are refused with an error naming the field: pixel shuffle `ps_version`
`v1` (a transposed shuffle), InternViT q/k norms with an epsilon other than transformers' fixed 1e-6, Phi-3 `yarn`
rope scaling, LoRA-wrapped (unmerged) weights. Rotary scaling matches the original for every sequence shorter than
the original context; InternLM2.5's `dynamic` NTK uses the same formula beyond it, but the original keeps the grown
table cached while transformers recomputes it per call.

Tokenizer and processor of an original checkpoint: a tokenizer with a `tokenizer.json` (Qwen2, Phi-3) is loaded as
it is; InternLM2's (`tokenizer.model` + remote code `InternLM2Tokenizer`) is converted into a fast tokenizer that
gives the same ids, without running the remote code ([`convert_internlm2_tokenizer`], needs `protobuf`: the
`convert` extra). `tokenizer=` replaces the source's tokenizer with any fast tokenizer of the same vocabulary. Either
way it is checked against the ids the source's `tokenizer_config.json` records for its added tokens
(`<IMG_CONTEXT>`, `<|im_end|>`, ...). The image processor is
`GotOcr2ImageProcessor` at the source's tile size with ImageNet statistics and its `min/max_dynamic_patch`; note
that `InternVLProcessor` tiles by default and always adds a thumbnail to a multi-tile image, which is what InternVL2
checkpoints (`dynamic_image_size` and `use_thumbnail` true) expect; a warning says when the source differs.

Memory: the source weights are read once, renamed (only the split projections are copied), staged as safetensors
beside `output_dir`, then loaded strictly into `model_class` by `from_pretrained` and written by its
`save_pretrained`, so a registered subclass writes its `auto_map` and modeling files as usual.

Nothing is written into `output_dir` until the conversion is complete: the config and the template name are checked
first, the whole output is written into a temporary folder beside `output_dir` (the same file system) and renamed
into place at the end; a failure removes it and leaves `output_dir` as it was, so a rerun starts afresh.

Archives are checked member by member before anything is written: absolute names, `..` components, links and device
files are refused, members that claim more than the free space are refused, and extraction then runs with
`tarfile`'s `data` filter; a truncated archive is named as such. `.bin` weights are read with
`torch.load(weights_only=True)` (memory-mapped unless in torch's legacy pre-zip format). A damaged `config.json`,
index or weights file is named in a [`CheckpointConversionError`].
"""

import json
import os
import pickle
import re
import shutil
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import torch
from transformers import (
    AutoTokenizer,
    GenerationConfig,
    GotOcr2ImageProcessor,
    InternVLConfig,
    InternVLProcessor,
    InternVLVideoProcessor,
    InternVLVisionConfig,
    LlamaConfig,
    Phi3Config,
    Qwen2Config,
)

from .configuration_occ_internvl import OccInternVLConfig
from .modeling_occ_internvl import OccInternVLForConditionalGeneration
from .processing_occ_internvl import IMAGE_TOKENS, OccInternVLProcessor, add_stage_prompts


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
]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# Config keys of the original sub-configs that describe the remote-code runtime, not the network.
_RUNTIME_KEYS = {
    "_name_or_path", "_attn_implementation", "_attn_implementation_autoset", "attn_implementation", "auto_map",
    "architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "use_bfloat16", "use_flash_attn",
    "tie_word_embeddings",
}  # fmt: skip
# Generic attributes that transformers 4.x wrote into every config.json (generation defaults, task heads, TF flags);
# InternVL2's llm_config carries all of them. They say nothing about the network, and transformers 5 configs would
# keep them as stray attributes, so they are left out.
_LEGACY_GENERIC_KEYS = {
    "add_cross_attention", "bad_words_ids", "begin_suppress_tokens", "chunk_size_feed_forward",
    "cross_attention_hidden_size", "decoder_start_token_id", "diversity_penalty", "do_sample", "early_stopping",
    "encoder_no_repeat_ngram_size", "exponential_decay_length_penalty", "finetuning_task", "forced_bos_token_id",
    "forced_eos_token_id", "id2label", "is_decoder", "is_encoder_decoder", "label2id", "length_penalty", "max_length",
    "min_length", "no_repeat_ngram_size", "num_beam_groups", "num_beams", "num_return_sequences", "output_attentions",
    "output_hidden_states", "output_scores", "prefix", "problem_type", "pruned_heads", "remove_invalid_values",
    "repetition_penalty", "return_dict", "return_dict_in_generate", "sep_token_id", "suppress_tokens",
    "task_specific_params", "temperature", "tf_legacy_loss", "tie_encoder_decoder", "tokenizer_class", "top_k",
    "top_p", "torchscript", "typical_p",
}  # fmt: skip


class CheckpointConversionError(ValueError):
    """A source checkpoint cannot be converted; the message names the file or field and what to do."""


class UnsafeArchiveError(CheckpointConversionError):
    """An archive holds a member that could write outside the target folder; nothing of it was extracted."""


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


# ----------------------------------------------------------------------------------------------------------------
# Archives and weight files


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """
    Extracts a checkpoint archive after checking every member, and returns the folder holding its `config.json`.

    Args:
        archive (`str` or `os.PathLike`): A `.tar.gz`, `.tgz` or `.tar` file.
        dest (`str` or `os.PathLike`): Folder to extract into (created if needed).

    Returns:
        `Path`: The extracted checkpoint folder (`dest`, or the one folder inside it that has a `config.json`).

    Raises:
        [`UnsafeArchiveError`]: A member has an absolute name, a `..` component, is a link or a device; raised before
            anything is written.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        tar = tarfile.open(archive, "r:*")  # noqa: SIM115 (closed by the `with` below; open errors get a clear message)
    except (tarfile.TarError, OSError) as error:
        raise CheckpointConversionError(f"{archive}: not a readable tar archive ({error}).") from error
    # A truncated download (gzip stream or tar data ending early) surfaces as any of these, in listing or extracting.
    damaged = (tarfile.TarError, EOFError, zlib.error)
    with tar:
        try:
            members = tar.getmembers()
        except damaged as error:
            raise CheckpointConversionError(
                f"{archive}: damaged or truncated archive ({type(error).__name__}: {error}); download it again."
            ) from error
        for member in members:
            _check_archive_member(archive, member)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        for member in members:
            # A second guard after the name checks: the resolved target must stay inside dest.
            if not (root / member.name).resolve().is_relative_to(root):
                raise UnsafeArchiveError(f"{archive}: member {member.name!r} resolves outside the target folder.")
        # Member sizes are only claims: checked against the free space first, so that a damaged header claiming
        # 20 GB is refused before it fills the disk.
        needed, free = sum(member.size for member in members), shutil.disk_usage(dest).free
        if needed > free:
            raise CheckpointConversionError(
                f"{archive}: its members claim {needed / 1e9:.1f} GB but {dest} has {free / 1e9:.1f} GB free; free "
                "some space, or check the archive (a damaged one can claim any size)."
            )
        try:
            tar.extractall(dest, filter="data")
        except damaged as error:
            raise CheckpointConversionError(
                f"{archive}: damaged or truncated archive ({type(error).__name__}: {error}); download it again."
            ) from error
    return _find_checkpoint_folder(dest, archive)


def _check_archive_member(archive: Path, member: tarfile.TarInfo) -> None:
    name = member.name
    path = PurePosixPath(name)
    fix = "re-pack the checkpoint with plain files and relative paths only"
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name) or name.startswith("\\"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract ({fix}).")
    if ".." in path.parts or ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} climbs out with '..'; refusing to extract ({fix}).")
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} is a {'symbolic' if member.issym() else 'hard'} link to "
            f"{member.linkname!r}; refusing to extract ({fix})."
        )
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"{archive}: member {name!r} is not a regular file or folder; refusing to extract.")


def _find_checkpoint_folder(root: Path, archive: Path) -> Path:
    if (root / "config.json").is_file():
        return root
    candidates = sorted(path.parent for path in root.glob("*/config.json"))
    if len(candidates) != 1:
        found = ", ".join(str(path.relative_to(root)) for path in candidates) or "none"
        raise CheckpointConversionError(
            f"{archive}: expected one checkpoint folder with a config.json at its top or one level down, "
            f"found {found}."
        )
    return candidates[0]


def load_checkpoint_state_dict(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """
    Reads every weight of a checkpoint folder: `model.safetensors`, `pytorch_model.bin`, or their sharded forms with
    an `*.index.json`. `.bin` files are read with `torch.load(weights_only=True)`, so they cannot run code.

    Args:
        folder (`str` or `os.PathLike`): The checkpoint folder.

    Returns:
        `dict[str, torch.Tensor]`: All tensors, by their names in the files.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    indexes = [folder / name for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json")]
    index = next((path for path in indexes if path.is_file()), None)
    if index is not None:
        weight_map = _read_json_object(index).get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(name, str) for name in weight_map.values()):
            raise CheckpointConversionError(
                f"{index}: no 'weight_map' object (tensor name -> shard file name); re-create the index, or remove "
                "it for a single weights file."
            )
        files = [folder / name for name in sorted(set(weight_map.values()))]
    else:
        files = [folder / name for name in ("model.safetensors", "pytorch_model.bin") if (folder / name).is_file()][:1]
    if not files:
        raise CheckpointConversionError(
            f"{folder}: no weights found (expected model.safetensors, pytorch_model.bin or a sharded index of them)."
        )
    state_dict = {}
    for path in files:
        if not path.is_file():
            raise CheckpointConversionError(f"{path}: listed in {index.name} but missing.")
        if path.suffix == ".safetensors":
            try:
                state_dict.update(load_file(path))
            except (SafetensorError, OSError) as error:
                raise CheckpointConversionError(
                    f"{path}: not a readable safetensors file ({error}); it may be truncated or damaged: download it "
                    "again."
                ) from error
            continue
        # torch.save's zip format can be memory-mapped; the legacy format (before torch 1.6) is read into memory.
        mmap = zipfile.is_zipfile(path)
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as error:
            # weights_only refused the file before running anything. torch's message runs over many lines, and
            # only its "WeightsUnpickler error:" line says what the file holds.
            match = re.search(r"WeightsUnpickler error: ([^.\n]*)", str(error))
            reason = match.group(1) if match else f"{type(error).__name__}: {str(error).strip()[:200]}"
            raise CheckpointConversionError(
                f"{path}: holds more than plain tensors, which torch.load(weights_only=True) refuses (nothing in it "
                f"was run: {reason}); convert it to safetensors where it was made."
            ) from error
        except Exception as error:
            raise CheckpointConversionError(
                f"{path}: not a readable torch weights file ({type(error).__name__}: {error}); it may be truncated "
                "or damaged: download it again, or convert it to safetensors where it was made."
            ) from error
        if not isinstance(loaded, dict) or not all(isinstance(value, torch.Tensor) for value in loaded.values()):
            raise CheckpointConversionError(
                f"{path}: holds a {type(loaded).__name__}, not a dict of tensors (a state dict); save "
                "model.state_dict() instead."
            )
        state_dict.update(loaded)
    return state_dict


def _read_json_object(path: Path) -> dict:
    """
    The JSON object in `path` (a `config.json`, an index, a tokenizer config).

    Raises:
        [`CheckpointConversionError`]: The file is not UTF-8 JSON, or holds something other than an object; the
            message names the file.
    """
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointConversionError(f"{path}: not valid JSON ({error}); fix or re-download it.") from error
    if not isinstance(value, dict):
        raise CheckpointConversionError(
            f"{path}: holds a JSON {type(value).__name__}, not an object; is this the checkpoint's file?"
        )
    return value


# ----------------------------------------------------------------------------------------------------------------
# Original InternVLChatModel -> native InternVL: config


def convert_internvl_chat_config(
    chat_config: dict, image_token_id: int, config_class: type = InternVLConfig, source: str = "config.json"
):
    """
    Maps an original `InternVLChatConfig` (as read from its `config.json`) to a native InternVL config.

    Args:
        chat_config (`dict`): The original config, with `vision_config` and `llm_config`.
        image_token_id (`int`): Id of the `<IMG_CONTEXT>` token in the tokenizer.
        config_class (`type`, *optional*, defaults to `InternVLConfig`): The config class to build (a subclass works).
        source (`str`, *optional*, defaults to `"config.json"`): Name of the config, for error messages.

    Returns:
        An instance of `config_class`.
    """
    if chat_config.get("ps_version", "v1") != "v2":
        raise CheckpointConversionError(
            f"{source}: ps_version {chat_config.get('ps_version', 'v1')!r} (InternVL 1.x's transposed pixel shuffle) "
            "has no native equivalent; only ps_version 'v2' checkpoints (InternVL 1.5 and later) can be converted."
        )
    if chat_config.get("use_backbone_lora") or chat_config.get("use_llm_lora"):
        raise CheckpointConversionError(
            f"{source}: the checkpoint has unmerged LoRA adapters (use_backbone_lora/use_llm_lora); merge them "
            "into the weights with InternVL's tools first."
        )
    vision = _vision_config(chat_config["vision_config"], source)
    text = _text_config(chat_config["llm_config"], source)
    image_size = chat_config.get("force_image_size") or chat_config["vision_config"]["image_size"]
    patch_size = chat_config["vision_config"]["patch_size"]
    downsample_ratio = chat_config.get("downsample_ratio", 0.5)
    return config_class(
        vision_config=vision,
        text_config=text,
        image_token_id=image_token_id,
        image_seq_length=int((image_size // patch_size) ** 2 * downsample_ratio**2),
        downsample_ratio=downsample_ratio,
        projector_hidden_act="gelu",  # mlp1's nn.GELU() is the exact (erf) GELU
        vision_feature_layer=chat_config.get("select_layer", -1),
        vision_feature_select_strategy="default",  # extract_feature drops the CLS token
        tie_word_embeddings=False,  # InternVLChatConfig forces untied heads
        architectures=[config_class.__name__.replace("Config", "ForConditionalGeneration")],
    )


def _vision_config(vision: dict, source: str) -> InternVLVisionConfig:
    qk_norm = vision.get("qk_normalization", True)
    eps = vision.get("layer_norm_eps", 1e-6)
    if qk_norm and eps != 1e-6:
        raise CheckpointConversionError(
            f"{source}: vision_config has qk_normalization with layer_norm_eps={eps}, but transformers' InternVL "
            "vision q/k norms use a fixed epsilon of 1e-6, so the outputs would differ."
        )
    return InternVLVisionConfig(
        hidden_size=vision["hidden_size"],
        intermediate_size=vision["intermediate_size"],
        num_hidden_layers=vision["num_hidden_layers"],
        num_attention_heads=vision["num_attention_heads"],
        num_channels=vision.get("num_channels", 3),
        image_size=vision["image_size"],  # the size the position embeddings were trained at
        patch_size=vision["patch_size"],
        hidden_act=vision.get("hidden_act", "gelu"),
        norm_type=vision.get("norm_type", "rms_norm"),
        layer_norm_eps=eps,
        use_qk_norm=qk_norm,
        attention_bias=vision.get("qkv_bias", False),
        attention_dropout=vision.get("attention_dropout", 0.0),
        projection_dropout=vision.get("dropout", 0.0),
        hidden_dropout_prob=vision.get("dropout", 0.0),
        initializer_range=vision.get("initializer_range", 0.02),
        layer_scale_init_value=vision.get("initializer_factor", 0.1),
        use_absolute_position_embeddings=True,
        use_mean_pooling=True,  # no final norm: InternViT has none
    )


def _language_model_architecture(llm: dict, source: str) -> str:
    architectures = llm.get("architectures") or [""]
    if architectures[0] not in _TEXT_CONFIG_BUILDERS:
        raise CheckpointConversionError(
            f"{source}: llm_config architecture {architectures[0]!r} is not supported; expected one of "
            f"{sorted(_TEXT_CONFIG_BUILDERS)}."
        )
    return architectures[0]


def _text_config(llm: dict, source: str):
    return _TEXT_CONFIG_BUILDERS[_language_model_architecture(llm, source)](llm, source)


def _native_kwargs(llm: dict) -> dict:
    dropped = _RUNTIME_KEYS | _LEGACY_GENERIC_KEYS
    return {key: value for key, value in llm.items() if key not in dropped} | {"tie_word_embeddings": False}


def _qwen2_config(llm: dict, source: str) -> Qwen2Config:
    return Qwen2Config(**_native_kwargs(llm))


def _llama_config(llm: dict, source: str) -> LlamaConfig:
    return LlamaConfig(**_native_kwargs(llm))


def _phi3_config(llm: dict, source: str) -> Phi3Config:
    kwargs = _native_kwargs(llm)
    rope_scaling = kwargs.pop("rope_scaling", None)
    rope_theta = kwargs.pop("rope_theta", 10000.0)
    rope = {"rope_type": "default", "rope_theta": rope_theta}
    if rope_scaling is not None:
        kind = rope_scaling.get("type", rope_scaling.get("rope_type"))
        if kind not in ("su", "longrope"):
            raise CheckpointConversionError(
                f"{source}: Phi-3 rope_scaling type {kind!r} is not supported (only 'su'/'longrope', which is "
                "transformers' 'longrope')."
            )
        rope = {
            "rope_type": "longrope",
            "rope_theta": rope_theta,
            "short_factor": list(rope_scaling["short_factor"]),
            "long_factor": list(rope_scaling["long_factor"]),
            "original_max_position_embeddings": llm.get("original_max_position_embeddings", 4096),
        }
    return Phi3Config(**kwargs, rope_parameters=rope)


def _internlm2_config(llm: dict, source: str) -> LlamaConfig:
    hidden_size, num_heads = llm["hidden_size"], llm["num_attention_heads"]
    rope_scaling = llm.get("rope_scaling")
    rope = {"rope_type": "default", "rope_theta": llm.get("rope_theta", 10000.0)}
    if rope_scaling is not None:
        kind = rope_scaling.get("type", rope_scaling.get("rope_type"))
        if kind not in ("dynamic", "linear"):
            raise CheckpointConversionError(f"{source}: InternLM2 rope_scaling type {kind!r} is not supported.")
        # Same formulas as InternLM2's Linear/DynamicNTK rotary classes, with the original context as reference.
        rope |= {"rope_type": kind, "factor": rope_scaling["factor"]}
    return LlamaConfig(
        vocab_size=llm["vocab_size"],
        hidden_size=hidden_size,
        intermediate_size=llm["intermediate_size"],
        num_hidden_layers=llm["num_hidden_layers"],
        num_attention_heads=num_heads,
        num_key_value_heads=llm.get("num_key_value_heads") or num_heads,
        head_dim=hidden_size // num_heads,
        hidden_act=llm.get("hidden_act", "silu"),
        max_position_embeddings=llm.get("max_position_embeddings", 2048),
        initializer_range=llm.get("initializer_range", 0.02),
        rms_norm_eps=llm.get("rms_norm_eps", 1e-6),
        use_cache=True,
        pad_token_id=llm.get("pad_token_id", 0),
        bos_token_id=llm.get("bos_token_id", 1),
        eos_token_id=llm.get("eos_token_id", 2),
        tie_word_embeddings=False,
        attention_bias=llm.get("bias", True),  # InternLM2's `bias` covers wqkv and wo, as Llama's attention_bias
        mlp_bias=False,
        rope_parameters=rope,
    )


_TEXT_CONFIG_BUILDERS = {
    "Qwen2ForCausalLM": _qwen2_config,
    "LlamaForCausalLM": _llama_config,
    "Phi3ForCausalLM": _phi3_config,
    "InternLM2ForCausalLM": _internlm2_config,
}


# ----------------------------------------------------------------------------------------------------------------
# Original InternVLChatModel -> native InternVL: weights

_VISION_LAYER_RENAMES = {
    "ls1": "lambda_1",
    "ls2": "lambda_2",
    "norm1.weight": "layernorm_before.weight",
    "norm1.bias": "layernorm_before.bias",
    "norm2.weight": "layernorm_after.weight",
    "norm2.bias": "layernorm_after.bias",
    "attn.proj.weight": "attention.projection_layer.weight",
    "attn.proj.bias": "attention.projection_layer.bias",
    "attn.q_norm.weight": "attention.q_norm.weight",
    "attn.k_norm.weight": "attention.k_norm.weight",
    "mlp.fc1.weight": "mlp.fc1.weight",
    "mlp.fc1.bias": "mlp.fc1.bias",
    "mlp.fc2.weight": "mlp.fc2.weight",
    "mlp.fc2.bias": "mlp.fc2.bias",
}
_VISION_EMBEDDING_RENAMES = {
    "embeddings.class_embedding": "embeddings.cls_token",
    "embeddings.position_embedding": "embeddings.position_embeddings",
    "embeddings.patch_embedding.weight": "embeddings.patch_embeddings.projection.weight",
    "embeddings.patch_embedding.bias": "embeddings.patch_embeddings.projection.bias",
}
_PROJECTOR_RENAMES = {"mlp1.0": "layer_norm", "mlp1.1": "linear_1", "mlp1.3": "linear_2"}
_INTERNLM2_LAYER_RENAMES = {
    "attention.wo": "self_attn.o_proj",
    "feed_forward.w1": "mlp.gate_proj",
    "feed_forward.w3": "mlp.up_proj",
    "feed_forward.w2": "mlp.down_proj",
    "attention_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_LAYER_KEY = re.compile(r"^(?P<prefix>.*?layers)\.(?P<index>\d+)\.(?P<rest>.+)$")


def convert_internvl_chat_state_dict(
    state_dict: dict[str, torch.Tensor], chat_config: dict, source: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """
    Renames (and splits the fused projections of) an original `InternVLChatModel` state dict into the parameter names
    of transformers' `InternVLForConditionalGeneration`.

    Args:
        state_dict (`dict[str, torch.Tensor]`): The original weights (`vision_model.*`, `mlp1.*`, `language_model.*`).
        chat_config (`dict`): The original config (for the head counts of the fused projections).
        source (`str`, *optional*, defaults to `"checkpoint"`): Name of the source, for error messages.

    Returns:
        `dict[str, torch.Tensor]`: The converted weights; every source tensor is used exactly once.

    Raises:
        [`CheckpointConversionError`]: A key has no known place in the native model (nothing is dropped silently).
    """
    architecture = _language_model_architecture(chat_config["llm_config"], source)
    converted, unknown = {}, []
    for key, tensor in state_dict.items():
        if key.startswith("vision_model."):
            target = _convert_vision_key(key.removeprefix("vision_model."), tensor)
        elif key.startswith("mlp1."):
            module, _, name = key.rpartition(".")
            target = (
                {f"model.multi_modal_projector.{_PROJECTOR_RENAMES[module]}.{name}": tensor}
                if (module in _PROJECTOR_RENAMES)
                else None
            )
        elif key.startswith("language_model."):
            rest = key.removeprefix("language_model.")
            if architecture == "InternLM2ForCausalLM":
                target = _convert_internlm2_key(rest, tensor, chat_config["llm_config"])
            elif rest == "lm_head.weight":
                target = {"lm_head.weight": tensor}
            elif rest.startswith("model."):
                target = {"model.language_model." + rest.removeprefix("model."): tensor}
            else:
                target = None
        else:
            target = None
        if target is None:
            unknown.append(key)
        else:
            converted.update(target)
    if unknown:
        shown = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
        raise CheckpointConversionError(
            f"{source}: {len(unknown)} weight(s) have no place in the native InternVL model: {shown}. Is this an "
            "InternVLChatModel checkpoint with merged weights?"
        )
    return converted


def _convert_vision_key(rest: str, tensor: torch.Tensor) -> dict[str, torch.Tensor] | None:
    prefix = "model.vision_tower."
    if rest in _VISION_EMBEDDING_RENAMES:
        return {prefix + _VISION_EMBEDDING_RENAMES[rest]: tensor}
    match = _LAYER_KEY.match(rest)
    if match is None or match["prefix"] != "encoder.layers":
        return None
    layer = f"{prefix}encoder.layer.{match['index']}."
    name = match["rest"]
    if name in ("attn.qkv.weight", "attn.qkv.bias"):
        query, key, value = tensor.chunk(3, dim=0)  # rows ordered [q | k | v], each hidden_size long
        kind = name.rpartition(".")[2]
        return {
            f"{layer}attention.{proj}.{kind}": part.clone()  # own storage: safetensors refuses partial views
            for proj, part in (("q_proj", query), ("k_proj", key), ("v_proj", value))
        }
    if name in _VISION_LAYER_RENAMES:
        return {layer + _VISION_LAYER_RENAMES[name]: tensor}
    return None


def _convert_internlm2_key(rest: str, tensor: torch.Tensor, llm: dict) -> dict[str, torch.Tensor] | None:
    prefix = "model.language_model."
    if rest == "output.weight":
        return {"lm_head.weight": tensor}
    if rest == "model.tok_embeddings.weight":
        return {prefix + "embed_tokens.weight": tensor}
    if rest == "model.norm.weight":
        return {prefix + "norm.weight": tensor}
    match = _LAYER_KEY.match(rest)
    if match is None or match["prefix"] != "model.layers":
        return None
    layer = f"{prefix}layers.{match['index']}."
    module, _, kind = match["rest"].rpartition(".")
    if module == "attention.wqkv":
        query, key, value = split_internlm2_wqkv(tensor, llm)
        return {
            f"{layer}self_attn.q_proj.{kind}": query,
            f"{layer}self_attn.k_proj.{kind}": key,
            f"{layer}self_attn.v_proj.{kind}": value,
        }
    if module in _INTERNLM2_LAYER_RENAMES:
        return {f"{layer}{_INTERNLM2_LAYER_RENAMES[module]}.{kind}": tensor}
    return None


def split_internlm2_wqkv(wqkv: torch.Tensor, llm: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """
    Splits InternLM2's fused `wqkv` weight (or bias) into query, key and value.

    Its rows come in `num_key_value_heads` groups, one per kv head; a group holds that head's
    `num_attention_heads // num_key_value_heads` query heads, then its key head, then its value head, each `head_dim`
    rows (InternLM2Attention.forward: `rearrange(qkv, "b q (h gs d) -> b q h gs d", gs=2 + groups)`).

    Args:
        wqkv (`torch.Tensor`): `[(heads + 2 * kv_heads) * head_dim, hidden]` weight or `[(heads + 2 * kv_heads) *
            head_dim]` bias.
        llm (`dict`): The original `llm_config`.

    Returns:
        `tuple[torch.Tensor, torch.Tensor, torch.Tensor]`: q `[heads * head_dim, ...]`, k and v `[kv_heads * head_dim,
        ...]`, query heads in the order the original attention uses them (kv head major).
    """
    num_heads = llm["num_attention_heads"]
    num_kv_heads = llm.get("num_key_value_heads") or num_heads
    head_dim = llm["hidden_size"] // num_heads
    groups = num_heads // num_kv_heads
    trailing = wqkv.shape[1:]
    grouped = wqkv.reshape(num_kv_heads, groups + 2, head_dim, *trailing)  # [kv, groups + 2, d, (hidden)]
    query = grouped[:, :groups].reshape(num_heads * head_dim, *trailing)
    key = grouped[:, groups].reshape(num_kv_heads * head_dim, *trailing)
    value = grouped[:, groups + 1].reshape(num_kv_heads * head_dim, *trailing)
    return query.clone(), key.clone(), value.clone()


# ----------------------------------------------------------------------------------------------------------------
# Chat template of an original checkpoint: its conversation template (internvl/conversation.py, MPT separator style)

# name: (system template, user role, assistant role, separator, default system message)
_INTERNVL2_SYSTEM = (
    "你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。"
)
_CONVERSATION_TEMPLATES = {
    "Hermes-2": (
        "<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n", "<|im_end|>", _INTERNVL2_SYSTEM
    ),
    "internlm2-chat": (
        "<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n", "<|im_end|>", _INTERNVL2_SYSTEM
    ),
    "phi3-chat": ("<|system|>\n", "<|user|>\n", "<|assistant|>\n", "<|end|>", _INTERNVL2_SYSTEM),
    "internvl2_5": (
        "<|im_start|>system\n",
        "<|im_start|>user\n",
        "<|im_start|>assistant\n",
        "<|im_end|>\n",
        "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。",
    ),
}  # fmt: skip


def conversation_chat_template(
    name: str, system_message: str | None = None, image_token: str = "<IMG_CONTEXT>"
) -> str:
    """
    A Jinja chat template that renders exactly what an original InternVL conversation template produces.

    The original `get_prompt()` (MPT style) writes `system + sep`, then `role + message + sep` per turn, and the bare
    assistant role to prompt a reply. A `system` message in `messages` replaces the default system message, as
    setting `template.system_message` does. Structured content renders text parts verbatim and image parts as
    `image_token` (the processor expands it to `<img><IMG_CONTEXT>...</img>`, as `chat()` expands `<image>`): in
    place when text comes before it, as `chat()` puts an image at the `<image>` marker of its question (the seed's
    `"What's the object in the hand?\\n<image>"`); followed by `"\\n"` when it leads the message, as `chat()` prepends
    `"<image>\\n"` to a question without a marker (unless the text after it starts with a newline itself, as in
    `"<image>\\nIs the object round?"`). So a question split at its markers into parts renders as `chat()` renders it.

    Args:
        name (`str`): The config's `template`, e.g. `Hermes-2`, `internlm2-chat`, `phi3-chat`, `internvl2_5`.
        system_message (`str`, *optional*): The config's `system_message`; defaults to the template's own.
        image_token (`str`, *optional*, defaults to `"<IMG_CONTEXT>"`): The processor's image placeholder.

    Returns:
        `str`: The Jinja template.
    """
    if name not in _CONVERSATION_TEMPLATES:
        raise CheckpointConversionError(
            f"conversation template {name!r} is not known; expected one of {sorted(_CONVERSATION_TEMPLATES)}."
        )
    system_prefix, user, assistant, sep, default_system = _CONVERSATION_TEMPLATES[name]
    system = default_system if system_message is None else system_message
    literal = json.dumps  # a JSON string is a valid Jinja string literal
    return (
        "{%- set ns = namespace(system=" + literal(system) + ") -%}"
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set ns.system = messages[0]['content'] if messages[0]['content'] is string "
        "else messages[0]['content'] | map(attribute='text') | join('') -%}"
        "{%- endif -%}"
        "{{- " + literal(system_prefix) + " + ns.system + " + literal(sep) + " -}}"
        "{%- for message in messages if message['role'] != 'system' -%}"
        "{{- " + literal(user) + " if message['role'] == 'user' else " + literal(assistant) + " -}}"
        "{%- if message['content'] is string -%}{{- message['content'] -}}"
        "{%- else -%}{%- set seen = namespace(text=false) -%}{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'image' -%}{{- " + literal(image_token) + " -}}"
        "{%- set next = loop.nextitem if loop.nextitem is defined else {'type': 'none'} -%}"
        "{%- if not seen.text and not (next['type'] == 'text' and next['text'].startswith('\\n')) -%}"
        "{{- '\\n' -}}{%- endif -%}"
        "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- set seen.text = true -%}{%- endif -%}"
        "{%- endfor -%}{%- endif -%}"
        "{{- " + literal(sep) + " -}}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- " + literal(assistant) + " -}}{%- endif -%}"
    )


# ----------------------------------------------------------------------------------------------------------------
# The conversion


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
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Extraction and the whole output are staged beside the destination (same file system, so the final move is a
    # rename), and vanish with this folder whatever happens: a failed conversion leaves output_dir as it was.
    with tempfile.TemporaryDirectory(prefix=f".{destination.name}.convert-", dir=destination.parent) as work:
        work = Path(work)
        folder = extract_archive(src, work / "source") if src.is_file() else src
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise CheckpointConversionError(f"{folder}: no config.json; is this a checkpoint folder?")
        source_config = _read_json_object(config_path)
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
        _move_into_place(staged, destination)
    summary.output_dir = str(output_dir)
    return summary


def _move_into_place(staged: Path, destination: Path) -> None:
    """Moves the staged output to `destination`: one rename, or entry by entry into a non-empty folder."""
    if not destination.exists() or not any(destination.iterdir()):
        if destination.exists():
            destination.rmdir()  # empty: a folder cannot be renamed over an existing one everywhere
        os.replace(staged, destination)
        return
    # overwrite=True: entries of the same name are replaced, others kept; weight files of an earlier conversion that
    # this one does not have are removed (as save_pretrained removes stale shards), so no stale shard gets loaded.
    for stale in destination.iterdir():
        if stale.is_file() and _WEIGHT_FILE.fullmatch(stale.name) and not (staged / stale.name).exists():
            stale.unlink()
    for entry in staged.iterdir():
        target = destination / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)


_WEIGHT_FILE = re.compile(r"(model|pytorch_model)(-\d+-of-\d+)?\.(safetensors|bin)(\.index\.json)?")


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
    _check_chat_config(chat_config, source)
    declared = chat_config.get("torch_dtype") or chat_config["llm_config"].get("torch_dtype")
    torch_dtype = _torch_dtype(dtype, declared)
    tokenizer = _load_tokenizer(Path(tokenizer_path) if tokenizer_path is not None else folder, work)
    template_name = chat_config.get("template")
    if tokenizer is not None:
        _check_tokenizer_fits_source(tokenizer, folder, chat_config["llm_config"]["vocab_size"])
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
        stop_token = _CONVERSATION_TEMPLATES[template_name][3].strip()
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


def _check_chat_config(chat_config: dict, source: str) -> None:
    """The fields of an original config that the conversion reads are there and of the right type."""
    for name in ("vision_config", "llm_config"):
        if not isinstance(chat_config.get(name), dict):
            raise CheckpointConversionError(
                f"{source}: no {name!r} object, which every InternVLChatModel config.json has; is this an original "
                "InternVL checkpoint?"
            )
    sizes = {
        "vision_config": ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "image_size", "patch_size"),
        "llm_config": ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"),
    }  # fmt: skip
    for section, names in sizes.items():
        for name in names:
            value = chat_config[section].get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CheckpointConversionError(
                    f"{source}: {section}.{name} is {value!r}, expected a positive integer."
                )
    force_image_size = chat_config.get("force_image_size")
    if force_image_size is not None and (isinstance(force_image_size, bool) or not isinstance(force_image_size, int)):
        raise CheckpointConversionError(
            f"{source}: force_image_size is {force_image_size!r}, expected a positive integer or null."
        )
    template = chat_config.get("template")
    if template is not None and not isinstance(template, str):
        raise CheckpointConversionError(f"{source}: template is {template!r}, expected a conversation template name.")


def _check_tokenizer_fits_source(tokenizer, folder: Path, vocab_size: int) -> None:
    """A tokenizer used for `folder` must give the source's added tokens (<IMG_CONTEXT>, <|im_end|>, ...) their ids."""
    expected = {}
    config_path, added_path = folder / "tokenizer_config.json", folder / "added_tokens.json"
    if config_path.is_file():
        decoder = _read_json_object(config_path).get("added_tokens_decoder", {})
        expected |= {entry["content"]: int(token_id) for token_id, entry in decoder.items()}
    if added_path.is_file():
        expected |= _read_json_object(added_path)
    wrong = {token: (token_id, tokenizer.convert_tokens_to_ids(token)) for token, token_id in expected.items()}
    wrong = {token: ids for token, ids in wrong.items() if ids[0] != ids[1]}
    if wrong:
        shown = ", ".join(f"{token!r} is {ids[1]} not {ids[0]}" for token, ids in list(wrong.items())[:6])
        raise CheckpointConversionError(
            f"{folder}: the tokenizer does not match the checkpoint's own tokens ({shown}); use a tokenizer of the "
            "same vocabulary."
        )
    # InternVLProcessor needs a video token, which InternVL2's vocabularies lack (their videos are frames of images):
    # declared here, it lies past the embeddings, and a converted InternVL2 checkpoint takes no video input.
    beyond = sorted(
        token
        for token, token_id in tokenizer.get_vocab().items()
        if token_id >= vocab_size and token != IMAGE_TOKENS["video_token"]
    )
    if beyond:
        raise CheckpointConversionError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens but the language model only {vocab_size} embeddings "
            f"(beyond them: {beyond[:6]})."
        )


def _load_tokenizer(folder: Path, work: Path):
    """The folder's tokenizer with InternVL's image tokens declared, or `None` when it has no loadable tokenizer."""
    files = [path for path in folder.iterdir() if path.is_file() and path.name in _TOKENIZER_FILES]
    if not any(path.name in ("tokenizer.json", "tokenizer_config.json") for path in files):
        return None
    # Loaded from a copy without config.json, which AutoTokenizer would otherwise read as a (foreign) model config.
    copy = work / "tokenizer"
    copy.mkdir()
    if not (folder / "tokenizer.json").is_file() and "auto_map" in _read_json_object(folder / "tokenizer_config.json"):
        # InternLM2's tokenizer (tokenizer.model + remote code): converted to a fast one, so no remote code runs.
        if not (folder / "tokenizer.model").is_file():
            return None
        convert_internlm2_tokenizer(folder).save_pretrained(copy)
    else:
        for path in files:
            shutil.copyfile(path, copy / path.name)
    try:
        plain = AutoTokenizer.from_pretrained(copy)
        missing = [
            token for key, token in IMAGE_TOKENS.items() if key != "video_token" and token not in plain.get_vocab()
        ]
        if missing:
            raise CheckpointConversionError(f"{folder}: the tokenizer lacks InternVL's image tokens {missing}.")
        return AutoTokenizer.from_pretrained(copy, extra_special_tokens=IMAGE_TOKENS)
    except (OSError, ValueError, TypeError) as error:
        if isinstance(error, CheckpointConversionError):
            raise
        raise CheckpointConversionError(f"{folder}: the tokenizer does not load ({error}).") from error


def convert_internlm2_tokenizer(folder: str | os.PathLike):
    """
    Converts InternLM2's sentencepiece tokenizer (`tokenizer.model` + `tokenizer_config.json`, remote code
    `InternLM2Tokenizer`) into a fast tokenizer that encodes the same ids, without running the remote code.

    The slow tokenizer splits the text at its added tokens and runs `SentencePieceProcessor.encode` on each piece
    between them (so the model's `add_dummy_prefix`, when set, applies to every piece), then puts `<s>` in front
    (`add_bos_token`, true by default; `add_eos_token` appends `</s>`). The fast tokenizer is built from the model's
    proto by transformers' `SpmConverter.build_tokenizer_from_spm_proto` in its `legacy` mode, which follows the same
    normalizer settings (character map, whitespace, dummy prefix on every piece), BPE merges ranked by piece score,
    and byte fallback. The added tokens of `tokenizer_config.json` keep their ids: one inside the sentencepiece
    vocabulary replaces that piece (as the slow tokenizer's `added_tokens_decoder` overrides it), one past it is
    appended, and the ids must then run on without a gap.

    Needs `protobuf` (to read the model file; `pip install "occ-hf[convert]"`), not `sentencepiece`.

    Args:
        folder (`str` or `os.PathLike`): The folder with `tokenizer.model` and `tokenizer_config.json`.

    Returns:
        `PreTrainedTokenizerFast`: The fast tokenizer, with the slow one's `<s>`, `</s>`, `<unk>` and pad tokens.
    """
    from tokenizers import AddedToken, processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import SpmConverter, import_protobuf
    from transformers.utils import is_protobuf_available

    folder = Path(folder)
    model_path, config_path = folder / "tokenizer.model", folder / "tokenizer_config.json"
    if not is_protobuf_available():
        raise CheckpointConversionError(
            f"{model_path}: converting InternLM2's sentencepiece tokenizer needs protobuf; pip install "
            '"occ-hf[convert]" (or pass --tokenizer a fast tokenizer of the same vocabulary).'
        )
    tokenizer_config = _read_json_object(config_path) if config_path.is_file() else {}
    proto = import_protobuf().ModelProto()
    try:
        proto.ParseFromString(model_path.read_bytes())
    except Exception as error:  # protobuf's DecodeError is not importable without protobuf
        raise CheckpointConversionError(f"{model_path}: not a sentencepiece model ({error}).") from error
    if proto.trainer_spec.model_type != 2:  # sentencepiece's ModelType enum: 1 unigram, 2 BPE
        raise CheckpointConversionError(
            f"{model_path}: a sentencepiece model of type {proto.trainer_spec.model_type}, not BPE (2) as "
            "InternLM2's; pass --tokenizer a fast tokenizer of the same vocabulary."
        )

    added = {int(token_id): entry for token_id, entry in tokenizer_config.get("added_tokens_decoder", {}).items()}
    vocab = {piece.piece: token_id for token_id, piece in enumerate(proto.pieces)}
    for token_id, entry in added.items():
        if token_id < len(proto.pieces) and entry["content"] != proto.pieces[token_id].piece:
            del vocab[proto.pieces[token_id].piece]
            vocab[entry["content"]] = token_id
    backend = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=True)
    backend.add_special_tokens(
        [
            AddedToken(
                entry["content"],
                single_word=entry.get("single_word", False),
                lstrip=entry.get("lstrip", False),
                rstrip=entry.get("rstrip", False),
                normalized=entry.get("normalized", False),
                special=entry.get("special", True),
            )
            for _, entry in sorted(added.items())
        ]
    )
    for token_id, entry in sorted(added.items()):
        if backend.token_to_id(entry["content"]) != token_id:
            raise CheckpointConversionError(
                f"{config_path}: added token {entry['content']!r} has id {token_id}, but the ids after the "
                f"sentencepiece vocabulary ({len(proto.pieces)} pieces) must run on without a gap; pass --tokenizer "
                "a fast tokenizer of the same vocabulary."
            )

    def token(name: str, default: str) -> str:
        value = tokenizer_config.get(name, default)
        return value["content"] if isinstance(value, dict) else value

    bos, eos = token("bos_token", "<s>"), token("eos_token", "</s>")
    add_bos, add_eos = tokenizer_config.get("add_bos_token", True), tokenizer_config.get("add_eos_token", False)
    single = [f"{bos}:0"] * add_bos + ["$A:0"] + [f"{eos}:0"] * add_eos
    pair = single + ["$B:1"] + [f"{eos}:1"] * add_eos  # the slow tokenizer puts no <s> before the second text
    backend.post_processor = processors.TemplateProcessing(
        single=" ".join(single),
        pair=" ".join(pair),
        special_tokens=[(bos, backend.token_to_id(bos)), (eos, backend.token_to_id(eos))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=eos,
        unk_token=token("unk_token", "<unk>"),
        pad_token=token("pad_token", "</s>"),
        padding_side=tokenizer_config.get("padding_side", "left"),
        clean_up_tokenization_spaces=tokenizer_config.get("clean_up_tokenization_spaces", False),
    )


_TOKENIZER_FILES = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt", "tokenizer.model",
}  # fmt: skip
