"""What the `sft`, `mpo` and `sc` scripts share: the processor, a split of the rows, the trainer class (TRL's, with
occ-hf's model card and a resume that checks the checkpoint's weights), and training then saving.

```python
from occ_hf.train.stage import dataset_split, load_processor, stage_trainer, train_and_save

trainer = stage_trainer(SFTTrainer)(model=model, args=training_args, ..., model_card=CardInputs("sft", script_args))
train_and_save(trainer, training_args, "sft")   # resume_from_checkpoint, save_model, the card
```
"""

import json
import logging
import os
import re
from pathlib import Path

from .model_card import OccModelCardMixin


__all__ = ["CheckpointMismatchError", "ResumeCheckMixin", "dataset_split", "load_processor", "stage_trainer"]
__all__ += ["check_checkpoint_keys", "final_save_dtype", "last_checkpoint", "resolve_resume", "train_and_save"]

logger = logging.getLogger(__name__)

_SHOWN_KEYS = 4
_TRAINER_STATE = "trainer_state.json"


class CheckpointMismatchError(ValueError):
    """A checkpoint to resume from whose weights do not fit the model being trained."""


class ResumeCheckMixin:
    r"""
    Refuses to resume from a checkpoint whose weight names do not match the model's, before anything is loaded.

    `Trainer` resumes a full model by loading the checkpoint's weights file into the live model with a non-strict
    `load_state_dict`, so a checkpoint written with other key names (transformers renames keys on save by default;
    another model class; a LoRA run's folder given to a full run) resumes with part of the model at its starting
    weights and only a logged warning: the run then continues from the wrong weights (transformers issue #43701).
    OccInternVL saves its live key names (see its `save_pretrained`), and this check makes any other case an error
    that names the checkpoint and the keys. PEFT adapters, DeepSpeed and sharded FSDP states load through their own
    paths, which this leaves alone; an FSDP2 checkpoint with a full state dict (`recipes/accelerate_configs/fsdp.yaml`)
    also holds `model.safetensors`, checked against the sharded model, whose names FSDP2 keeps.
    """

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None):
        check_checkpoint_keys(resume_from_checkpoint, model if model is not None else self.model)
        return super()._load_from_checkpoint(resume_from_checkpoint, model)


def check_checkpoint_keys(checkpoint: str | os.PathLike, model) -> None:
    """
    Raises [`CheckpointMismatchError`] when the full-model weights file in `checkpoint` (`model.safetensors` or its
    index) names other tensors than `model`'s state dict. Tied weights that the file leaves out are fine; a folder
    without such a file (an adapter, a sharded FSDP state) is left to `Trainer`.
    """
    from safetensors import safe_open
    from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

    if hasattr(model, "peft_config"):
        return
    index_path = os.path.join(checkpoint, SAFE_WEIGHTS_INDEX_NAME)
    weights_path = os.path.join(checkpoint, SAFE_WEIGHTS_NAME)
    if os.path.isfile(index_path):
        with open(index_path, encoding="utf-8") as handle:
            saved = set(json.load(handle).get("weight_map", {}))
    elif os.path.isfile(weights_path):
        with safe_open(weights_path, framework="pt") as handle:
            saved = set(handle.keys())
    else:
        return
    state = model.state_dict()
    # A tied weight (lm_head sharing the embeddings) is saved once; it is missing from the file, not from the model.
    saved_storage = {state[key].data_ptr() for key in saved if key in state}
    missing = sorted(key for key in state.keys() - saved if state[key].data_ptr() not in saved_storage)
    unexpected = sorted(saved - state.keys())
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"{checkpoint}: its weights do not match the model being trained ({_keys('missing', missing)}"
            f"{'; ' if missing and unexpected else ''}{_keys('unexpected', unexpected)}), so resuming would continue "
            "from the wrong weights. It was saved with other key names (an occ-hf before 0.1's checkpoint layout, or "
            "another model class): resume from a checkpoint this version wrote, or start a new run from it with "
            "model_name_or_path and no --resume_from_checkpoint."
        )


def resolve_resume(training_args) -> str | None:
    """
    Sets `training_args.resume_from_checkpoint` to the checkpoint folder the run resumes from, or `None` for a fresh
    run, and returns it. A stage script calls it first, before loading anything, so that a wrong value fails at once.

    Args:
        training_args ([`~transformers.TrainingArguments`]):
            `output_dir`, and `resume_from_checkpoint`: a checkpoint folder; `"last"` (or `True`, `"true"`) for the
            newest complete checkpoint in `output_dir` ([`last_checkpoint`]); `None` or `False` to start afresh.

    Raises:
        `ValueError`: a fresh run into an `output_dir` that already holds checkpoints (they would be mixed with the
        new run's, and `save_total_limit` would rotate them as one run); `"last"` with no complete checkpoint there.
        `FileNotFoundError`: a checkpoint folder that does not exist or was not finished (no `trainer_state.json`).
    """
    training_args.resume_from_checkpoint = _resolved(training_args.resume_from_checkpoint, training_args.output_dir)
    return training_args.resume_from_checkpoint


def _resolved(resume_from_checkpoint, output_dir) -> str | None:
    if resume_from_checkpoint in (None, False) or str(resume_from_checkpoint).lower() in ("", "false", "none"):
        found = _checkpoint_folders(output_dir)
        if found:
            raise ValueError(
                f"{output_dir} already holds checkpoints of an earlier run ({', '.join(p.name for p in found[-3:])}): "
                "continue it with --resume_from_checkpoint last (or a checkpoint folder), or give another "
                "--output_dir, or remove them to start afresh."
            )
        return None
    if resume_from_checkpoint is True or str(resume_from_checkpoint).lower() in ("last", "true"):
        checkpoint = last_checkpoint(output_dir)
        if checkpoint is None:
            raise ValueError(
                f"--resume_from_checkpoint last: {output_dir} holds no complete checkpoint (checkpoint-N with a "
                "trainer_state.json); start without --resume_from_checkpoint, or give a checkpoint folder."
            )
        return checkpoint
    checkpoint = Path(resume_from_checkpoint)
    if not (checkpoint / _TRAINER_STATE).is_file():
        what = "does not exist" if not checkpoint.exists() else f"has no {_TRAINER_STATE} (an unfinished save?)"
        raise FileNotFoundError(
            f"{checkpoint}: {what}; give a checkpoint-N folder that a run saved, or --resume_from_checkpoint last."
        )
    return str(checkpoint)


def last_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """
    The newest complete checkpoint in `output_dir`: the `checkpoint-N` folder with the largest N that holds a
    readable `trainer_state.json`, which `Trainer` writes last. A folder left unfinished by a killed run is skipped,
    with a warning naming it (transformers' `get_last_checkpoint` would pick it).
    """
    for folder in reversed(_checkpoint_folders(output_dir)):
        try:
            json.loads((folder / _TRAINER_STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning(f"{folder} is not a complete checkpoint (its save was interrupted?): skipped.")
            continue
        return str(folder)
    return None


def _checkpoint_folders(output_dir: str | os.PathLike) -> list[Path]:
    """`checkpoint-N` folders in `output_dir`, by N."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def _keys(kind: str, keys: list[str]) -> str:
    if not keys:
        return ""
    return f"{len(keys)} {kind}, e.g. {', '.join(keys[:_SHOWN_KEYS])}"


def stage_trainer(trainer_class: type) -> type:
    """TRL's `trainer_class` with occ-hf's model card ([`OccModelCardMixin`], takes `model_card=`) and
    [`ResumeCheckMixin`] in front; it keeps TRL's class name."""
    return type(trainer_class.__name__, (OccModelCardMixin, ResumeCheckMixin, trainer_class), {"__module__": __name__})


def load_processor(model_args, training_args):
    """The processor of `model_args.model_name_or_path` (revision and `trust_remote_code` as for the model)."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )


def dataset_split(dataset, name: str):
    """`dataset[name]`, or a `ValueError` naming the splits there are."""
    if name not in dataset:
        raise ValueError(
            f"The dataset has no split {name!r} (it has {sorted(dataset)}): set dataset_train_split / "
            "dataset_test_split, or generate that split under the ObMan root."
        )
    return dataset[name]


def final_save_dtype(trainer, training_args):
    """
    The dtype the final model is saved in: `torch.bfloat16` with `bf16` (`torch.float16` with `fp16`) when the
    trained weights are fp32; `None` (as they are) otherwise.

    Under FSDP2 too: its sharded parameters take a dtype change (`FSDPModule._apply` re-shards them), and the full
    state dict that `Trainer.save_model` gathers from them (`fsdp_state_dict_type: FULL_STATE_DICT`) is then a bf16
    checkpoint (tests/train/test_multiprocess.py). `None` under FSDP1 (flat parameters, not what `fsdp.yaml` runs;
    untried) and under DeepSpeed, whose bf16 engine holds the module's weights in bf16 already (ZeRO-3 gathers them
    as 16-bit with `zero3_save_16bit_model`).
    """
    import torch
    from accelerate.utils import DistributedType

    dtype = torch.bfloat16 if training_args.bf16 else torch.float16 if training_args.fp16 else None
    distributed_type = trainer.accelerator.distributed_type
    fsdp1 = distributed_type == DistributedType.FSDP and not trainer.accelerator.is_fsdp2
    if dtype is None or fsdp1 or distributed_type == DistributedType.DEEPSPEED:
        return None
    floating = {p.dtype for p in trainer.model.parameters() if p.is_floating_point()}
    return dtype if floating == {torch.float32} else None


def train_and_save(trainer, training_args, stage: str, check_lora: bool = False):
    """What every stage does with its trainer: checks where LoRA went, trains (from `resume_from_checkpoint`, which the
    script resolved first with [`resolve_resume`]), saves (pushing with the model card when `push_to_hub`, else
    writing the card for a later `occ-hf push`); returns the trainer.

    The final model is saved in the precision it trained in ([`final_save_dtype`]): with `bf16`, bf16 weights, half
    the size of the fp32 weights the optimizer updated (an 8B model: 16 GB, not 32). The checkpoints of the run keep
    fp32, since resuming from them must restore the weights exactly."""
    from .loading import check_lora_targets

    if check_lora:
        check_lora_targets(trainer.model)
    # The stage's script resolved it with resolve_resume before loading anything.
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    dtype = final_save_dtype(trainer, training_args)
    if dtype is not None:
        # Training is over: the live model can take the saved precision (the trainer returned holds it too).
        trainer.model.to(dtype)
    # With push_to_hub, save_model also writes the model card and uploads the folder (Trainer.push_to_hub).
    trainer.save_model(training_args.output_dir)
    if not training_args.push_to_hub:
        trainer.create_model_card()  # the card waits in output_dir for a later `occ-hf push`
    where = f" and pushed it to {trainer.hub_model_id}" if training_args.push_to_hub else ""
    trainer.accelerator.print(f"Saved the {stage} model to {training_args.output_dir}{where}.")
    return trainer
