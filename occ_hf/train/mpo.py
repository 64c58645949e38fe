"""The `mpo` stage: Mixed Preference Optimization of OccInternVL on `occ-obman-cot`'s `preference` rows with TRL's
`DPOTrainer` (0.8 sigmoid + 0.2 bco_pair + 1.0 sft, `OccMPOConfig`).

The reference model is the starting checkpoint, frozen. Without PEFT it is loaded a second time and handed to the
trainer (`DPOTrainer` would otherwise reload it from `name_or_path`, which a model built in memory lacks); with PEFT
there is none: the trainer takes the reference from the base model with the adapters switched off.

```bash
occ-hf train mpo --config recipes/internvl2-1b/mpo.yaml
occ-hf train mpo --config recipes/tiny/mpo.yaml --use_peft   # LoRA on the language model only
trl dpo --config recipes/tiny/mpo.yaml                        # TRL's own script: it reloads the reference itself
```
"""

import argparse


__all__ = ["main", "make_parser"]


def main(script_args, training_args, model_args, dataset_args=None):
    """
    Trains the `mpo` stage and saves the model, processor and model card (`occ_hf/model_cards/model_card.md`) to
    `training_args.output_dir`; with `push_to_hub`, uploads that folder to `hub_model_id`.

    Args:
        script_args ([`OccScriptArguments`]): the dataset and `freeze_vision`.
        training_args ([`OccMPOConfig`]): TRL's DPO arguments with the MPO losses.
        model_args ([`~trl.ModelConfig`]): the model path and the PEFT/LoRA settings.
        dataset_args ([`~trl.DatasetMixtureConfig`], *optional*): a `datasets:` list, which wins over `dataset_name`.

    Returns:
        [`~trl.DPOTrainer`]: the trainer, after training.
    """
    from trl import DatasetMixtureConfig, DPOTrainer

    from .loading import language_model_lora_config, load_model, load_stage_dataset
    from .model_card import CardInputs
    from .stage import dataset_split, load_processor, resolve_resume, stage_trainer, train_and_save

    resolve_resume(training_args)  # before loading anything: a wrong value fails at once
    dataset = load_stage_dataset(script_args, dataset_args or DatasetMixtureConfig())
    model = load_model(model_args, training_args, freeze_vision=script_args.freeze_vision)
    peft_config = language_model_lora_config(model_args)
    ref_model = None
    if peft_config is None:
        # Frozen whole (eval, no grad): which of its parts `freeze_vision` would have frozen does not matter.
        ref_model = load_model(model_args, training_args).eval().requires_grad_(False)
    # load_model applied them; TRL would warn that it ignores them for a model passed in.
    training_args.model_init_kwargs = None
    processor = load_processor(model_args, training_args)
    eval_dataset = None
    if training_args.eval_strategy != "no":
        eval_dataset = dataset_split(dataset, script_args.dataset_test_split)
    trainer = stage_trainer(DPOTrainer)(
        model=model,
        ref_model=ref_model,
        args=training_args,
        train_dataset=dataset_split(dataset, script_args.dataset_train_split),
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=peft_config,
        model_card=CardInputs("mpo", script_args, model_args, dataset_args),
    )
    return train_and_save(trainer, training_args, "mpo", check_lora=peft_config is not None)


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    """
    The `mpo` parser: [`StageParser`] (TRL's `TrlParser`, checking the recipe first) over
    `(OccScriptArguments, OccMPOConfig, ModelConfig, DatasetMixtureConfig)`.

    Args:
        subparsers (`argparse._SubParsersAction`, *optional*): when given, `mpo` is added to them.
        prog (`str`, *optional*): the program name of a standalone parser.
    """
    from trl import DatasetMixtureConfig, ModelConfig

    from .mpo_config import OccMPOConfig
    from .parser import StageParser
    from .script_arguments import OccScriptArguments

    dataclass_types = (OccScriptArguments, OccMPOConfig, ModelConfig, DatasetMixtureConfig)
    if subparsers is not None:
        return subparsers.add_parser("mpo", help="Mixed Preference Optimization", dataclass_types=dataclass_types)
    return StageParser(dataclass_types, prog=prog)


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
