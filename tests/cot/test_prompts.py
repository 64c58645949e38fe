import json

import pytest

from occ_hf.cot.prompts import COT_ANSWER, COT_QUESTION, get_prompt_style, parse_clarity

from ..testing_utils import seed_file


def _turns(name):
    lines = seed_file(name).read_text().splitlines()
    return [json.loads(line)["conversations"] for line in lines]


def test_code_style_is_byte_identical_to_the_seed():
    style = get_prompt_style("code")
    humans = {turn["value"] for conversation in _turns("train_Q1_Q6_10140.head40.jsonl") for turn in conversation}
    assert style.describe[0] in humans and style.reflect in humans
    answers = {turn["value"] for c in _turns("train_Q1_10140.head20.jsonl") for turn in c if turn["from"] == "gpt"}
    assert answers <= {
        style.answer(name) for name in ("jar", "bottle", "cellphone", "bowl", "knife", "camera", "can", "remote")
    }
    dpo = [
        json.loads(line) for line in seed_file("train_Q1_Q6_balanced_dpo_10140.head40.jsonl").read_text().splitlines()
    ]
    assert {row["question"] for row in dpo} == {style.reflect_at_inference}
    assert {row["chosen"] for row in dpo} == {style.yes, style.no}
    cot = [t for c in _turns("train_Q1_Q6_Q0_4_balanced_10140.head20.jsonl") for t in c if t["value"] == COT_QUESTION]
    assert cot and COT_ANSWER in {
        t["value"] for c in _turns("train_Q1_Q6_Q0_4_balanced_10140.head20.jsonl") for t in c
    }


def test_parsing():
    code, paper = get_prompt_style("code"), get_prompt_style("paper")
    assert code.parse_class("The object is can.", ["can", "jar"]) == "can"
    assert code.parse_class("The object is Can.", ["can"]) is None  # case-sensitive, as the seed's metric
    assert paper.parse_class(paper.answer("bowl"), ["bowl"]) == "bowl"
    assert [parse_clarity(t) for t in ("Yes.", " no", "No.\n", "maybe")] == [True, False, False, None]
    with pytest.raises(ValueError, match="Unknown prompt style"):
        get_prompt_style("haiku")


def test_code_published_differs_from_code_only_in_the_clarity_question_sent():
    """The three inferenceImageAcc.py behind the published figures ask the clarity question with two '?'."""
    from dataclasses import asdict

    from occ_hf.cot.prompts import EVALUATION_PROMPT_STYLES, PROMPT_STYLES, checkpoint_prompt_tables

    published, code = EVALUATION_PROMPT_STYLES["code_published"], get_prompt_style("code")
    assert published.reflect_at_inference == "Is it clear to identify the object in the hand??\n"
    # `code` keeps the strings of src/inference.py and the training data, byte for byte.
    assert code.reflect_at_inference == "Is it clear to identify the object in the hand?\n"
    assert code.reflect == "Is it clear to identify the object in the hand?"
    assert code.describe == ("What's the object in the hand?\n<image>",)
    different = {key for key, value in asdict(published).items() if asdict(code)[key] != value}
    assert different == {"name", "reflect_at_inference"}
    assert list(PROMPT_STYLES) == ["code", "paper"]  # data and the tiny tokenizer are built from these only
    assert checkpoint_prompt_tables()["code_published"] == published.to_dict()
    with pytest.raises(ValueError, match=r"'code_published' only changes what is asked at evaluation .*'code'"):
        get_prompt_style("code_published")
