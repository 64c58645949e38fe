"""`preprocess_chat_rows` + `ProcessedChatCollator` give the tensors TRL's vision collator gives, in both modes."""

import pytest
import torch


@pytest.fixture(scope="module")
def rows_and_processor(recipe_workdir):
    from datasets import load_dataset
    from transformers import AutoProcessor

    import occ_hf  # noqa: F401  (registers the builder)

    rows = load_dataset(
        "occ-obman-cot",
        "reflection",
        data_dir=str(recipe_workdir / "data" / "obman-tiny"),
        split="train",
        cache_dir=str(recipe_workdir / "hf_datasets_cache"),
    )
    return rows.select(range(6)), AutoProcessor.from_pretrained(recipe_workdir / "runs" / "tiny")


@pytest.mark.parametrize("keep_pixels", [False, True])
def test_processed_batches_equal_trl_collator(rows_and_processor, keep_pixels):
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from occ_hf.train.preprocess import ProcessedChatCollator, preprocess_chat_rows

    rows, processor = rows_and_processor
    stock = DataCollatorForVisionLanguageModeling(processor=processor, max_length=512, assistant_only_loss=True)
    expected = stock([rows[i] for i in range(len(rows))])
    processed = preprocess_chat_rows(rows, processor, max_length=512, keep_pixels=keep_pixels)
    assert ("pixel_values" in processed.column_names) == keep_pixels
    assert ("images" in processed.column_names) != keep_pixels
    collator = ProcessedChatCollator(
        pad_token_id=processor.tokenizer.pad_token_id, image_processor=processor.image_processor
    )
    batch = collator([processed[i] for i in range(len(processed))])
    for name in ("input_ids", "attention_mask", "labels"):
        assert torch.equal(batch[name], expected[name]), name
    assert torch.equal(batch["pixel_values"], expected["pixel_values"])
    assert (batch["labels"] != -100).any()


def test_rows_with_images_need_an_image_processor(rows_and_processor):
    from occ_hf.train.preprocess import ProcessedChatCollator, preprocess_chat_rows

    rows, processor = rows_and_processor
    processed = preprocess_chat_rows(rows.select(range(2)), processor, keep_pixels=False)
    collator = ProcessedChatCollator(pad_token_id=processor.tokenizer.pad_token_id)
    with pytest.raises(ValueError, match="image_processor"):
        collator([processed[0], processed[1]])
