"""Process image-chat rows once, before training, instead of once per batch.

TRL's `SFTTrainer` processes vision rows in its collator: every batch decodes its images, resizes and normalises
them, renders the chat template, tokenizes and finds the answers' tokens, every epoch again. The text part costs
three times the image part (benchmarks/README.md) and is the same in every epoch. `preprocess_chat_rows` does it
once, with the same calls TRL's collator makes (`prepare_multimodal_messages`, then the processor's
`apply_chat_template` with the assistant mask), and `ProcessedChatCollator` pads, stacks and, for rows that kept their
images, runs the image processor (in the dataloader's workers). The trainer still is TRL's `SFTTrainer`: processed
rows are its documented `skip_prepare_dataset` path with a `labels` column.

Two modes: `keep_pixels=False` (`occ-hf train sft`'s default, `preprocess_text`) stores the tokens and keeps the
encoded images, which the collator processes per batch; `keep_pixels=True` (`preprocess_images`) also stores the
processed pixels, for small images seen over many epochs (the tiny model of the demo).

```python
from occ_hf.train.preprocess import ProcessedChatCollator, preprocess_chat_rows

processed = preprocess_chat_rows(dataset["train"], processor, max_length=512)    # input_ids, labels, images
trainer = SFTTrainer(
    model=model,
    args=OccSFTConfig(..., remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True}),
    train_dataset=processed,
    data_collator=ProcessedChatCollator(
        pad_token_id=processor.tokenizer.pad_token_id, image_processor=processor.image_processor
    ),
    processing_class=processor,
)
```

Stored pixels are float32 (a 448 px InternVL tile is 2.4 MB): keep them only for small images, e.g. the tiny 112 px
model of the demo (150 kB a row).
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
    keep_pixels: bool = True,
    num_proc: int | None = None,
):
    """
    Turns `images` + `messages` rows into `input_ids`, `labels` (-100 outside the assistant's answers) and
    `pixel_values` (or the `images` as they are, with `keep_pixels=False`), as TRL's vision collator would for each
    batch.

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
        keep_pixels (`bool`, *optional*, defaults to `True`): store the processed pixels; `False` keeps the `images`
            column instead, for [`ProcessedChatCollator`] to process per batch.
        num_proc (`int`, *optional*): processes for the one pass over the rows.

    Returns:
        [`~datasets.Dataset`]: `input_ids`, `labels` and `pixel_values` (`[tiles, 3, H, W]` a row) or `images`; the
        token columns as torch tensors.
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
            if keep_pixels:
                pixel_values.append(output["pixel_values"].numpy())
        if not keep_pixels:
            return {"input_ids": input_ids, "labels": labels}
        return {"input_ids": input_ids, "labels": labels, "pixel_values": pixel_values}

    columns = {
        "input_ids": datasets.Sequence(datasets.Value("int32")),
        "labels": datasets.Sequence(datasets.Value("int32")),
    }
    if keep_pixels:
        first = dataset.select(range(1)).map(process, batched=True, remove_columns=dataset.column_names)
        tile_shape = tuple(first.with_format("numpy")[0]["pixel_values"].shape[1:])
        columns["pixel_values"] = datasets.Array4D(shape=(None, *tile_shape), dtype="float32")
    processed = dataset.map(
        process,
        batched=True,
        batch_size=batch_size,
        remove_columns=dataset.column_names,
        features=datasets.Features(columns),
        keep_in_memory=keep_in_memory,
        num_proc=num_proc,
        desc=desc or "Processing chat rows",
    )
    if not keep_pixels:
        # Joined from the source table, not passed through `map`, which would encode the decoded images again (a
        # JPEG would lose a little each time).
        processed = datasets.concatenate_datasets([processed, dataset.select_columns(["images"])], axis=1)
    # Kept images stay PIL images (the collator's image processor takes them); tokens become tensors.
    return processed.with_format("torch", columns=list(columns), output_all_columns=True)


@dataclass
class ProcessedChatCollator:
    r"""
    Collates rows of [`preprocess_chat_rows`]: pads `input_ids` (with `pad_token_id`) and `labels` (with -100) on the
    right, builds `attention_mask`, concatenates the rows' tiles into `pixel_values` (`[tiles, 3, H, W]`, the layout
    InternVL's forward takes; rows that kept their `images` get them from `image_processor`, as TRL's collator
    would), and optionally augments the pixels.

    Parameters:
        pad_token_id (`int`): the tokenizer's pad token.
        image_processor (`BaseImageProcessor`, *optional*): the processor's image processor, for rows with `images`
            instead of `pixel_values`.
        augment (`bool`, *optional*, defaults to `False`):
            A random horizontal flip and a shift of up to `max_shift` pixels per row (wrapping around), on the
            normalised tensors. Mild on purpose: DESIGN.md measured strong augmentation to slow a tiny model down.
        max_shift (`int`, *optional*, defaults to `8`): the largest shift in pixels.
        generator (`torch.Generator`, *optional*): the augmentation's random source (seed it for repeatable runs).
    """

    pad_token_id: int
    image_processor: object | None = None
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
        tiles = self._tiles(rows)
        if self.augment:
            tiles = [self._augment(row_tiles) for row_tiles in tiles]
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "pixel_values": torch.cat(tiles),  # [tiles of the batch, 3, H, W]
        }

    def _tiles(self, rows: list[dict]) -> list[torch.Tensor]:
        """Each row's tiles: stored, or from one image-processor call over the batch's images."""
        if "pixel_values" in rows[0]:
            return [torch.as_tensor(row["pixel_values"]) for row in rows]
        if self.image_processor is None:
            raise ValueError("The rows kept their images, but the collator has no image_processor to process them.")
        images = [image for row in rows for image in row["images"]]
        output = self.image_processor(images=images, return_tensors="pt")
        # Tiles per image: `num_patches` when the processor tiles (InternVL's crop_to_patches), else one.
        per_image = output.get("num_patches")
        per_image = [1] * len(images) if per_image is None else [int(n) for n in per_image]
        per_row, start = [], 0
        for row in rows:
            per_row.append(sum(per_image[start : start + len(row["images"])]))
            start += len(row["images"])
        return list(output["pixel_values"].split(per_row))

    def _augment(self, tiles: torch.Tensor) -> torch.Tensor:
        # One flip and one shift per row, the same on all of its tiles, so a tiled image stays one image.
        draws = torch.rand(3, generator=self.generator)
        if draws[0] < 0.5:
            tiles = tiles.flip(-1)
        shifts = ((draws[1:] * (2 * self.max_shift + 1)).long() - self.max_shift).tolist()
        return tiles.roll(shifts=shifts, dims=(-2, -1))
