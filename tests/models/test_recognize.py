import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from .conftest import CLEAR, DESCRIBED, VIEW_CLASSES


@pytest.fixture(scope="module")
def trained(trained_tiny):
    return AutoModelForImageTextToText.from_pretrained(trained_tiny), AutoProcessor.from_pretrained(trained_tiny)


def test_stages_and_decision_on_views(trained, images_and_views):
    model, processor = trained
    images, views = images_and_views
    results = model.recognize(images, views=views, processor=processor)
    assert [r.describe for r in results] == [[f"The object is {name}."] for name in DESCRIBED]
    assert [r.reflect for r in results] == ["Yes." if clear else "No." for clear in CLEAR]
    assert [r.clear for r in results] == CLEAR
    assert [r.describe_label for r in results] == DESCRIBED
    # The decision re-asks only the unclear images, on their views, and takes the view's answer.
    assert [r.used_view for r in results] == [not clear for clear in CLEAR]
    assert [r.decide for r in results] == [
        None if c else f"The object is {v}." for c, v in zip(CLEAR, VIEW_CLASSES, strict=False)
    ]
    assert [r.label for r in results] == VIEW_CLASSES


def test_batched_equals_one_by_one(trained, images_and_views):
    model, processor = trained
    images, views = images_and_views
    batched = model.recognize(images, views=views, processor=processor)
    one_by_one = [model.recognize([i], views=[v], processor=processor)[0] for i, v in zip(images, views, strict=False)]
    assert batched == one_by_one
    assert model.recognize(images, views=views, processor=processor, batch_size=3) == batched


def test_cache_reuse_gives_the_same_answers(trained, images_and_views):
    model, processor = trained
    images, views = images_and_views
    reused = model.recognize(images, views=views, processor=processor, reuse_cache=True)
    recomputed = model.recognize(images, views=views, processor=processor, reuse_cache=False)
    assert reused == recomputed


def test_second_turn_reuses_the_first_turns_cache(trained, images_and_views):
    from occ_hf.models.occ_internvl.generation_occ_internvl import BatchedChat

    model, processor = trained
    images, _ = images_and_views
    chat = BatchedChat(model, processor, max_new_tokens=8, reuse_cache=True)
    question = model.config.prompts["code"]["describe"][0]
    chat.ask([question] * 2, [[images[0]], [images[1]]])
    first_turn_tokens = int(chat.attention_mask.sum())
    answers = chat.ask(["Is it clear to identify the object in the hand?\n"] * 2, [[], []])
    assert answers == ["Yes.", "No."]
    # Everything the first turn saw is reused but the last generated token (never fed) and the end-of-turn token.
    assert first_turn_tokens - 2 * 2 <= chat.reused_tokens < first_turn_tokens


def test_missing_view_counts_as_wrong(trained, images_and_views):
    model, processor = trained
    images, views = images_and_views
    results = model.recognize(images, views=[views[0], None, views[2], views[3]], processor=processor)
    assert results[1].clear is False and results[1].label is None and results[1].decide is None
    assert results[3].label == VIEW_CLASSES[3]


def test_joint_policy_sees_both_images(trained, images_and_views):
    model, processor = trained
    images, views = images_and_views
    inputs_seen = []
    original_generate = model.generate

    def recording_generate(**kwargs):
        inputs_seen.append(kwargs)
        return original_generate(**kwargs)

    model.generate = recording_generate
    try:
        results = model.recognize(images[:2], views=views[:2], processor=processor, policy="joint")
    finally:
        del model.generate
    assert len(inputs_seen) == 2  # the joint question, then the reflection reusing its cache
    assert inputs_seen[0]["pixel_values"].shape[0] == 4  # RGB image and view, for each of the two images
    assert "pixel_values" not in inputs_seen[1]
    assert all(r.used_view and r.decide is None and len(r.describe) == 1 for r in results)
    assert [r.label for r in results] == [r.describe_label for r in results]
    with pytest.raises(ValueError, match="needs a view for every image"):
        model.recognize(images[:2], views=[views[0], None], processor=processor, policy="joint")


def test_paper_style_asks_three_describe_questions_then_decides(tiny_dir, images_and_views):
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    processor = AutoProcessor.from_pretrained(tiny_dir)
    images, views = images_and_views
    results = model.recognize(images[:2], views=views[:2], processor=processor, prompt_style="paper", max_new_tokens=3)
    assert all(len(r.describe) == 3 and r.describe_label is None for r in results)
    # A random model answers neither yes nor no: the image stays in its conversation, which asks the class question.
    assert all(r.clear is None and not r.used_view and r.decide is not None for r in results)
    # Five turns with answers cut at 3 tokens (no end-of-turn): a hard case for reusing the cache across turns.
    assert results == [
        model.recognize([i], views=[v], processor=processor, prompt_style="paper", max_new_tokens=3)[0]
        for i, v in zip(images[:2], views[:2], strict=False)
    ]
    kwargs = {"processor": processor, "prompt_style": "paper", "max_new_tokens": 3, "reuse_cache": False}
    assert results == model.recognize(images[:2], views=views[:2], **kwargs)


def test_bad_arguments_are_refused(trained, images_and_views):
    model, processor = trained
    images, views = images_and_views
    with pytest.raises(ValueError, match="2 images but 1 views"):
        model.recognize(images[:2], views=views[:1], processor=processor)
    with pytest.raises(ValueError, match="Unknown policy"):
        model.recognize(images[:1], processor=processor, policy="vote")
    with pytest.raises(ValueError, match="Unknown prompt style"):
        model.recognize(images[:1], processor=processor, prompt_style="poem")


def test_processor_defaults_to_the_checkpoint(trained_tiny, images_and_views):
    model = AutoModelForImageTextToText.from_pretrained(trained_tiny)
    images, views = images_and_views
    with torch.no_grad():
        assert model.recognize(images[:1], views=views[:1])[0].label == VIEW_CLASSES[0]


def test_bad_batch_size_images_and_views_are_named(trained, images_and_views):
    """Bug 12: batch_size=-1 returned [] (range(0, n, -1) is empty); a None image gave a TypeError naming no index."""
    model, processor = trained
    images, views = images_and_views
    for batch_size in (-1, 0, 1.5, True, "2"):
        with pytest.raises(ValueError, match=rf"batch_size must be a positive integer or None, got {batch_size!r}"):
            model.recognize(images[:2], processor=processor, batch_size=batch_size)
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer or None, got -3"):
        model.recognize(images[:1], processor=processor, max_new_tokens=-3)
    with pytest.raises(ValueError, match=r"images\[1\] is NoneType, expected a PIL image\."):
        model.recognize([images[0], None], processor=processor)
    with pytest.raises(ValueError, match=r"images\[0\] is str, expected a PIL image\."):
        model.recognize(["rgb/00000000.jpg"], processor=processor)
    with pytest.raises(ValueError, match=r"images is one Image; pass a list of PIL images, e\.g\. \[image\]"):
        model.recognize(images[0], processor=processor)
    with pytest.raises(ValueError, match=r"views\[1\] is int, expected a PIL image or None \(no view\)"):
        model.recognize(images[:2], views=[None, 3], processor=processor)
    with pytest.raises(ValueError, match="2 images but 3 views"):
        model.recognize(images[:2], views=views[:3], processor=processor)
    assert len(model.recognize(images[:2], processor=processor, batch_size=1)) == 2


@pytest.mark.parametrize("max_patches", [1, 4])
def test_chat_inputs_equal_the_processors(trained_tiny, images_and_views, max_patches):
    """The chat processes each image once and tokenizes text alone; its prefill must be what the processor builds."""
    from PIL import Image

    from occ_hf.models.occ_internvl.generation_occ_internvl import BatchedChat

    model = AutoModelForImageTextToText.from_pretrained(trained_tiny)
    processor = AutoProcessor.from_pretrained(trained_tiny)
    # Dynamic tiles, as a converted InternVL2 checkpoint has: a wide image becomes several tiles plus a thumbnail.
    processor.image_processor.crop_to_patches = max_patches > 1
    processor.image_processor.max_patches = max_patches
    images, views = images_and_views
    images = [images[0], images[1].resize((448, 224), Image.BILINEAR), images[2]]
    question = model.config.prompts["code"]["describe"][0]
    chat = BatchedChat(model, processor, max_new_tokens=4)
    seen = {}
    original_generate = model.generate

    def recording_generate(**kwargs):
        seen.setdefault("first", kwargs)
        return original_generate(**kwargs)

    model.generate = recording_generate
    chat.ask([question] * 3, [[image] for image in images])
    model.generate = original_generate

    texts = [processor.apply_chat_template(m[:1], add_generation_prompt=True, tokenize=False) for m in chat.messages]
    expected = processor(text=texts, images=images, padding=True, padding_side="left", return_tensors="pt")
    assert torch.equal(seen["first"]["input_ids"], expected["input_ids"])
    assert torch.equal(seen["first"]["attention_mask"], expected["attention_mask"])
    assert torch.equal(seen["first"]["pixel_values"], expected["pixel_values"].to(model.dtype))
    assert (expected["pixel_values"].shape[0] > 3) == (max_patches > 1)
