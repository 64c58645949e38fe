"""The chat template of an original InternVL checkpoint: its conversation template, rendered byte for byte in Jinja.

Part of the InternVL checkpoint converter, whose entry point is [`convert_checkpoint`] in `convert_occ_internvl.py`.
An original checkpoint is prompted through the conversation template that its config names (`template`, e.g.
`Hermes-2`, `internlm2-chat`, `phi3-chat`; OpenGVLab's `internvl/conversation.py`, MPT separator style), which is
what its `chat()` and its training scripts use. [`conversation_chat_template`] writes a chat template that renders
that conversation byte for byte (with the source's system message; images where `chat()` puts them), and
[`conversation_stop_token`] names the separator token that `chat()` stops generating on.

```python
chat_template = conversation_chat_template("Hermes-2", chat_config.get("system_message"))
```
"""

import json

from .convert_source import CheckpointConversionError


__all__ = ["conversation_chat_template", "conversation_stop_token"]

# name: (system template, user role, assistant role, separator, default system message)
_INTERNVL2_SYSTEM = (
    "你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。"
)
_CONVERSATION_TEMPLATES = {
    "Hermes-2": (
        "<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n", "<|im_end|>", _INTERNVL2_SYSTEM
    ),
    "internlm2-chat": (
        "<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n", "<|im_end|>", _INTERNVL2_SYSTEM
    ),
    "phi3-chat": ("<|system|>\n", "<|user|>\n", "<|assistant|>\n", "<|end|>", _INTERNVL2_SYSTEM),
    "internvl2_5": (
        "<|im_start|>system\n",
        "<|im_start|>user\n",
        "<|im_start|>assistant\n",
        "<|im_end|>\n",
        "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。",
    ),
}  # fmt: skip


def conversation_chat_template(
    name: str, system_message: str | None = None, image_token: str = "<IMG_CONTEXT>"
) -> str:
    """
    A Jinja chat template that renders exactly what an original InternVL conversation template produces.

    The original `get_prompt()` (MPT style) writes `system + sep`, then `role + message + sep` per turn, and the bare
    assistant role to prompt a reply. A `system` message in `messages` replaces the default system message, as
    setting `template.system_message` does. Structured content renders text parts verbatim and image parts as
    `image_token` (the processor expands it to `<img><IMG_CONTEXT>...</img>`, as `chat()` expands `<image>`): in
    place when text comes before it, as `chat()` puts an image at the `<image>` marker of its question (the seed's
    `"What's the object in the hand?\\n<image>"`); followed by `"\\n"` when it leads the message, as `chat()` prepends
    `"<image>\\n"` to a question without a marker (unless the text after it starts with a newline itself, as in
    `"<image>\\nIs the object round?"`). So a question split at its markers into parts renders as `chat()` renders it.

    Args:
        name (`str`): The config's `template`, e.g. `Hermes-2`, `internlm2-chat`, `phi3-chat`, `internvl2_5`.
        system_message (`str`, *optional*): The config's `system_message`; defaults to the template's own.
        image_token (`str`, *optional*, defaults to `"<IMG_CONTEXT>"`): The processor's image placeholder.

    Returns:
        `str`: The Jinja template.
    """
    system_prefix, user, assistant, sep, default_system = _conversation_template(name)
    system = default_system if system_message is None else system_message
    literal = json.dumps  # a JSON string is a valid Jinja string literal
    return (
        "{%- set ns = namespace(system=" + literal(system) + ") -%}"
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set ns.system = messages[0]['content'] if messages[0]['content'] is string "
        "else messages[0]['content'] | map(attribute='text') | join('') -%}"
        "{%- endif -%}"
        "{{- " + literal(system_prefix) + " + ns.system + " + literal(sep) + " -}}"
        "{%- for message in messages if message['role'] != 'system' -%}"
        "{{- " + literal(user) + " if message['role'] == 'user' else " + literal(assistant) + " -}}"
        "{%- if message['content'] is string -%}{{- message['content'] -}}"
        "{%- else -%}{%- set seen = namespace(text=false) -%}{%- for part in message['content'] -%}"
        "{%- if part['type'] == 'image' -%}{{- " + literal(image_token) + " -}}"
        "{%- set next = loop.nextitem if loop.nextitem is defined else {'type': 'none'} -%}"
        "{%- if not seen.text and not (next['type'] == 'text' and next['text'].startswith('\\n')) -%}"
        "{{- '\\n' -}}{%- endif -%}"
        "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- set seen.text = true -%}{%- endif -%}"
        "{%- endfor -%}{%- endif -%}"
        "{{- " + literal(sep) + " -}}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- " + literal(assistant) + " -}}{%- endif -%}"
    )


def conversation_stop_token(name: str) -> str:
    """
    The token that ends a turn of conversation template `name` (its separator, e.g. `<|im_end|>`), on which the
    original `chat()` stops generating rather than on the language model's own eos.

    Args:
        name (`str`): The config's `template`, e.g. `Hermes-2`.

    Returns:
        `str`: The token, without the newline that some separators carry.
    """
    return _conversation_template(name)[3].strip()


def _conversation_template(name: str) -> tuple[str, str, str, str, str]:
    if name not in _CONVERSATION_TEMPLATES:
        raise CheckpointConversionError(
            f"conversation template {name!r} is not known; expected one of {sorted(_CONVERSATION_TEMPLATES)}."
        )
    return _CONVERSATION_TEMPLATES[name]
