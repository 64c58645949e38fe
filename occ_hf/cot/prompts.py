"""The prompt strings of OCC-MLLM-CoT, in two styles, as plain Python (no transformers import).

- `code`: the strings of the seed's released code and data, byte for byte (`train_Q1_10140.jsonl`,
  `train_Q1_Q6_10140.jsonl`, `train_Q1_Q6_Q0_4_balanced_10140.jsonl`, `inferenceImageAcc.py`).
- `paper`: the questions of the paper's stage figure (`paper_stages_figure.jpg`: Q1-Q3 round/thin/long, Q4 clarity,
  Q5 class), with the figure's typos ("obejct", "oject") corrected.

Beside them, `EVALUATION_PROMPT_STYLES` holds styles that change only what is asked at inference, for scoring a
released checkpoint as its published figures were scored (`occ-hf eval --model M --prompt_style code_published`):

- `code_published`: `code` except the clarity question, sent as `"Is it clear to identify the object in the hand??\n"`
  (two question marks), byte for byte as the three `inferenceImageAcc.py` of the seed that produced the published
  figures send it; the seed's `src/inference.py` and its training data ask it with one (`code`).

Datasets are built and the tiny tokenizer is trained on `PROMPT_STYLES` only (the seed trained on `code`'s strings),
so adding an evaluation style changes no training row and no token id; every saved checkpoint's `config.prompts`
holds both kinds ([`checkpoint_prompt_tables`]).

`<image>` marks where an image goes, as in InternVL's chat jsonl. The dataset builder and the model package both read
this module; the model package copies the tables into each saved checkpoint (`config.prompts` and the chat
template), so a checkpoint loaded with `trust_remote_code=True` does not need occ-hf.

```python
from occ_hf.cot.prompts import get_prompt_style

style = get_prompt_style("code")
style.describe[0]                 # "What's the object in the hand?\n<image>"
style.answer("bottle")            # "The object is bottle."
style.parse_class("The object is bottle.", ["bottle", "jar"])   # "bottle"
```
"""

import re
from dataclasses import asdict, dataclass, replace


__all__ = [
    "COT_ANSWER",
    "COT_QUESTION",
    "EVALUATION_PROMPT_STYLES",
    "IMAGE_PLACEHOLDER",
    "PROMPT_STYLES",
    "PUBLISHED_CLARITY_QUESTION",
    "PromptStyle",
    "checkpoint_prompt_tables",
    "get_prompt_style",
    "parse_clarity",
]

IMAGE_PLACEHOLDER = "<image>"

# The seed's chain-of-thought sample (Q0), `train_Q1_Q6_Q0_4_balanced_10140.jsonl`; "orignal" is the seed's spelling.
COT_QUESTION = "Please analyze this image step by step.\n<image>"
COT_ANSWER = (
    "Step 1: I will analyze this RGB image and identify the object in the hand. Step 2: I will assess whether the "
    "object in the hand can be clearly identified from the original image. Step 3: Based on the assessment in Step 2, "
    "if clear: I will describe the object based on orignal features present in the image; if unclear: I will apply a "
    "3D reconstruction model to render an enhanced version of the image, then use this rendered image to identify the "
    "object."
)


@dataclass(frozen=True)
class PromptStyle:
    r"""
    The questions and answer formats of one prompt style.

    Parameters:
        name (`str`): `"code"`, `"paper"` or `"code_published"`.
        describe (`tuple[str, ...]`): Stage 1 questions, asked in one conversation on the RGB image; the first
            carries the `<image>` marker.
        class_in_describe (`bool`): Whether the last describe answer names the class (`code`: Q1), or the class comes
            from the `decide` question (`paper`: Q5, asked in the same conversation when the image is clear).
        reflect (`str`): Stage 2 clarity question, asked with the describe turns as history (training string).
        reflect_at_inference (`str`): The clarity question as the inference code sends it (`code`: with the trailing
            `"\n"` of `inferenceImageAcc.py`).
        decide (`str`): Stage 3 class question asked without history on the 3D view when the answer to `reflect` is
            no; it carries the `<image>` marker.
        decide_in_conversation (`str`): The class question asked in the conversation when the image is clear and the
            describe stage did not name the class (only used when `class_in_describe` is false).
        joint (`str`): The class question with two `<image>` markers, the RGB image then the 3D view (the `joint`
            policy, beyond the seed).
        answer_template (`str`): Answer naming the class, with `{class_name}`.
        yes (`str`), no (`str`): Answers to yes/no questions.
    """

    name: str
    describe: tuple[str, ...]
    class_in_describe: bool
    reflect: str
    reflect_at_inference: str
    decide: str
    decide_in_conversation: str
    joint: str
    answer_template: str
    yes: str
    no: str

    def answer(self, class_name: str) -> str:
        """The answer naming `class_name` in this style."""
        return self.answer_template.format(class_name=class_name)

    def parse_class(self, text: str, class_names: list[str] | tuple[str, ...]) -> str | None:
        """The class an answer names, matched exactly (case-sensitive, like the seed's metric), else `None`."""
        for class_name in class_names:
            if text.strip() == self.answer(class_name):
                return class_name
        return None

    def to_dict(self) -> dict:
        """The style as a JSON-serialisable dict (what a checkpoint's `config.prompts` holds per style)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def parse_clarity(text: str) -> bool | None:
    """`True` for yes, `False` for no, else `None`; lower-cased, stripped and "." removed, as the seed compares."""
    word = re.sub(r"\.", "", text.strip().lower())
    return {"yes": True, "no": False}.get(word)


_CODE_CLASS_QUESTION = "What's the object in the hand?\n<image>"
_PAPER_CLASS_QUESTION = "What is the object in the hand?"
_CLARITY_QUESTION = "Is it clear to identify the object in the hand?"

PROMPT_STYLES = {
    "code": PromptStyle(
        name="code",
        describe=(_CODE_CLASS_QUESTION,),
        class_in_describe=True,
        reflect=_CLARITY_QUESTION,
        reflect_at_inference=_CLARITY_QUESTION + "\n",
        decide=_CODE_CLASS_QUESTION,
        decide_in_conversation=_CODE_CLASS_QUESTION,
        joint="What's the object in the hand?\n<image>\nA 3D-reconstructed view of the object:\n<image>",
        answer_template="The object is {class_name}.",
        yes="Yes.",
        no="No.",
    ),
    "paper": PromptStyle(
        name="paper",
        describe=(
            "<image>\nIs the object in the hand round?",
            "Is the object in the hand thin?",
            "Is the object in the hand long?",
        ),
        class_in_describe=False,
        reflect=_CLARITY_QUESTION,
        reflect_at_inference=_CLARITY_QUESTION,
        decide="<image>\n" + _PAPER_CLASS_QUESTION,
        decide_in_conversation=_PAPER_CLASS_QUESTION,
        joint="<image>\nA 3D-reconstructed view of the object:\n<image>\n" + _PAPER_CLASS_QUESTION,
        answer_template="This object is {class_name}",
        yes="Yes",
        no="No",
    ),
}


# The clarity question of the three `inferenceImageAcc.py` behind the seed's published figures (two question marks).
PUBLISHED_CLARITY_QUESTION = _CLARITY_QUESTION + "?\n"

EVALUATION_PROMPT_STYLES = {
    "code_published": replace(
        PROMPT_STYLES["code"], name="code_published", reflect_at_inference=PUBLISHED_CLARITY_QUESTION
    ),
}


def checkpoint_prompt_tables() -> dict[str, dict]:
    """Every prompt style (`PROMPT_STYLES` and `EVALUATION_PROMPT_STYLES`) as the tables a checkpoint's
    `config.prompts` and chat template hold."""
    return {name: style.to_dict() for name, style in {**PROMPT_STYLES, **EVALUATION_PROMPT_STYLES}.items()}


def get_prompt_style(name: str) -> PromptStyle:
    """The prompt style called `name` that data is built with; raises a `ValueError` listing the styles for an unknown
    name, and saying where an evaluation style belongs for one of `EVALUATION_PROMPT_STYLES`."""
    if name in EVALUATION_PROMPT_STYLES:
        raise ValueError(
            f"Prompt style {name!r} only changes what is asked at evaluation (occ-hf eval --model M --prompt_style "
            f"{name}); build data with one of {sorted(PROMPT_STYLES)} ('code': the strings the seed trained on)."
        )
    if name not in PROMPT_STYLES:
        raise ValueError(f"Unknown prompt style {name!r}: choose one of {sorted(PROMPT_STYLES)}.")
    return PROMPT_STYLES[name]
