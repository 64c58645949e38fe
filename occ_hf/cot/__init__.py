"""The chain of thought of OCC-MLLM-CoT: prompt styles (`code`, `paper`), stage conversations and clarity labels.

Plain Python (no transformers import): the dataset builder and the model package both read it.

```python
from occ_hf.cot import get_prompt_style, reflection_messages

get_prompt_style("code").reflect   # "Is it clear to identify the object in the hand?"
```
"""

from .attributes import CLASS_ATTRIBUTES, attribute_of_question
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
from .prompts import (
    COT_ANSWER,
    COT_QUESTION,
    IMAGE_MARKER,
    PROMPT_STYLES,
    PromptStyle,
    get_prompt_style,
    parse_clarity,
)


__all__ = [
    "CLASS_ATTRIBUTES",
    "COT_ANSWER",
    "COT_QUESTION",
    "ClarityLabeler",
    "IMAGE_MARKER",
    "PROMPT_STYLES",
    "PromptStyle",
    "attribute_of_question",
    "content_to_text",
    "cot_messages",
    "decision_messages",
    "description_messages",
    "get_prompt_style",
    "parse_clarity",
    "preference_pair",
    "reflection_messages",
    "text_to_content",
]
