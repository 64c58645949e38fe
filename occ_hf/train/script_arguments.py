"""`OccScriptArguments`: what the `sft` and `mpo` scripts read besides TRL's training and model configs.

A recipe that TRL's own `trl sft|dpo --config` must also read holds TRL's keys only (TRL hands unknown keys to
`accelerate launch`, which refuses them): the ObMan root goes in the `datasets:` list and the frozen vision tower in
`model_init_kwargs`, both of which the two command lines read alike.

```yaml
datasets:
  - path: occ-obman-cot
    name: reflection
    data_dir: data/obman
    split: train
model_init_kwargs:
  freeze_vision: true
```

`dataset_data_dir` and `--no_freeze_vision` are for `occ-hf train` alone.
"""

from dataclasses import dataclass, field

from trl import ScriptArguments


__all__ = ["LANGUAGE_MODEL_LORA_TARGETS", "OccScriptArguments"]

# A regex, so PEFT matches it against full module names: only the LLM's attention and MLP projections. A list of
# names such as ["q_proj", "v_proj"] would match by suffix and also hit the vision tower's q/k/v. The names cover
# the LLMs of InternVL2 1B-8B as transformers holds them (Qwen2, InternLM2 converted to Llama layout, Phi-3's fused
# qkv_proj and gate_up_proj).
LANGUAGE_MODEL_LORA_TARGETS = (
    r".*language_model\.layers\.\d+\."
    r"(self_attn\.(q_proj|k_proj|v_proj|qkv_proj|o_proj)|mlp\.(gate_proj|up_proj|gate_up_proj|down_proj))"
)


@dataclass
class OccScriptArguments(ScriptArguments):
    r"""
    Script arguments of `occ-hf train sft|mpo`: TRL's [`~trl.ScriptArguments`] (`dataset_name`, `dataset_config`,
    `dataset_train_split`, ...) plus:

    Parameters:
        dataset_data_dir (`str`, *optional*):
            `data_dir` passed to `load_dataset(dataset_name, dataset_config, data_dir=...)`: for `occ-obman-cot`, the
            ObMan root. A recipe's `datasets:` list (TRL's form, which `trl sft` reads too) takes precedence. TRL's
            scripts do not know this key: recipes meant for both command lines use the `datasets:` list.
        freeze_vision (`bool`, *optional*, defaults to `True`):
            A command-line switch of `occ-hf train`: `--no_freeze_vision` trains the vision tower even where the
            recipe's `model_init_kwargs` has `freeze_vision: true`. Recipes set `model_init_kwargs.freeze_vision`
            instead (TRL's `trl sft|dpo` pass it to `from_pretrained`, see [`OccInternVLConfig`]); without it,
            `occ-hf train` freezes the vision tower, as the seed does (`--freeze_backbone True`), and TRL does not.
        card_base_model (`str`, *optional*):
            Hub id that the model card names as `base_model` when `model_name_or_path` is a local folder (by default
            the card names the Hub id trained from, or where a local occ-hf checkpoint was pushed, else none).
        card_eval_report (`str`, *optional*):
            An `occ-hf eval` report.json whose Description / Reflection / Decision go on the model card (by default
            `output_dir/eval/report.json` when it exists).
        card_license (`str`, *optional*):
            The model card's `license` (a Hub license id such as `mit`). By default the starting checkpoint's, when
            it is a local folder whose model card (`README.md`, or occ-hf's card record) names one; else none.
    """

    dataset_data_dir: str | None = field(
        default=None, metadata={"help": "data_dir of load_dataset (occ-obman-cot: the ObMan root)."}
    )
    freeze_vision: bool = field(
        default=True,
        metadata={"help": "--no_freeze_vision trains the vision tower even where model_init_kwargs freezes it."},
    )
    card_base_model: str | None = field(
        default=None, metadata={"help": "Hub id the model card names as base_model (for a local model_name_or_path)."}
    )
    card_eval_report: str | None = field(
        default=None, metadata={"help": "occ-hf eval report.json for the model card (default: output_dir/eval/)."}
    )
    card_license: str | None = field(
        default=None, metadata={"help": "The model card's license (default: the starting checkpoint's, if known)."}
    )
