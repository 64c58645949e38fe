"""Process image-chat rows once, before training, instead of once per batch: for small images and many epochs.

TRL's `SFTTrainer` processes vision rows in its collator: every batch decodes its images, resizes and normalises
them, renders the chat template and tokenizes, every epoch again. On CPU with a tiny model that work dominates the
step (DESIGN.md measured TRL at 114 images/s against ~500 for a loop on processed tensors). `preprocess_chat_rows`
does that work once, with the same calls TRL's collator makes (`prepare_multimodal_messages`, then the processor's
`apply_chat_template` with the assistant mask), and `ProcessedChatCollator` only pads and stacks. The trainer still
is TRL's `SFTTrainer`: processed rows are its documented `skip_prepare_dataset` path with a `labels` column.

```python
from occ_hf.train.preprocess import ProcessedChatCollator, preprocess_chat_rows

processed = preprocess_chat_rows(dataset["train"], processor, max_length=512)    # input_ids, labels, pixel_values
trainer = SFTTrainer(
    model=model,
    args=OccSFTConfig(..., remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True}),
    train_dataset=processed,
    data_collator=ProcessedChatCollator(pad_token_id=processor.tokenizer.pad_token_id, augment=True),
    processing_class=processor,
)
```

The processed pixels are stored as float32 (a 448 px InternVL tile is 2.4 MB): use it for small images, e.g. the
tiny 112 px model of the demo (150 kB a row), and keep the on-the-fly collator for real checkpoints.
"""

from dataclasses import dataclass

import torch


__all__ = ["ProcessedChatCollator", "preprocess_chat_rows"]


def preprocess_chat_rows(
    dataset,
    processor,
    max_length: int | None = None,
    batch_size: int = 64,
    keep_in_memory: bool = True,
    desc: str | None = None,
):
    """
    Turns `images` + `messages` rows into `input_ids`, `labels` (-100 outside the assistant's answers) and
    `pixel_values`, as TRL's vision collator would for each batch.

    Args:
        dataset ([`~datasets.Dataset`]): rows with `images` (a list of images) and `messages` (structured content with
            `{"type": "image"}` parts), e.g. an `occ-obman-cot` config other than `preference` and `test`.
        processor ([`~transformers.ProcessorMixin`]): the model's processor; its chat template must mark the answers
            with `{% generation %}` (OccInternVL's does).
        max_length (`int`, *optional*): rows longer than this raise, since cutting a row would cut image tokens.
        batch_size (`int`, *optional*, defaults to `64`): rows per processor call.
        keep_in_memory (`bool`, *optional*, defaults to `True`): keep the processed table in memory instead of
            writing it to the datasets cache.
        desc (`str`, *optional*): progress bar label.

    Returns:
        [`~datasets.Dataset`]: `input_ids`, `labels` and `pixel_values` (`[tiles, 3, H, W]` a row), torch format.
    """
    import datasets
    from trl.data_utils import prepare_multimodal_messages

    missing = {"images", "messages"} - set(dataset.column_names)
    if missing:
        raise ValueError(
            f"preprocess_chat_rows needs `images` and `messages` columns; the dataset lacks {sorted(missing)} "
            f"(it has {dataset.column_names}). Use a chat config of occ-obman-cot (description, reflection, decision, "
            "cot)."
        )

    def process(batch):
        conversations = [
            prepare_multimodal_messages(messages, images=images)
            for messages, images in zip(batch["messages"], batch["images"], strict=True)
        ]
        input_ids, labels, pixel_values = [], [], []
        for conversation in conversations:
            # One conversation per call: the processor pads a batch, and padded rows are what we avoid storing.
            output = processor.apply_chat_template(
                conversation,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
                return_assistant_tokens_mask=True,
                processor_kwargs={"add_special_tokens": False},
            )
            ids = output["input_ids"][0]
            if max_length is not None and len(ids) > max_length:
                raise ValueError(
                    f"A row has {len(ids)} tokens, more than max_length={max_length}; cutting it would drop image "
                    "tokens. Raise max_length."
                )
            answer_mask = output["assistant_masks"][0].bool()
            if not answer_mask.any():
                raise ValueError(
                    "The chat template marked no assistant tokens: it needs `{% generation %}` markers around the "
                    "answers (OccInternVL's template has them)."
                )
            input_ids.append(ids.tolist())
            labels.append(torch.where(answer_mask, ids, -100).tolist())
            pixel_values.append(output["pixel_values"].numpy())
        return {"input_ids": input_ids, "labels": labels, "pixel_values": pixel_values}

    first = dataset.select(range(1)).map(process, batched=True, remove_columns=dataset.column_names)
    tile_shape = tuple(first.with_format("numpy")[0]["pixel_values"].shape[1:])
    features = datasets.Features(
        {
            "input_ids": datasets.Sequence(datasets.Value("int32")),
            "labels": datasets.Sequence(datasets.Value("int32")),
            "pixel_values": datasets.Array4D(shape=(None, *tile_shape), dtype="float32"),
        }
    )
    processed = dataset.map(
        process,
        batched=True,
        batch_size=batch_size,
        remove_columns=dataset.column_names,
        features=features,
        keep_in_memory=keep_in_memory,
        desc=desc or "Processing chat rows",
    )
    return processed.with_format("torch")


@dataclass
class ProcessedChatCollator:
    r"""
    Collates rows of [`preprocess_chat_rows`]: pads `input_ids` (with `pad_token_id`) and `labels` (with -100) on the
    right, builds `attention_mask`, concatenates the rows' tiles into `pixel_values` (`[tiles, 3, H, W]`, the layout
    InternVL's forward takes), and optionally augments the pixels.

    Parameters:
        pad_token_id (`int`): the tokenizer's pad token.
        augment (`bool`, *optional*, defaults to `False`):
            A random horizontal flip and a shift of up to `max_shift` pixels per row (wrapping around), on the
            normalised tensors. Mild on purpose: DESIGN.md measured strong augmentation to slow a tiny model down.
        max_shift (`int`, *optional*, defaults to `8`): the largest shift in pixels.
        generator (`torch.Generator`, *optional*): the augmentation's random source (seed it for repeatable runs).
    """

    pad_token_id: int
    augment: bool = False
    max_shift: int = 8
    generator: torch.Generator | None = None

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        longest = max(len(row["input_ids"]) for row in rows)
        input_ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)  # [B, T]
        labels = torch.full((len(rows), longest), -100, dtype=torch.long)  # [B, T]
        attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)  # [B, T]
        for i, row in enumerate(rows):
            length = len(row["input_ids"])
            input_ids[i, :length] = torch.as_tensor(row["input_ids"])
            labels[i, :length] = torch.as_tensor(row["labels"])
            attention_mask[i, :length] = 1
        tiles = [torch.as_tensor(row["pixel_values"]) for row in rows]
        if self.augment:
            tiles = [self._augment(row_tiles) for row_tiles in tiles]
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "pixel_values": torch.cat(tiles),  # [tiles of the batch, 3, H, W]
        }

    def _augment(self, tiles: torch.Tensor) -> torch.Tensor:
        # One flip and one shift per row, the same on all of its tiles, so a tiled image stays one image.
        draws = torch.rand(3, generator=self.generator)
        if draws[0] < 0.5:
            tiles = tiles.flip(-1)
        shifts = ((draws[1:] * (2 * self.max_shift + 1)).long() - self.max_shift).tolist()
        return tiles.roll(shifts=shifts, dims=(-2, -1))
