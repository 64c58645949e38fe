"""What both training stages load: the dataset rows, the model (vision tower frozen) and a LoRA config that reaches
the language model only.

```python
from occ_hf.train.loading import language_model_lora_config, load_model, load_stage_dataset

dataset = load_stage_dataset(script_args, dataset_args)        # a DatasetDict
model = load_model(model_args, training_args)                   # vision tower frozen unless told otherwise
peft_config = language_model_lora_config(model_args)           # None unless model_args.use_peft
```
"""

import logging
import os


# `occ_hf` is imported with this module (its parent package), and that registers the occ-obman-cot builder with
# datasets and OccInternVL with the Auto classes, when those libraries are imported below.


__all__ = ["QUANTIZATION_SKIP_MODULES", "check_lora_targets", "language_model_lora_config", "load_model"]
__all__ += ["load_stage_dataset", "quantization_kwargs"]

logger = logging.getLogger(__name__)


def load_stage_dataset(script_args, dataset_args):
    """
    Loads the stage's rows: TRL's `datasets:` mixture when the recipe has one, else `dataset_name`.

    Args:
        script_args ([`OccScriptArguments`]):
            `dataset_name`, `dataset_config`, `dataset_data_dir`, `dataset_streaming`.
        dataset_args ([`~trl.DatasetMixtureConfig`]):
            The recipe's `datasets:` list (`path`, `name`, `data_dir`, `split`, ...).

    Returns:
        [`~datasets.DatasetDict`]: the splits.
    """
    from datasets import load_dataset
    from trl import get_dataset

    if dataset_args.datasets:
        if script_args.dataset_name:
            logger.warning("Both `datasets` and `dataset_name` are given: the `datasets` list is used.")
        return get_dataset(dataset_args)
    if not script_args.dataset_name:
        raise ValueError(
            "No dataset: give `dataset_name` (e.g. occ-obman-cot with dataset_config and dataset_data_dir) or a "
            "`datasets:` list in the recipe."
        )
    return load_dataset(
        script_args.dataset_name,
        name=script_args.dataset_config,
        data_dir=script_args.dataset_data_dir,
        streaming=script_args.dataset_streaming,
    )


def load_model(model_args, training_args, freeze_vision: bool = True):
    """
    Loads the model to train with `AutoModelForImageTextToText`, its vision tower frozen unless told otherwise.

    The freezing is OccInternVL's own load-time switch (`from_pretrained(path, freeze_vision=True)`, see
    [`OccInternVLConfig`]), so that a recipe's `model_init_kwargs: {freeze_vision: ...}` means the same here and under
    TRL's `trl sft|dpo`, which pass `model_init_kwargs` to `from_pretrained` and nothing else. What `occ-hf train` adds
    is decided here and nowhere else: the vision tower is frozen unless `model_init_kwargs` has `freeze_vision: false`
    or `freeze_vision` is `False` (`--no_freeze_vision`).

    Args:
        model_args ([`~trl.ModelConfig`]):
            `model_name_or_path`, `model_revision`, `dtype`, `attn_implementation`.
        training_args ([`OccSFTConfig`] or [`OccMPOConfig`]):
            `trust_remote_code` and `model_init_kwargs` (these win over `model_args`, as in TRL's scripts). Without a
            `freeze_vision` key in `model_init_kwargs` the vision tower is frozen (the seed's setting).
        freeze_vision (`bool`, *optional*, defaults to `True`):
            `False` trains the vision tower even where `model_init_kwargs` freezes it (`occ-hf train
            --no_freeze_vision`).

    Returns:
        [`~transformers.PreTrainedModel`]: the model.

    Raises:
        `ValueError`: when the vision tower is to be frozen and the checkpoint is not an OccInternVL one (only
        OccInternVL knows `freeze_vision`).
    """
    from transformers import AutoConfig, AutoModelForImageTextToText

    if not model_args.model_name_or_path:
        raise ValueError("No model: give `model_name_or_path` (a checkpoint folder or a Hub id).")
    init_kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
    }
    init_kwargs |= training_args.model_init_kwargs or {}
    init_kwargs["freeze_vision"] = bool(init_kwargs.get("freeze_vision", True)) and freeze_vision
    init_kwargs |= quantization_kwargs(model_args)
    path = model_args.model_name_or_path
    if not os.path.isdir(path) and (os.path.isabs(path) or path.startswith(".") or os.path.exists(path)):
        what = "is a file, not a checkpoint folder" if os.path.exists(path) else "not found"
        raise FileNotFoundError(f"{path}: model {what}; give a checkpoint folder or a Hub id (model_name_or_path).")
    try:
        config = AutoConfig.from_pretrained(
            path, revision=init_kwargs["revision"], trust_remote_code=init_kwargs["trust_remote_code"]
        )
        if not hasattr(config, "freeze_vision") and init_kwargs.pop("freeze_vision"):
            raise ValueError(
                f"{path}: model_type {config.model_type!r}, and freeze_vision is an OccInternVL option: convert the "
                "checkpoint with `occ-hf convert-checkpoint`, or load it with occ-hf imported (or trust_remote_code) "
                "so that the OccInternVL classes build it."
            )
        return AutoModelForImageTextToText.from_pretrained(path, **init_kwargs)
    except OSError as error:
        if os.path.isdir(path):
            raise
        # Neither a local folder nor a Hub repo that could be reached: transformers' text talks of connections only.
        raise OSError(
            f"{path}: no such checkpoint folder (relative to {os.getcwd()}), and as a Hub id it could not be loaded "
            f"({str(error).splitlines()[0]}); check model_name_or_path."
        ) from None


QUANTIZATION_SKIP_MODULES = ["vision_tower", "multi_modal_projector", "lm_head"]
"""Modules that `--load_in_4bit` / `--load_in_8bit` leave unquantized: the vision tower (frozen, and small beside the
language model), the projector and the head."""


def quantization_kwargs(model_args) -> dict:
    """
    `from_pretrained` keywords for `--load_in_4bit` / `--load_in_8bit` (QLoRA): TRL's `BitsAndBytesConfig` with the
    language model's layers quantized and `QUANTIZATION_SKIP_MODULES` not, placed on this process's device. Empty
    without either flag.

    Raises:
        `ValueError`: a quantized model without `--use_peft` (its weights cannot train, only adapters on them).
        `ImportError`: `bitsandbytes` is not installed (`pip install 'occ-hf[qlora]'`).
    """
    import importlib.util

    four, eight = getattr(model_args, "load_in_4bit", False), getattr(model_args, "load_in_8bit", False)
    if not (four or eight):
        return {}
    flag = "--load_in_4bit" if four else "--load_in_8bit"  # TRL's ModelConfig refuses both
    if not model_args.use_peft:
        raise ValueError(
            f"{flag} quantizes the language model, whose weights then cannot train: add --use_peft (QLoRA trains "
            "LoRA adapters on the quantized weights), or drop the flag."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ImportError(f"{flag} needs bitsandbytes, which is not installed: pip install 'occ-hf[qlora]'.")
    from accelerate import PartialState
    from trl import get_quantization_config

    config = get_quantization_config(model_args)
    config.llm_int8_skip_modules = list(QUANTIZATION_SKIP_MODULES)
    # Quantized weights are placed when loaded: each process loads onto its own device.
    return {"quantization_config": config, "device_map": {"": PartialState().local_process_index}}


def language_model_lora_config(model_args):
    """
    TRL's LoRA config for `model_args`, aimed at the language model only.

    Without `lora_target_modules`, the targets are `LANGUAGE_MODEL_LORA_TARGETS` (a regex on `language_model`);
    targets given in the recipe are kept, and [`check_lora_targets`] refuses them once applied if they reach past
    the language model.

    Args:
        model_args ([`~trl.ModelConfig`]): `use_peft`, `lora_r`, `lora_alpha`, `lora_target_modules`, ...

    Returns:
        [`~peft.LoraConfig`] or `None`: `None` unless `model_args.use_peft`.
    """
    from trl import get_peft_config

    from .script_arguments import LANGUAGE_MODEL_LORA_TARGETS

    peft_config = get_peft_config(model_args)
    if peft_config is not None and not model_args.lora_target_modules:
        peft_config.target_modules = LANGUAGE_MODEL_LORA_TARGETS
    return peft_config


def check_lora_targets(model) -> list[str]:
    """
    Checks that every LoRA layer of a PEFT-wrapped model sits in its language model.

    Args:
        model ([`~peft.PeftModel`]): the model after PEFT wrapped it.

    Returns:
        `list[str]`: the names of the modules that carry LoRA weights.

    Raises:
        `ValueError`: when a LoRA layer sits outside `language_model` (e.g. on the vision tower's q/k/v), naming them.
    """
    from peft.tuners.lora import LoraLayer

    adapted = [name for name, module in model.named_modules() if isinstance(module, LoraLayer)]
    outside = [name for name in adapted if ".language_model." not in name]
    if outside:
        raise ValueError(
            f"LoRA reaches past the language model: {outside[:4]}{' ...' if len(outside) > 4 else ''}. Give "
            "`lora_target_modules` as a regex that matches language_model modules only, as the recipes do (or "
            "drop it: the default is that regex)."
        )
    if not adapted:
        raise ValueError("LoRA matched no module: check `lora_target_modules` against the model's module names.")
    return adapted
