"""The chain of thought of OCC-MLLM-CoT: prompt styles (`code`, `paper`) and their answers.

```python
from occ_hf.cot import get_prompt_style

get_prompt_style("code").reflect   # "Is it clear to identify the object in the hand?"
```
"""

from .prompts import (
    COT_ANSWER,
    COT_QUESTION,
    IMAGE_PLACEHOLDER,
    PROMPT_STYLES,
    PromptStyle,
    get_prompt_style,
    parse_clarity,
)


__all__ = [
    "COT_ANSWER",
    "COT_QUESTION",
    "IMAGE_PLACEHOLDER",
    "PROMPT_STYLES",
    "PromptStyle",
    "get_prompt_style",
    "parse_clarity",
]
