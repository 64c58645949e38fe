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
    from trl import DatasetMixtureConfig, SFTTrainer

    from .loading import language_model_lora_config, load_model, load_stage_dataset
    from .model_card import CardInputs
    from .stage import dataset_split, load_processor, resolve_resume, stage_trainer, train_and_save

    resolve_resume(training_args)  # before loading anything: a wrong value fails at once
    dataset = load_stage_dataset(script_args, dataset_args or DatasetMixtureConfig())
    model = load_model(model_args, training_args, freeze_vision=script_args.freeze_vision)
    # load_model applied them; TRL would warn that it ignores them for a model passed in.
    training_args.model_init_kwargs = None
    processor = load_processor(model_args, training_args)
    train_dataset = dataset_split(dataset, script_args.dataset_train_split)
    eval_dataset = None
    if training_args.eval_strategy != "no":
        eval_dataset = dataset_split(dataset, script_args.dataset_test_split)
    data_collator = None
    if training_args.preprocess_images and not training_args.assistant_only_loss:
        raise ValueError(
            "preprocess_images makes answers-only labels (assistant_only_loss: true); with assistant_only_loss: false "
            "leave preprocess_images off (TRL's collator then labels every token)."
        )
    # The processed rows carry answers-only labels, so they stand in for TRL's collator only where that is the loss.
    preprocessing = training_args.preprocess_text or training_args.preprocess_images
    preprocessed = training_args.assistant_only_loss and preprocessing
    if preprocessed:
        train_dataset, eval_dataset, data_collator = _preprocess(train_dataset, eval_dataset, processor, training_args)
    trainer = stage_trainer(SFTTrainer)(
        model=model,
        args=training_args,
        data_collator=data_collator,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=language_model_lora_config(model_args),
        model_card=CardInputs("sft", script_args, model_args, dataset_args),
    )
    if preprocessed:
        # TRL checks the flag only while building its own collator (off for processed rows); the card and the saved
        # arguments say what the run does: the loss covers the answers only.
        training_args.assistant_only_loss = True
    return train_and_save(trainer, training_args, "sft", check_lora=model_args.use_peft)


def _preprocess(train_dataset, eval_dataset, processor, training_args):
    """The rows processed once (`preprocess_text`, `preprocess_images`), the collator for them, and the arguments TRL
    needs for them."""
    import torch

    from .preprocess import ProcessedChatCollator, preprocess_chat_rows

    settings = {
        "max_length": training_args.max_length,
        "keep_pixels": training_args.preprocess_images,
        "num_proc": training_args.dataloader_num_workers or None,
    }
    train_dataset = preprocess_chat_rows(train_dataset, processor, desc="Processing train", **settings)
    if eval_dataset is not None:
        eval_dataset = preprocess_chat_rows(eval_dataset, processor, desc="Processing eval", **settings)
    data_collator = ProcessedChatCollator(
        pad_token_id=processor.tokenizer.pad_token_id,
        image_processor=processor.image_processor,
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


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    """
    The `sft` parser: [`StageParser`] (TRL's `TrlParser`, checking the recipe first) over
    `(OccScriptArguments, OccSFTConfig, ModelConfig, DatasetMixtureConfig)`.

    Args:
        subparsers (`argparse._SubParsersAction`, *optional*): when given, `sft` is added to them.
        prog (`str`, *optional*): the program name of a standalone parser.
    """
    from trl import DatasetMixtureConfig, ModelConfig

    from .parser import StageParser
    from .script_arguments import OccScriptArguments
    from .sft_config import OccSFTConfig

    dataclass_types = (OccScriptArguments, OccSFTConfig, ModelConfig, DatasetMixtureConfig)
    if subparsers is not None:
        return subparsers.add_parser("sft", help="Supervised fine-tuning: SFT1, SFT2", dataclass_types=dataclass_types)
    return StageParser(dataclass_types, prog=prog)


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
