"""`OccInternVLProcessor`: transformers' `InternVLProcessor` whose chat template knows the OCC-MLLM-CoT stage prompts.

This file is copied next to every saved checkpoint (`auto_map`), so it imports only transformers.

The chat template (written by `occ-hf init-tiny` and the converter) renders, besides `text` and `image` parts, a
`stage` part: `{"type": "stage", "stage": "reflect"}` becomes that stage's question in the style given by the
`prompt_style` template argument (`code` or `paper`); `"index"` picks among the describe questions. A stage
question places its images itself (its `<image>` markers become the image placeholder), so in a message with a stage
part the `image` parts only supply the pixels.

```python
messages = [{"role": "user", "content": [{"type": "stage", "stage": "describe"}, {"type": "image", "image": rgb}]}]
inputs = processor.apply_chat_template(
    messages, prompt_style="code", add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
)
```
"""

from transformers import InternVLProcessor


IMAGE_MARKER = "<image>"


def question_content(question: str, images: list) -> list[dict]:
    """
    Chat content parts for `question`, with one image part per `<image>` marker, in the marker's place.

    Args:
        question (`str`):
            A question in InternVL's chat-jsonl form, e.g. `"What's the object in the hand?\\n<image>"`.
        images (`list`):
            The images, one per marker, in order.

    Returns:
        `list[dict]`: `text` and `image` parts that render to the question with each marker replaced by the image.
    """
    pieces = question.split(IMAGE_MARKER)
    if len(pieces) - 1 != len(images):
        raise ValueError(
            f"The question {question!r} has {len(pieces) - 1} {IMAGE_MARKER} marker(s) but {len(images)} image(s) "
            "were given: pass one image per marker."
        )
    content = []
    for index, piece in enumerate(pieces):
        if piece:
            content.append({"type": "text", "text": piece})
        if index < len(images):
            content.append({"type": "image", "image": images[index]})
    return content


class OccInternVLProcessor(InternVLProcessor):
    r"""
    An [`InternVLProcessor`] for OCC-MLLM-CoT checkpoints. It processes inputs exactly as its parent does; what it
    adds is a chat template with the stage prompts of both prompt styles (see the module docstring), and
    [`~OccInternVLProcessor.question_content`] to turn a stage question into chat content.

    Unlike its parent, it does not force `crop_to_patches=True` on every call: the image processor's own setting
    applies, so a tiny single-tile checkpoint and a converted InternVL2 (dynamic tiles) both load as saved.
    """

    images_kwargs = {}

    def save_pretrained(self, save_directory, *args, **kwargs):
        """[`~ProcessorMixin.save_pretrained`], also writing `auto_map` and this file for remote code."""
        # Set on every save, as the model does, so that a processor loaded as remote code saves its auto_map too.
        type(self).register_for_auto_class("AutoProcessor")
        return super().save_pretrained(save_directory, *args, **kwargs)

    def question_content(self, question: str, images: list) -> list[dict]:
        """Chat content parts for `question`, with `images` in place of its `<image>` markers."""
        return question_content(question, images)


__all__ = ["OccInternVLProcessor", "question_content"]
