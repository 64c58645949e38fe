"""The `sft` stage: supervised fine-tuning of OccInternVL on `occ-obman-cot` rows with TRL's `SFTTrainer`.

SFT1 trains on the `description` config (the class question) from a base InternVL; SFT2 on the `reflection` config
(the class question, then the clarity question) from SFT1. The loss covers the answers only; the vision tower stays
frozen (the recipe's `model_init_kwargs: {freeze_vision: true}`; `--no_freeze_vision` trains it); `use_peft` puts
LoRA on the language model only. The same recipe also runs under TRL's own CLI (`trl sft --config ...`, with
occ-hf installed: its start-up hook registers the dataset and the model classes in the process TRL launches).

```bash
occ-hf train sft --config recipes/internvl2-1b/sft_reflection.yaml
occ-hf train sft --config recipes/tiny/sft_reflection.yaml --output_dir runs/sft2 --max_steps 20  # flags win
python -m occ_hf.train.sft --config recipes/tiny/sft_reflection.yaml
trl sft --config recipes/tiny/sft_reflection.yaml   # TRL's own script, same recipe
```
```python
from occ_hf.train.sft import main, make_parser

script_args, training_args, model_args, dataset_args = make_parser().parse_args_and_config(["--config", "x.yaml"])
trainer = main(script_args, training_args, model_args, dataset_args)
```
"""

import argparse


__all__ = ["main", "make_parser"]


def main(script_args, training_args, model_args, dataset_args=None):
    """
    Trains the `sft` stage and saves the model, processor and model card (`occ_hf/model_cards/model_card.md`) to
    `training_args.output_dir`; with `push_to_hub`, uploads that folder to `hub_model_id`.

    Args:
        script_args ([`OccScriptArguments`]): the dataset and `freeze_vision`.
        training_args ([`OccSFTConfig`]): TRL's SFT arguments.
        model_args ([`~trl.ModelConfig`]): the model path and the PEFT/LoRA settings.
        dataset_args ([`~trl.DatasetMixtureConfig`], *optional*): a `datasets:` list, which wins over `dataset_name`.

    Returns:
        [`~trl.SFTTrainer`]: the trainer, after training.
    """
    from transformers import AutoProcessor
    from trl import DatasetMixtureConfig, SFTTrainer

    from .loading import language_model_lora_config, load_model, load_stage_dataset
    from .model_card import CardInputs, with_model_card

    dataset = load_stage_dataset(script_args, dataset_args or DatasetMixtureConfig())
    model = load_model(model_args, training_args, freeze_vision=script_args.freeze_vision)
    # load_model applied them; TRL would warn that it ignores them for a model passed in.
    training_args.model_init_kwargs = None
    processor = AutoProcessor.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )
    train_dataset = _split(dataset, script_args.dataset_train_split)
    eval_dataset = _split(dataset, script_args.dataset_test_split) if training_args.eval_strategy != "no" else None
    data_collator = None
    if training_args.preprocess_images:
        train_dataset, eval_dataset, data_collator = _preprocess(train_dataset, eval_dataset, processor, training_args)
    trainer = with_model_card(SFTTrainer)(
        model=model,
        args=training_args,
        data_collator=data_collator,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=language_model_lora_config(model_args),
        model_card=CardInputs("sft", script_args, model_args, dataset_args),
    )
    return train_and_save(trainer, training_args, "sft", check_lora=model_args.use_peft)


def train_and_save(trainer, training_args, stage: str, check_lora: bool = False):
    """What every stage does with its trainer: checks where LoRA went, trains, saves (pushing with the model card when
    `push_to_hub`, else writing the card for a later `occ-hf push`); returns the trainer."""
    from .loading import check_lora_targets

    if check_lora:
        check_lora_targets(trainer.model)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    # With push_to_hub, save_model also writes the model card and uploads the folder (Trainer.push_to_hub).
    trainer.save_model(training_args.output_dir)
    if not training_args.push_to_hub:
        trainer.create_model_card()  # the card waits in output_dir for a later `occ-hf push`
    where = f" and pushed it to {trainer.hub_model_id}" if training_args.push_to_hub else ""
    trainer.accelerator.print(f"Saved the {stage} model to {training_args.output_dir}{where}.")
    return trainer


def _preprocess(train_dataset, eval_dataset, processor, training_args):
    """The rows processed once (`preprocess_images`), the collator for them, and the arguments TRL needs for them."""
    import torch

    from .preprocess import ProcessedChatCollator, preprocess_chat_rows

    train_dataset = preprocess_chat_rows(train_dataset, processor, training_args.max_length, desc="Processing train")
    if eval_dataset is not None:
        eval_dataset = preprocess_chat_rows(eval_dataset, processor, training_args.max_length, desc="Processing eval")
    data_collator = ProcessedChatCollator(
        pad_token_id=processor.tokenizer.pad_token_id,
        augment=training_args.augment_images,
        generator=torch.Generator().manual_seed(training_args.seed),
    )
    # The rows carry their labels (answers only) already: TRL must neither prepare them again nor look for the
    # assistant mask of a conversation, and the Trainer must keep `pixel_values`, which is no model-signature column
    # of a text dataset.
    training_args.assistant_only_loss = False
    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {**(training_args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    return train_dataset, eval_dataset, data_collator


def _split(dataset, name: str):
    if name not in dataset:
        raise ValueError(
            f"The dataset has no split {name!r} (it has {sorted(dataset)}): set dataset_train_split / "
            "dataset_test_split, or generate that split under the ObMan root."
        )
    return dataset[name]


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    """
    The `sft` parser: `TrlParser` over `(OccScriptArguments, OccSFTConfig, ModelConfig, DatasetMixtureConfig)`.

    Args:
        subparsers (`argparse._SubParsersAction`, *optional*): when given, `sft` is added to them.
        prog (`str`, *optional*): the program name of a standalone parser.
    """
    from trl import DatasetMixtureConfig, ModelConfig, TrlParser

    from .script_arguments import OccScriptArguments
    from .sft_config import OccSFTConfig

    dataclass_types = (OccScriptArguments, OccSFTConfig, ModelConfig, DatasetMixtureConfig)
    if subparsers is not None:
        return subparsers.add_parser("sft", help="Supervised fine-tuning: SFT1, SFT2", dataclass_types=dataclass_types)
    return TrlParser(dataclass_types, prog=prog)


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
