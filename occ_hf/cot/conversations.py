"""Stage conversations as TRL reads them: structured messages with image parts, and preference pairs.

A user turn's text may hold `<image>` (InternVL's placeholder); it becomes a `{"type": "image"}` part at that place,
so the chat template puts the image tokens exactly where the seed's data put them. A first turn without `<image>`
gets the image in front, as InternVL's data loader does (`"<image>\\n" + question`).

```python
messages = reflection_messages(CODE_STYLE, "knife", clear=False)
# [{"role": "user", "content": [{"type": "text", "text": "What's the object in the hand?\\n"}, {"type": "image"}]},
#  {"role": "assistant", "content": [{"type": "text", "text": "The object is knife."}]}, ...]
```
"""

from .attributes import attribute_answers
from .prompts import IMAGE_TOKEN, PromptStyle


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
    if image_first and IMAGE_TOKEN not in text:
        return [{"type": "image", "text": None}, {"type": "text", "text": text}]
    content = []
    for index, piece in enumerate(text.split(IMAGE_TOKEN)):
        if index > 0:
            content.append({"type": "image", "text": None})
        if piece:
            content.append({"type": "text", "text": piece})
    return content


def content_to_text(content: list[dict], implicit_leading_image: bool = False) -> str:
    """Inverse of [`text_to_content`]: image parts back to `<image>`.

    With `implicit_leading_image`, a leading image part before text without `<image>` is dropped, as for a first
    turn that InternVL's loader gives the image to (the seed's DPO questions).
    """
    parts = list(content)
    images = sum(part["type"] == "image" for part in parts)
    if implicit_leading_image and images == 1 and parts and parts[0]["type"] == "image":
        parts = parts[1:]
    return "".join(IMAGE_TOKEN if part["type"] == "image" else part["text"] for part in parts)


def user_turn(text: str, image_first: bool = False) -> dict:
    return {"role": "user", "content": text_to_content(text, image_first=image_first)}


def assistant_turn(text: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def _clarity_answer(style: PromptStyle, clear: bool) -> str:
    # The seed's data answer "Yes." / "No."; the paper's figure "Yes" / "No".
    answer = "Yes" if clear else "No"
    return answer + "." if style.name == "code" else answer


def description_messages(style: PromptStyle, class_name: str) -> list[dict]:
    """Stage 1. `code`: the class question. `paper`: round, thin and long questions, then the class question."""
    turns = []
    for attribute, question in style.attribute_questions:
        turns += [user_turn(question, image_first=not turns), assistant_turn(attribute_answers(class_name)[attribute])]
    turns += [user_turn(style.class_question, image_first=not turns), assistant_turn(style.class_answer(class_name))]
    return turns


def reflection_messages(style: PromptStyle, class_name: str, clear: bool) -> list[dict]:
    """Stage 2: stage 1's turns, then the clarity question answered by `clear`."""
    return description_messages(style, class_name) + [
        user_turn(style.clarity_question),
        assistant_turn(_clarity_answer(style, clear)),
    ]


def decision_messages(style: PromptStyle, class_name: str) -> list[dict]:
    """Stage 3: the class question alone, asked on the 3D view (no history, as the seed's inference does)."""
    return [user_turn(style.class_question, image_first=True), assistant_turn(style.class_answer(class_name))]


def cot_messages(style: PromptStyle, class_name: str, clear: bool) -> list[dict]:
    """The chain of thought. `code`: the seed's step-by-step question and fixed answer. `paper`: the figure's
    whole chain in one conversation (attributes, clarity, then the class)."""
    if style.cot_question is not None:
        return [user_turn(style.cot_question), assistant_turn(style.cot_answer)]
    turns = []
    for attribute, question in style.attribute_questions:
        turns += [user_turn(question, image_first=not turns), assistant_turn(attribute_answers(class_name)[attribute])]
    turns += [user_turn(style.clarity_question), assistant_turn(_clarity_answer(style, clear))]
    turns += [user_turn(style.class_question), assistant_turn(style.class_answer(class_name))]
    return turns


def preference_pair(style: PromptStyle, clear: bool) -> dict:
    """MPO pair on the clarity question, without history (the seed's DPO rows): prompt, chosen, rejected."""
    right, wrong = _clarity_answer(style, clear), _clarity_answer(style, not clear)
    return {
        "prompt": [user_turn(style.clarity_question_inference, image_first=True)],
        "chosen": [assistant_turn(right)],
        "rejected": [assistant_turn(wrong)],
    }
