"""`OccSFTConfig`: TRL's `SFTConfig` with the seed's supervised fine-tuning defaults (SFT1 and SFT2).

```python
from occ_hf.train import OccSFTConfig

args = OccSFTConfig(output_dir="runs/sft2", bf16=True)  # lr 4e-5, 2 epochs, cosine, warmup 3%, weight decay 0.05
```
"""

from dataclasses import dataclass, field

from trl import SFTConfig


__all__ = ["OccSFTConfig"]


@dataclass
class OccSFTConfig(SFTConfig):
    r"""
    Configuration of the `sft` stage: TRL's [`~trl.SFTConfig`] with the defaults of the seed's InternVL2 fine-tuning
    (OCC-MLLM's `internvl_chat` shell scripts, DESIGN.md section 1). Every other field is TRL's.

    > These parameters have default values different from [`~trl.SFTConfig`]:
    > - `learning_rate`: Defaults to `4e-5` instead of `2e-5`.
    > - `num_train_epochs`: Defaults to `2` instead of `3`.
    > - `lr_scheduler_type`: Defaults to `"cosine"` instead of `"linear"`.
    > - `warmup_steps`: Defaults to `0.03` (a ratio of the total steps) instead of `0`.
    > - `weight_decay`: Defaults to `0.05` instead of `0.0`.
    > - `max_length`: Defaults to `4096` instead of `1024`.
    > - `assistant_only_loss`: Defaults to `True` instead of `False`: the loss covers the answers only, as the seed's
    >   InternVL chat fine-tuning masks the questions. The `occ-obman-cot` rows are `messages`, and OccInternVL's chat
    >   template carries the `{% generation %}` markers this needs.

    `bf16` keeps TRL's default (`True` unless `fp16` is set); CPU recipes set it to `false`.

    > Parameters that control the data path (beside TRL's)

    Parameters:
        preprocess_text (`bool`, *optional*, defaults to `True`):
            Render the chat template, tokenize and mark the answers' tokens once before training (see
            `occ_hf.train.preprocess`) instead of in every batch of every epoch as TRL's vision collator does; the
            images are still processed per batch, in the dataloader's workers. The same tensors as TRL's collator;
            the text is most of its cost (benchmarks/README.md). `False`, or `assistant_only_loss: false` (the
            processed labels cover the answers only), leaves every row to TRL's collator.
        preprocess_images (`bool`, *optional*, defaults to `False`):
            Also process the images once and hold their pixel values in memory (float32). Worth it for small images
            over many epochs (the demo's tiny model trains faster: benchmarks/README.md); leave it off for 448 px
            tiles of real checkpoints (2.4 MB each).
        augment_images (`bool`, *optional*, defaults to `False`):
            With `preprocess_text` or `preprocess_images`: a random horizontal flip and a shift of up to 8 pixels of
            every image in every batch (the demo's tiny model, trained from scratch, generalises better with it).
    """

    learning_rate: float = field(default=4e-5, metadata={"help": "The initial learning rate for AdamW."})
    num_train_epochs: float = field(default=2.0, metadata={"help": "Total number of training epochs to perform."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "The scheduler type to use."})
    warmup_steps: float = field(
        default=0.03, metadata={"help": "Linear warmup: steps (an integer) or a ratio of the total steps (< 1)."}
    )
    weight_decay: float = field(default=0.05, metadata={"help": "Weight decay for AdamW."})
    max_length: int | None = field(
        default=4096, metadata={"help": "Maximum length of a tokenized sequence (image tokens included)."}
    )
    assistant_only_loss: bool = field(
        default=True, metadata={"help": "Compute the loss on the assistant's answers only (not the questions)."}
    )
    preprocess_text: bool = field(
        default=True,
        metadata={"help": "Tokenize every row once before training; images are still processed per batch."},
    )
    preprocess_images: bool = field(
        default=False,
        metadata={"help": "Process every row once before training instead of per batch (small images, many epochs)."},
    )
    augment_images: bool = field(
        default=False,
        metadata={"help": "With preprocessing: a random flip and a small shift of every image in every batch."},
    )
