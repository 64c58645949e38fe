"""`OccInternVLConfig`: transformers' `InternVLConfig` plus what OCC-MLLM-CoT adds (classes, prompts, policy).

This file is copied next to every saved checkpoint (`auto_map`), so it imports only transformers and its siblings.

```python
from occ_hf.models.occ_internvl import OccInternVLConfig

config = OccInternVLConfig(prompt_style="paper", decision_policy="joint")
config.prompts["paper"]["reflect"]   # "Is it clear to identify the object in the hand?"
```
"""

from huggingface_hub.dataclasses import strict
from transformers import InternVLConfig

from .prompts_occ_internvl import PROMPT_KEYS


# A copy of occ_hf.obman.classes.OCC_CLASSES (tests/models/test_auto_classes.py checks they are equal): this file is
# copied next to checkpoints for trust_remote_code, where occ-hf may not be installed to import it from.
OCC_CLASS_NAMES = ("jar", "bottle", "cellphone", "bowl", "knife", "camera", "can", "remote")
DECISION_POLICIES = ("staged", "joint")


def _default_prompts() -> dict:
    # The tables live in occ_hf.cot.prompts (one source for the dataset and the model); a saved config.json carries
    # them, so this import only runs when a config is built from scratch, where occ-hf is installed.
    try:
        from occ_hf.cot.prompts import checkpoint_prompt_tables
    except ImportError as error:
        raise ValueError(
            "OccInternVLConfig needs `prompts` (a dict of prompt styles): pass it, load a saved config.json that has "
            "it, or install occ-hf, which provides the defaults."
        ) from error
    return checkpoint_prompt_tables()


@strict
class OccInternVLConfig(InternVLConfig):
    r"""
    Configuration of an [`OccInternVLForConditionalGeneration`]: an [`InternVLConfig`] with the fields below.
    The InternVL fields keep their meaning, except `tie_word_embeddings`, which defaults to `False` here since the
    InternVL2 checkpoints of OCC-MLLM-CoT have an untied LM head.

    Parameters:
        class_names (`list[str]`, *optional*, defaults to the 8 OCC-MLLM-CoT classes):
            Names the model answers with; `recognize` parses answers against them.
        prompt_style (`str`, *optional*, defaults to `"code"`):
            Which table of `prompts` `recognize` uses: `"code"` (the seed's strings), `"paper"` (the figure's) or
            `"code_published"` (`code` with the clarity question of the scripts behind the published figures).
        prompts (`dict`, *optional*, defaults to occ-hf's `code`, `paper` and `code_published` tables):
            Prompt style name -> table with the keys `describe`, `class_in_describe`, `reflect`,
            `reflect_at_inference`, `decide`, `decide_in_conversation`, `joint`, `answer_template`, `yes`, `no`
            (the fields of `PromptStyle`, prompts_occ_internvl.py). Stored in config.json so remote code needs no
            occ-hf.
        decision_policy (`str`, *optional*, defaults to `"staged"`):
            `"staged"`: describe, reflect, and re-ask on the 3D view when unclear (the seed); `"joint"`: one prompt
            with the RGB image and the 3D view, then reflect.
        max_new_tokens (`int`, *optional*, defaults to `16`):
            Tokens generated per stage by `recognize`.
        freeze_vision (`bool`, *optional*, defaults to `False`):
            Build the model with its vision tower frozen (`requires_grad=False`), as the seed trains it. A load-time
            switch, never saved in config.json: `from_pretrained(path, freeze_vision=True)`, which is what a recipe's
            `model_init_kwargs: {freeze_vision: true}` does under `occ-hf train` and TRL's `trl sft|dpo` alike.

    Example:

    ```python
    >>> config = OccInternVLConfig(text_config={"model_type": "qwen2", "hidden_size": 64}, prompt_style="paper")
    >>> config.model_type
    'occ_internvl'
    ```
    """

    model_type = "occ_internvl"

    class_names: list[str] | tuple[str, ...] | None = None
    prompt_style: str = "code"
    prompts: dict | None = None
    decision_policy: str = "staged"
    max_new_tokens: int = 16
    tie_word_embeddings: bool = False
    freeze_vision: bool = False

    def __post_init__(self, **kwargs):
        self.class_names = list(self.class_names if self.class_names is not None else OCC_CLASS_NAMES)
        if self.prompts is None:
            self.prompts = _default_prompts()
        super().__post_init__(**kwargs)

    def to_dict(self) -> dict:
        """[`~PreTrainedConfig.to_dict`] without `freeze_vision`: how a model is trained is the recipe's to say, so a
        checkpoint saved from a frozen run loads unfrozen unless its next recipe asks again."""
        output = super().to_dict()
        output.pop("freeze_vision", None)
        return output

    def validate_occ_fields(self):
        """Checks the OCC fields (a `validate_*` method: `@strict` runs it after `__init__`)."""
        if self.prompt_style not in self.prompts:
            raise ValueError(
                f"prompt_style {self.prompt_style!r} is not in config.prompts ({sorted(self.prompts)}): pick one of "
                "those or add its table."
            )
        for name, table in self.prompts.items():
            missing = [key for key in PROMPT_KEYS if key not in table]
            if missing:
                raise ValueError(
                    f"config.prompts[{name!r}] lacks {missing}: see PromptStyle in prompts_occ_internvl.py."
                )
        if self.decision_policy not in DECISION_POLICIES:
            raise ValueError(f"decision_policy {self.decision_policy!r} is unknown: use one of {DECISION_POLICIES}.")
        if len(set(self.class_names)) != len(self.class_names) or not self.class_names:
            raise ValueError(f"class_names must be distinct and non-empty, got {self.class_names}.")


__all__ = ["OccInternVLConfig"]
