"""Stage conversations as TRL reads them: structured messages with image parts, and preference pairs.

A user turn's text may hold `<image>` (InternVL's placeholder); it becomes a `{"type": "image"}` part at that place,
so the chat template puts the image tokens exactly where the seed's data put them. A preference prompt without
`<image>` gets the image in front, as InternVL's data loader does for the seed's DPO questions.

```python
messages = reflection_messages(get_prompt_style("code"), "knife", clear=False)
# [{"role": "user", "content": [{"type": "text", "text": "What's the object in the hand?\\n"}, {"type": "image"}]},
#  {"role": "assistant", "content": [{"type": "text", "text": "The object is knife."}]}, ...]
```
"""

from ..models.occ_internvl.prompts_occ_internvl import question_parts
from .attributes import CLASS_ATTRIBUTES, attribute_of_question
from .prompts import COT_ANSWER, COT_QUESTION, IMAGE_MARKER, PromptStyle


__all__ = [
    "assistant_turn",
    "content_to_text",
    "cot_messages",
    "decision_messages",
    "description_messages",
    "preference_pair",
    "reflection_messages",
    "text_to_content",
    "user_turn",
]


def text_to_content(text: str, image_first: bool = False) -> list[dict]:
    """Splits text at `<image>` into text and image parts; `image_first` puts one image before text without any."""
    if image_first and IMAGE_MARKER not in text:
        return [{"type": "image", "text": None}, {"type": "text", "text": text}]
    return question_parts(text, [{"type": "image", "text": None} for _ in range(text.count(IMAGE_MARKER))])


def content_to_text(content: list[dict], implicit_leading_image: bool = False) -> str:
    """Inverse of [`text_to_content`]: image parts back to `<image>`.

    With `implicit_leading_image`, a single leading image part is dropped, as for a prompt that InternVL's loader
    gives the image to (the seed's DPO questions).
    """
    parts = list(content)
    images = sum(part["type"] == "image" for part in parts)
    if implicit_leading_image and images == 1 and parts and parts[0]["type"] == "image":
        parts = parts[1:]
    return "".join(IMAGE_MARKER if part["type"] == "image" else part["text"] for part in parts)


def user_turn(text: str, image_first: bool = False) -> dict:
    return {"role": "user", "content": text_to_content(text, image_first=image_first)}


def assistant_turn(text: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def description_messages(style: PromptStyle, class_name: str) -> list[dict]:
    """Stage 1. `code`: the class question. `paper`: the round, thin and long questions."""
    turns = []
    for index, question in enumerate(style.describe):
        if style.class_in_describe and index == len(style.describe) - 1:
            answer = style.answer(class_name)
        else:
            answer = style.yes if CLASS_ATTRIBUTES[class_name][attribute_of_question(question)] else style.no
        turns += [user_turn(question), assistant_turn(answer)]
    return turns


def reflection_messages(style: PromptStyle, class_name: str, clear: bool) -> list[dict]:
    """Stage 2: stage 1's turns, then the clarity question answered by `clear`."""
    return description_messages(style, class_name) + [
        user_turn(style.reflect),
        assistant_turn(style.yes if clear else style.no),
    ]


def decision_messages(style: PromptStyle, class_name: str) -> list[dict]:
    """Stage 3: the class question alone, asked on the 3D view (no history, as the seed's inference does)."""
    return [user_turn(style.decide), assistant_turn(style.answer(class_name))]


def cot_messages(style: PromptStyle, class_name: str, clear: bool) -> list[dict]:
    """The chain of thought. `code`: the seed's step-by-step question and fixed answer (Q0). `paper`: the figure's
    whole chain in one conversation: attributes, clarity, then the class."""
    if style.name == "code":
        return [user_turn(COT_QUESTION), assistant_turn(COT_ANSWER)]
    return reflection_messages(style, class_name, clear) + [
        user_turn(style.decide_in_conversation),
        assistant_turn(style.answer(class_name)),
    ]


def preference_pair(style: PromptStyle, clear: bool) -> dict:
    """MPO pair on the clarity question, without history (the seed's DPO rows): prompt, chosen, rejected."""
    right, wrong = (style.yes, style.no) if clear else (style.no, style.yes)
    return {
        "prompt": [user_turn(style.reflect_at_inference, image_first=True)],
        "chosen": [assistant_turn(right)],
        "rejected": [assistant_turn(wrong)],
    }
