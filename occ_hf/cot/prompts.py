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

`<image>` (`IMAGE_MARKER`) marks where an image goes, as in InternVL's chat jsonl. The tables are `PromptStyle`s, a
class that lives in the model package (`occ_hf.models.occ_internvl.prompts_occ_internvl`, plain Python) because a
checkpoint loaded with `trust_remote_code=True` rebuilds its style from `config.prompts` with it and has no occ-hf to
import; this module holds the tables, which the dataset builder reads and the model package copies into each saved
checkpoint (`config.prompts` and the chat template).

```python
from occ_hf.cot.prompts import get_prompt_style

style = get_prompt_style("code")
style.describe[0]                 # "What's the object in the hand?\n<image>"
style.answer("bottle")            # "The object is bottle."
style.parse_class("The object is bottle.", ["bottle", "jar"])   # "bottle"
```
"""

from dataclasses import replace

from ..models.occ_internvl.prompts_occ_internvl import IMAGE_MARKER, PromptStyle, parse_clarity


__all__ = [
    "COT_ANSWER",
    "COT_QUESTION",
    "EVALUATION_PROMPT_STYLES",
    "IMAGE_MARKER",
    "PROMPT_STYLES",
    "PUBLISHED_CLARITY_QUESTION",
    "PromptStyle",
    "checkpoint_prompt_tables",
    "get_prompt_style",
    "parse_clarity",
]

# The seed's chain-of-thought sample (Q0), `train_Q1_Q6_Q0_4_balanced_10140.jsonl`; "orignal" is the seed's spelling.
COT_QUESTION = "Please analyze this image step by step.\n<image>"
COT_ANSWER = (
    "Step 1: I will analyze this RGB image and identify the object in the hand. Step 2: I will assess whether the "
    "object in the hand can be clearly identified from the original image. Step 3: Based on the assessment in Step 2, "
    "if clear: I will describe the object based on orignal features present in the image; if unclear: I will apply a "
    "3D reconstruction model to render an enhanced version of the image, then use this rendered image to identify the "
    "object."
)


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
