"""Session fixtures: a tiny random OccInternVL checkpoint, and a copy trained for seconds to answer known things."""

import numpy as np
import pytest
import torch
from PIL import Image

from occ_hf.models.occ_internvl.tiny_occ_internvl import TinyOccInternVLConfig, init_tiny_checkpoint


# Tiny tensors gain nothing from threads, and on a shared 2-core machine thread hand-offs cost 100x the math.
torch.set_num_threads(1)

# What the trained fixture memorises: RGB image i is described as DESCRIBED[i], judged clear or not, and its 3D view
# names VIEW_CLASSES[i]. The unclear images are described wrongly, as in the seed's clarity labels.
DESCRIBED = ["bottle", "bowl", "jar", "remote"]
CLEAR = [True, False, True, False]
VIEW_CLASSES = ["bottle", "knife", "jar", "can"]


def noise_image(rng: np.random.Generator) -> Image.Image:
    return Image.fromarray(rng.integers(0, 255, (28, 28, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A tiny random checkpoint written by `init_tiny_checkpoint` (code style, staged policy)."""
    output_dir = tmp_path_factory.mktemp("tiny")
    init_tiny_checkpoint(TinyOccInternVLConfig(output_dir=str(output_dir), seed=0))
    return output_dir


@pytest.fixture(scope="session")
def images_and_views():
    rng = np.random.default_rng(0)
    return [noise_image(rng) for _ in DESCRIBED], [noise_image(rng) for _ in DESCRIBED]


def _conversations(prompts: dict, images, views) -> list[list[dict]]:
    def user(question, image=None):
        content = [{"type": "text", "text": question.replace("<image>", "")}]
        return {"role": "user", "content": content + ([{"type": "image", "image": image}] if image else [])}

    def assistant(text):
        return {"role": "assistant", "content": [{"type": "text", "text": text}]}

    answer = prompts["answer_template"].format
    conversations = []
    for index, (image, view) in enumerate(zip(images, views, strict=True)):
        conversations.append(
            [
                user(prompts["describe"][0], image),
                assistant(answer(class_name=DESCRIBED[index])),
                user(prompts["reflect_at_inference"]),
                assistant(prompts["yes"] if CLEAR[index] else prompts["no"]),
            ]
        )
        conversations.append([user(prompts["decide"], view), assistant(answer(class_name=VIEW_CLASSES[index]))])
    return conversations


@pytest.fixture(scope="session")
def trained_tiny(tiny_dir, images_and_views, tmp_path_factory):
    """The tiny checkpoint after 80 full-batch steps on 4 images and their views (loss on the answers only)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    processor = AutoProcessor.from_pretrained(tiny_dir)
    images, views = images_and_views
    batch = processor.apply_chat_template(
        _conversations(model.config.prompts["code"], images, views),
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        padding=True,
        return_assistant_tokens_mask=True,
    )
    labels = batch["input_ids"].masked_fill(batch["assistant_masks"] == 0, -100)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(80):
        loss = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values=batch["pixel_values"],
            labels=labels,
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    output_dir = tmp_path_factory.mktemp("trained")
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir
