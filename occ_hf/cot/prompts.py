"""The stage prompts and answers of OCC-MLLM-CoT, in two styles.

- `code`: the strings of the seed's released code and data, byte for byte (chaoyiwang09/OCC-MLLM training jsonl and
  `inferenceImageAcc.py`). `<image>` marks where the image goes in InternVL's chat format.
- `paper`: the questions of the paper's stage figure (`seed/paper_stages_figure.jpg`): attribute questions (round,
  thin, long), the clarity question and the final decision question, with the figure's typos ("obejct",
  "oject") corrected and its answer form "This object is cellphone" (no full stop) kept. Its questions carry no
  `<image>`: as in InternVL's data loader, the image goes before the first question of a conversation.

Everything downstream (dataset rows, the model's chat template, evaluation parsing) takes its strings from here.

```python
style = get_prompt_style("code")
style.class_question        # "What's the object in the hand?\\n<image>"
style.class_answer("knife") # "The object is knife."
```
"""

import re
from dataclasses import dataclass

from ..obman.classes import OCC_CLASSES


__all__ = [
    "CODE_STYLE",
    "IMAGE_TOKEN",
    "PAPER_STYLE",
    "PROMPT_STYLES",
    "PromptStyle",
    "get_prompt_style",
    "parse_class",
    "parse_clarity",
]

IMAGE_TOKEN = "<image>"


@dataclass(frozen=True)
class PromptStyle:
    """The strings of one prompt style.

    Attributes:
        name (`str`): `code` or `paper`.
        class_question (`str`): Asks for the class; `<image>` marks where the image goes, if the style says.
        class_answer_template (`str`): `{class_name}` is replaced by the class.
        clarity_question (`str`): Asks whether the object can be identified, as the training data write it.
        clarity_question_inference (`str`): The same question as the inference script sends it.
        recheck_question (`str`): The second attempt's question in self-correction.
        cot_question (`str` or `None`), cot_answer (`str` or `None`): The step-by-step question and its fixed answer.
        attribute_questions (`dict[str, str]`): Attribute name to question (`paper` style only).
    """

    name: str
    class_question: str
    class_answer_template: str
    clarity_question: str
    clarity_question_inference: str
    recheck_question: str
    cot_question: str | None = None
    cot_answer: str | None = None
    attribute_questions: tuple[tuple[str, str], ...] = ()

    def class_answer(self, class_name: str) -> str:
        """The target answer naming `class_name` ("The object is knife.")."""
        if class_name not in OCC_CLASSES:
            raise ValueError(f"Unknown class {class_name!r}; expected one of {list(OCC_CLASSES)}.")
        return self.class_answer_template.format(class_name=class_name)


CODE_STYLE = PromptStyle(
    name="code",
    class_question="What's the object in the hand?\n<image>",
    class_answer_template="The object is {class_name}.",
    clarity_question="Is it clear to identify the object in the hand?",
    clarity_question_inference="Is it clear to identify the object in the hand?\n",
    recheck_question="Please check again what's the object in the hand",
    cot_question="Please analyze this image step by step.\n<image>",
    # Byte for byte as released, including its typo ("orignal").
    cot_answer=(
        "Step 1: I will analyze this RGB image and identify the object in the hand. Step 2: I will assess whether the "
        "object in the hand can be clearly identified from the original image. Step 3: Based on the assessment in "
        "Step 2, if clear: I will describe the object based on orignal features present in the image; if unclear: I "
        "will apply a 3D reconstruction model to render an enhanced version of the image, then use this rendered "
        "image to identify the object."
    ),
)

PAPER_STYLE = PromptStyle(
    name="paper",
    class_question="What is the object in the hand?",
    class_answer_template="This object is {class_name}",
    clarity_question="Is it clear to identify the object in the hand?",
    clarity_question_inference="Is it clear to identify the object in the hand?",
    recheck_question="Please check again what is the object in the hand.",
    attribute_questions=(
        ("round", "Is the object in the hand round?"),
        ("thin", "Is the object in the hand thin?"),
        ("long", "Is the object in the hand long?"),
    ),
)

PROMPT_STYLES = {style.name: style for style in (CODE_STYLE, PAPER_STYLE)}

_CLASS_PATTERN = re.compile(r"\b(" + "|".join(OCC_CLASSES) + r")\b", re.IGNORECASE)


def get_prompt_style(name: str) -> PromptStyle:
    """The [`PromptStyle`] called `name` (`code` or `paper`)."""
    try:
        return PROMPT_STYLES[name]
    except KeyError:
        raise ValueError(f"Unknown prompt style {name!r}; expected one of {sorted(PROMPT_STYLES)}.") from None


def parse_class(answer: str) -> str | None:
    """The first OCC class an answer names ("The object is Knife." -> "knife"), or `None`."""
    match = _CLASS_PATTERN.search(answer)
    return match.group(1).lower() if match else None


def parse_clarity(answer: str) -> bool | None:
    """Clarity as the seed reads it: lower-cased, stripped, "." removed, then "yes" / "no"; else `None`."""
    normalized = answer.lower().strip().replace(".", "")
    return {"yes": True, "no": False}.get(normalized)
