"""The prompt style of OCC-MLLM-CoT: its questions, how an answer names a class, how a clarity answer reads.

This is the one home of that knowledge. It is copied next to every saved checkpoint with the modeling file (a relative
import of it, which `save_pretrained` follows), so it is plain Python with no import beyond the standard library:
remote code rebuilds a [`PromptStyle`] from `config.prompts` and reads answers with it, and occ-hf's own tables
(`occ_hf.cot.prompts`: `code`, `paper`, ...) are `PromptStyle`s too, so the dataset, the model and the metrics name a
class and read a clarity answer the same way.

```python
style = PromptStyle.from_dict("code", config.prompts["code"])
style.answer("bottle")                                   # "The object is bottle."
style.parse_class("The object is bottle.", ["bottle"])   # "bottle"
parse_clarity("Yes.")                                    # True
question_parts("What's the object in the hand?\\n<image>", [{"type": "image"}])
# [{"type": "text", "text": "What's the object in the hand?\\n"}, {"type": "image"}]
```
"""

from dataclasses import asdict, dataclass, fields


# Where an image goes in a question, as in InternVL's chat jsonl.
IMAGE_MARKER = "<image>"


def answer_text(template: str, class_name: str) -> str:
    """
    The answer that names `class_name` in `template`.

    A template names the class as `{class_name}` (a prompt table's `answer_template`, `"The object is
    {class_name}."`); a bare `{}` (`"The object is {}."`, the form `occ-hf eval --answer_template` first took) works
    too.
    """
    return template.format(class_name, class_name=class_name)


def parse_class_answer(text: str, template: str, class_names) -> str | None:
    """
    The class among `class_names` whose answer (by [`answer_text`]) `text` is exactly, else `None`.

    Nothing is stripped or lower-cased: the seed's metric compares answers exactly and case-sensitively, so parsing
    leniently here would let a class count that the metric scores wrong.
    """
    for class_name in class_names:
        if text == answer_text(template, class_name):
            return class_name
    return None


def normalize_clarity(text: str | None) -> str | None:
    """The seed's normalisation of a clarity answer: lower-cased, stripped, every `"."` removed.

    `"Yes."` and `" YES. "` give `"yes"`; `"Yes, it is."` gives `"yes, it is"`, which is neither `"yes"` nor `"no"`
    (the seed treats such an answer as neither clear nor unclear). `None` (no answer) stays `None`.
    """
    if text is None:
        return None
    return text.lower().strip().replace(".", "")


def parse_clarity(text: str) -> bool | None:
    """`True` for yes, `False` for no, else `None`, after [`normalize_clarity`] (as the seed compares)."""
    return {"yes": True, "no": False}.get(normalize_clarity(text))


def question_parts(question: str, image_parts: list[dict]) -> list[dict]:
    """
    Chat content for `question`: its text pieces as `text` parts, with `image_parts[i]` at its `i`-th `<image>`.

    Args:
        question (`str`): A question in InternVL's chat-jsonl form, e.g. `"What's the object in the hand?\\n<image>"`.
        image_parts (`list[dict]`): One content part per marker, in order (`{"type": "image", "image": rgb}` for a
            conversation to run, `{"type": "image", "text": None}` for a dataset row).

    Returns:
        `list[dict]`: The parts, in the question's order; an empty text piece gives no part.
    """
    pieces = question.split(IMAGE_MARKER)
    if len(pieces) - 1 != len(image_parts):
        raise ValueError(
            f"The question {question!r} has {len(pieces) - 1} {IMAGE_MARKER} marker(s) but {len(image_parts)} "
            "image(s) were given: pass one image per marker."
        )
    content = []
    for index, piece in enumerate(pieces):
        if index > 0:
            content.append(image_parts[index - 1])
        if piece:
            content.append({"type": "text", "text": piece})
    return content


@dataclass(frozen=True)
class PromptStyle:
    r"""
    The questions and answer formats of one prompt style.

    Parameters:
        name (`str`): `"code"`, `"paper"` or `"code_published"` for occ-hf's own styles.
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
        return answer_text(self.answer_template, class_name)

    def parse_class(self, text: str, class_names) -> str | None:
        """The class an answer names, matched exactly once stripped (case-sensitive, like the seed's metric), else
        `None`."""
        return parse_class_answer(text.strip(), self.answer_template, class_names)

    def to_dict(self) -> dict:
        """The style as a JSON-serialisable table (what a checkpoint's `config.prompts` holds per style)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, name: str, table: dict) -> "PromptStyle":
        """The style `name` rebuilt from its table (`config.prompts[name]`, which holds [`PROMPT_KEYS`])."""
        values = {key: table[key] for key in PROMPT_KEYS}
        return cls(name=name, **{**values, "describe": tuple(values["describe"])})


# The keys of a prompt table: every field of `PromptStyle` but its name (the table's key in `config.prompts`).
PROMPT_KEYS = tuple(field.name for field in fields(PromptStyle) if field.name != "name")


__all__ = [
    "IMAGE_MARKER",
    "PROMPT_KEYS",
    "PromptStyle",
    "answer_text",
    "normalize_clarity",
    "parse_class_answer",
    "parse_clarity",
    "question_parts",
]
