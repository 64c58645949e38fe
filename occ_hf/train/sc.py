"""The `sc` stage: self-correction of OccInternVL by online RL on two attempts at the class question (SCoRe-style),
on TRL's `GRPOTrainer` through the documented subclass [`~occ_hf.train.sc_trainer.SelfCorrectionTrainer`].

Rows: occ-obman-cot's `description` config in the `code` prompt style, reused as is: its conversation is the class
question on the RGB image ("What's the object in the hand?\\n<image>") answered "The object is {class}.", so the
prompt is the conversation without its last turn and the reference is that turn's text ([`self_correction_rows`]).
No new dataset config is needed. Rows whose last answer names no class (the `paper` style's description ends with
"Is the object in the hand long?") are refused with the fix. The seed ran this stage on ~1,000 samples: the size
recipes take `split: train[:1000]`.

The vision tower stays frozen unless `freeze_vision` is false; `use_peft` puts LoRA on the language model only.

```bash
occ-hf train sc --config recipes/internvl2-1b/sc.yaml          # from the MPO checkpoint
occ-hf train sc --config recipes/tiny/sc.yaml --use_peft       # CPU, seconds
python -m occ_hf.train.sc --config recipes/tiny/sc.yaml
```
"""

import argparse


__all__ = ["main", "make_parser", "self_correction_rows"]


def self_correction_rows(dataset):
    """
    `sc` rows from occ-obman-cot `description` rows: `prompt` (the conversation without its last turn) and `reference`
    (the last turn's text, e.g. `"The object is jar."`) in place of `messages`; `images` and the other columns stay.

    Args:
        dataset ([`~datasets.Dataset`] or [`~datasets.IterableDataset`]): rows with `messages`.

    Returns:
        The dataset with `prompt` and `reference` instead of `messages`.

    Raises:
        `ValueError`: when the rows have no `messages`, or a row's last turn is not an answer naming one of the 8
            classes (naming the row and the fix).
    """
    from occ_hf.cot.prompts import PROMPT_STYLES
    from occ_hf.obman import OCC_CLASSES

    columns = dataset.column_names
    if columns is not None and "messages" not in columns:
        raise ValueError(
            f"The sc stage builds its rows from `messages` (occ-obman-cot's `description` config); the dataset has "
            f"{sorted(columns)}."
        )

    def to_row(messages, row_id):
        last = messages[-1]
        reference = "".join(part["text"] for part in last["content"] if part["type"] == "text")
        if last["role"] != "assistant" or not any(
            style.parse_class(reference, OCC_CLASSES) for style in PROMPT_STYLES.values()
        ):
            raise ValueError(
                f"Row {row_id}: its last turn ({last['role']}: {reference!r}) is not an answer naming the class; the "
                "sc stage asks the class question twice. Use occ-obman-cot's `description` config with "
                "prompt_style=code."
            )
        return {"prompt": messages[:-1], "reference": reference}

    id_column = "id" if columns is None or "id" in columns else None
    if id_column:
        return dataset.map(to_row, input_columns=["messages", id_column], remove_columns=["messages"])
    return dataset.map(lambda messages: to_row(messages, "?"), input_columns=["messages"], remove_columns=["messages"])


def main(script_args, training_args, model_args, dataset_args=None):
    """
    Trains the `sc` stage and saves the model and processor to `training_args.output_dir`.

    Args:
        script_args ([`OccScriptArguments`]): the dataset and `freeze_vision`.
        training_args ([`OccSCConfig`]): TRL's GRPO arguments with the self-correction settings.
        model_args ([`~trl.ModelConfig`]): the model path and the PEFT/LoRA settings.
        dataset_args ([`~trl.DatasetMixtureConfig`], *optional*): a `datasets:` list, which wins over `dataset_name`.

    Returns:
        [`SelfCorrectionTrainer`]: the trainer, after training.
    """
    from trl import DatasetMixtureConfig

    from .loading import language_model_lora_config, load_model, load_stage_dataset
    from .model_card import CardInputs
    from .sc_trainer import SelfCorrectionTrainer
    from .stage import dataset_split, load_processor, resolve_resume, stage_trainer, train_and_save

    resolve_resume(training_args)  # before loading anything: a wrong value fails at once
    dataset = load_stage_dataset(script_args, dataset_args or DatasetMixtureConfig())
    train_rows = self_correction_rows(dataset_split(dataset, script_args.dataset_train_split))
    eval_rows = None
    if training_args.eval_strategy != "no":
        eval_rows = self_correction_rows(dataset_split(dataset, script_args.dataset_test_split))
    model = load_model(model_args, training_args, freeze_vision=script_args.freeze_vision)
    # load_model applied them; TRL would warn that it ignores them for a model passed in.
    training_args.model_init_kwargs = None
    processor = load_processor(model_args, training_args)
    peft_config = language_model_lora_config(model_args)
    trainer = stage_trainer(SelfCorrectionTrainer)(
        model=model,
        args=training_args,
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        processing_class=processor,
        peft_config=peft_config,
        model_card=CardInputs("sc", script_args, model_args, dataset_args),
    )
    return train_and_save(trainer, training_args, "sc", check_lora=peft_config is not None)


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    """
    The `sc` parser: [`StageParser`] (TRL's `TrlParser`, checking the recipe first) over
    `(OccScriptArguments, OccSCConfig, ModelConfig, DatasetMixtureConfig)`.

    Args:
        subparsers (`argparse._SubParsersAction`, *optional*): when given, `sc` is added to them.
        prog (`str`, *optional*): the program name of a standalone parser.
    """
    from trl import DatasetMixtureConfig, ModelConfig

    from .parser import StageParser
    from .sc_config import OccSCConfig
    from .script_arguments import OccScriptArguments

    dataclass_types = (OccScriptArguments, OccSCConfig, ModelConfig, DatasetMixtureConfig)
    if subparsers is not None:
        return subparsers.add_parser(
            "sc", help="Self-correction (two attempts, GRPO)", dataclass_types=dataclass_types
        )
    return StageParser(dataclass_types, prog=prog)


if __name__ == "__main__":
    main(*make_parser().parse_args_and_config())
