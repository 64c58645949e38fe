"""`OccInternVLProcessor`: transformers' `InternVLProcessor` whose chat template knows the OCC-MLLM-CoT stage prompts.

This file is copied next to every saved checkpoint (`auto_map`), so it imports only transformers and its siblings.

The chat template (written by `occ-hf init-tiny`, and by the converter through [`add_stage_prompts`]) renders, besides
`text` and `image` parts, a `stage` part: `{"type": "stage", "stage": "reflect"}` becomes that stage's question in the
style given by the `prompt_style` template argument (`code` or `paper`); `"index"` picks among the describe questions.
A stage question places its images itself (its `<image>` markers become the image placeholder), so in a message with a
stage part the `image` parts only supply the pixels.

```python
messages = [{"role": "user", "content": [{"type": "stage", "stage": "describe"}, {"type": "image", "image": rgb}]}]
inputs = processor.apply_chat_template(
    messages, prompt_style="code", add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
)
```
"""

import json

from transformers import InternVLProcessor

from .prompts_occ_internvl import IMAGE_MARKER, question_parts


# The special tokens of InternVL's tokenizers, named as transformers' InternVLProcessor looks them up (the tokenizer
# of `occ-hf init-tiny` and the converted ones carry them as `extra_special_tokens`).
IMAGE_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}
# The keys of a prompt table (`config.prompts[style]`) that a `stage` part can name.
STAGE_KEYS = ("describe", "reflect", "reflect_at_inference", "decide", "decide_in_conversation", "joint")


def stage_prompt_tables(prompts: dict) -> dict:
    """The stage questions of each prompt style in `prompts` (a config's `prompts`), as a chat template holds them."""
    return {name: {key: table[key] for key in STAGE_KEYS} for name, table in prompts.items()}


def stage_style_jinja(tables: str, style: str) -> str:
    """
    Jinja that sets `style` to the stage table of the `prompt_style` template argument (default `code`), raising a
    `TemplateError` that names the known styles for an unknown one. `tables` is the variable holding
    [`stage_prompt_tables`].
    """
    return (
        "{%- if prompt_style is defined and prompt_style not in " + tables + " -%}"
        "{{- raise_exception('Unknown prompt_style ' ~ prompt_style ~ ': this chat template knows ' ~ ("
        + tables
        + " | list | join(', ')) ~ '.') -}}{%- endif -%}"
        "{%- set " + style + " = " + tables + "[prompt_style if prompt_style is defined else 'code'] -%}"
    )


def stage_question_jinja(style: str) -> str:
    """
    Jinja that sets `question` to the question of the `stage` part `part` in the stage table `style` (its `index`
    picking among the describe questions), raising a `TemplateError` that names the known stages (or the valid
    indices) instead of rendering an undefined question.
    """
    return (
        "{%- if part['stage'] not in " + style + " -%}"
        "{{- raise_exception('Unknown stage ' ~ part['stage'] ~ ' in a stage part: use one of "
        + ", ".join(STAGE_KEYS)
        + ".') -}}{%- endif -%}"
        "{%- set question = " + style + "[part['stage']] -%}"
        "{%- if question is not string -%}"
        "{%- set stage_index = part['index'] if 'index' in part else 0 -%}"
        "{%- if stage_index is not integer or stage_index < 0 or stage_index >= question | length -%}"
        "{{- raise_exception('Stage ' ~ part['stage'] ~ ' has ' ~ question | length ~ ' questions: index must be "
        "0 to ' ~ (question | length - 1) ~ ', got ' ~ stage_index ~ '.') -}}{%- endif -%}"
        "{%- set question = question[stage_index] -%}{%- endif -%}"
    )


def add_stage_prompts(chat_template: str, prompts: dict, image_token: str) -> str:
    """
    `chat_template` with `stage` parts: a prelude rewrites every message that has one, then the template renders.

    In such a message the stage part becomes the question of the `prompt_style` template argument (default `code`)
    with each `<image>` marker replaced by `image_token`, and its `image` parts are dropped (they only supply pixels);
    when only text is left, the content becomes one string, which every chat template renders (`init-tiny`'s template
    is ChatML behind this prelude). Other messages are left as they are (a rewritten message keeps only `role` and
    `content`), so any chat template (a converted checkpoint's conversation template, a native checkpoint's own)
    keeps its rendering.

    Args:
        chat_template (`str`): The Jinja chat template to extend.
        prompts (`dict`): Prompt style name -> table, as `OccInternVLConfig.prompts`.
        image_token (`str`): The processor's image placeholder, e.g. `<IMG_CONTEXT>`.

    Returns:
        `str`: The extended template.
    """
    prelude = (
        "{%- set stage_prompts = "
        + json.dumps(stage_prompt_tables(prompts))
        + " -%}"
        + stage_style_jinja("stage_prompts", "stage_style")
        + "{%- set staged = namespace(messages=[]) -%}"
        "{%- for message in messages -%}"
        "{%- if message['content'] is string "
        "or not (message['content'] | selectattr('type', 'equalto', 'stage') | list) -%}"
        "{%- set staged.messages = staged.messages + [message] -%}"
        "{%- else -%}"
        "{%- set parts = namespace(items=[]) -%}"
        "{%- for part in message['content'] if part['type'] != 'image' -%}"
        "{%- if part['type'] == 'stage' -%}"
        + stage_question_jinja("stage_style")
        + "{%- set parts.items = parts.items + [{'type': 'text', 'text': question | replace("
        + json.dumps(IMAGE_MARKER)
        + ", "
        + json.dumps(image_token)
        + ")}] -%}"
        "{%- else -%}{%- set parts.items = parts.items + [part] -%}{%- endif -%}"
        "{%- endfor -%}"
        "{%- set content = parts.items if parts.items | rejectattr('type', 'equalto', 'text') | list "
        "else parts.items | map(attribute='text') | join('') -%}"
        "{%- set staged.messages = staged.messages + [{'role': message['role'], 'content': content}] -%}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- set messages = staged.messages -%}"
    )
    return prelude + chat_template


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
    return question_parts(question, [{"type": "image", "image": image} for image in images])


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


__all__ = [
    "IMAGE_TOKENS",
    "OccInternVLProcessor",
    "add_stage_prompts",
    "question_content",
    "stage_prompt_tables",
    "stage_question_jinja",
    "stage_style_jinja",
]
