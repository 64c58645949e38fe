"""A batch whose second half repeats the first half's images (TRL's chosen/rejected layout) encodes them once, and
computes what encoding them twice computes: the same log-probabilities and the same gradients."""

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from .conftest import noise_image


@pytest.fixture(scope="module")
def pair_batch(tiny_dir):
    import numpy as np

    processor = AutoProcessor.from_pretrained(tiny_dir)
    rng = np.random.default_rng(1)
    images = [noise_image(rng), noise_image(rng)]

    def conversation(image, answer):
        return [
            {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "What is it?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
        ]

    chosen = [conversation(image, "The object is can.") for image in images]
    rejected = [conversation(image, "The object is a bowl, I think.") for image in images]
    return processor.apply_chat_template(
        chosen + rejected, tokenize=True, return_dict=True, return_tensors="pt", padding=True
    )


def _forward(model, batch, encode_all: bool):
    kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if encode_all:  # what the model computed before: every image through the tower
        features = model.model.get_image_features(pixel_values=batch["pixel_values"], return_dict=True)
        kwargs["mm_encoder_outputs"] = {"image": features}
    else:
        kwargs["pixel_values"] = batch["pixel_values"]
    return model(**kwargs).logits


@pytest.mark.parametrize("freeze_vision", [True, False])
def test_repeated_images_are_encoded_once_with_the_same_result(tiny_dir, pair_batch, freeze_vision):
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir, freeze_vision=freeze_vision)
    assert torch.equal(pair_batch["pixel_values"][:2], pair_batch["pixel_values"][2:])
    tower_batches = []
    model.model.vision_tower.register_forward_hook(
        lambda m, a, k, out: tower_batches.append(k["pixel_values"].shape[0]), with_kwargs=True
    )

    results = {}
    for encode_all in (True, False):
        model.zero_grad()
        logits = _forward(model, pair_batch, encode_all)
        logits.float().logsumexp(-1).mean().backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        results[encode_all] = (logits.detach(), grads)
    assert tower_batches == [4, 2]  # encode_all, then the shared pass on the first half
    torch.testing.assert_close(results[False][0], results[True][0], rtol=1e-5, atol=1e-5)
    assert results[False][1].keys() == results[True][1].keys()
    assert any("vision_tower" in name for name in results[True][1]) == (not freeze_vision)
    for name, grad in results[True][1].items():
        torch.testing.assert_close(results[False][1][name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_distinct_images_go_through_the_tower_as_they_are(tiny_dir, pair_batch):
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    tower_batches = []
    model.model.vision_tower.register_forward_hook(
        lambda m, a, k, out: tower_batches.append(k["pixel_values"].shape[0]), with_kwargs=True
    )
    pixel_values = pair_batch["pixel_values"].clone()
    pixel_values[3] += 0.01  # the last rejected image no longer repeats its chosen one
    model(input_ids=pair_batch["input_ids"], attention_mask=pair_batch["attention_mask"], pixel_values=pixel_values)
    assert tower_batches == [4]
