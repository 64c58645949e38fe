"""Prompt styles, stage conversations and clarity labels of OCC-MLLM-CoT (no heavy imports)."""

from .attributes import CLASS_ATTRIBUTES, attribute_answers
from .clarity import ClarityLabeler
from .conversations import (
    content_to_text,
    cot_messages,
    decision_messages,
    description_messages,
    preference_pair,
    reflection_messages,
    text_to_content,
)
from .prompts import CODE_STYLE, IMAGE_TOKEN, PAPER_STYLE, PromptStyle, get_prompt_style, parse_clarity, parse_class


__all__ = [
    "CLASS_ATTRIBUTES",
    "CODE_STYLE",
    "ClarityLabeler",
    "IMAGE_TOKEN",
    "PAPER_STYLE",
    "PromptStyle",
    "attribute_answers",
    "content_to_text",
    "cot_messages",
    "decision_messages",
    "description_messages",
    "get_prompt_style",
    "parse_clarity",
    "parse_class",
    "preference_pair",
    "reflection_messages",
    "text_to_content",
]
