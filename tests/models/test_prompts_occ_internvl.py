import pytest

from occ_hf.cot.prompts import PROMPT_STYLES, checkpoint_prompt_tables
from occ_hf.eval.metrics import answer_class, expected_answer
from occ_hf.models.occ_internvl.prompts_occ_internvl import (
    PromptStyle,
    answer_text,
    parse_class_answer,
    question_parts,
)


def test_a_style_rebuilt_from_its_checkpoint_table_is_the_same_style():
    for name, table in checkpoint_prompt_tables().items():
        style = PromptStyle.from_dict(name, table)
        assert style.to_dict() == table
    assert PromptStyle.from_dict("code", checkpoint_prompt_tables()["code"]) == PROMPT_STYLES["code"]


def test_answer_templates_name_the_class_as_class_name_or_a_bare_brace():
    assert answer_text("The object is {class_name}.", "jar") == "The object is jar."
    assert answer_text("The object is {}.", "jar") == "The object is jar."  # occ-hf eval's earlier form
    assert expected_answer("jar", "The object is {}.") == expected_answer("jar") == "The object is jar."
    assert answer_class("The object is can.", template="The object is {}.") == "can"


def test_class_answers_match_exactly_and_styles_strip_first():
    assert parse_class_answer("The object is can.", "The object is {class_name}.", ["jar", "can"]) == "can"
    assert parse_class_answer(" The object is can.", "The object is {class_name}.", ["can"]) is None
    assert PROMPT_STYLES["code"].parse_class(" The object is can.\n", ["can"]) == "can"


def test_question_parts_put_each_image_at_its_marker():
    image = {"type": "image", "image": "rgb"}
    assert question_parts("What?\n<image>", [image]) == [{"type": "text", "text": "What?\n"}, image]
    assert question_parts("<image>\nWhat?", [image]) == [image, {"type": "text", "text": "\nWhat?"}]
    with pytest.raises(ValueError, match="has 1 <image> marker"):
        question_parts("What?\n<image>", [])
