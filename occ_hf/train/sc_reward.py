"""The self-correction reward of the seed's `sc` stage, and the two GRPO reward functions built on it.

The seed (OCC-MLLM, `occ-mllm-cot/src/SC/sc_trainer.py`, `ScTrainer.reward_function`) scores an answer against the
reference as 1.0 when the two agree after lower-casing and stripping, else 0.1 + 0.9 x string similarity, where the
similarity is one minus the Levenshtein distance over the longer length; the second attempt also gets
`alpha x (r2 - r1)` with alpha = 0.1 (SCoRe's reward shaping: a bonus for fixing a wrong first answer, a penalty for
breaking a right one).

```python
from occ_hf.train.sc_reward import attempt_reward, self_correction_reward

attempt_reward("The object is jar.", "The object is jar.")          # 1.0
attempt_reward("the object is jar", "The object is jar.")           # 0.95 = 0.1 + 0.9 * 17/18 (no ".")
self_correction_reward("The object is can.", "The object is jar.", "The object is jar.")
# SelfCorrectionReward(first=0.9, second=1.01): r1, then r2 + 0.1 * (r2 - r1)
```

For `GRPOTrainer`, [`self_correction_reward_funcs`] gives the two reward functions that the `sc` stage's trainer
scores each rollout with: `first_attempt_reward` (r1) and `second_attempt_reward` (the shaped r2). A rollout's
completion is the conversation `[attempt 1, the check-again question, attempt 2]` and the dataset's `reference` column
holds the expected answer.
"""

from typing import NamedTuple


__all__ = [
    "IMPROVEMENT_BONUS",
    "SelfCorrectionReward",
    "attempt_reward",
    "levenshtein_distance",
    "self_correction_reward",
    "self_correction_reward_funcs",
    "string_similarity",
]

IMPROVEMENT_BONUS = 0.1  # the seed's alpha (DESIGN.md section 1)


class SelfCorrectionReward(NamedTuple):
    """The rewards of one two-attempt rollout: `first` = r1, `second` = r2 + bonus x (r2 - r1)."""

    first: float
    second: float


def levenshtein_distance(a: str, b: str) -> int:
    """The number of single-character insertions, deletions and substitutions that turn `a` into `b`."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def string_similarity(a: str, b: str) -> float:
    """One minus the Levenshtein distance over the longer length (1.0 for two empty strings), as the seed computes it
    with `Levenshtein.distance`."""
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    return 1.0 - levenshtein_distance(a, b) / longest


def attempt_reward(answer: str, reference: str) -> float:
    """
    The seed's reward of one answer: 1.0 when it matches the reference, else 0.1 + 0.9 x [`string_similarity`].

    Both strings are lower-cased and stripped first, as the seed's `extract_answer` does (so the reward, unlike the
    Description metric, does not tell "The object is Jar." from "The object is jar.").

    Args:
        answer (`str`): The model's answer, e.g. `"The object is can."`.
        reference (`str`): The expected answer, e.g. `"The object is jar."`.

    Returns:
        `float`: in `[0.1, 1.0]`.
    """
    answer, reference = answer.lower().strip(), reference.lower().strip()
    if answer == reference:
        return 1.0
    return 0.1 + 0.9 * string_similarity(answer, reference)


def self_correction_reward(
    r1_text: str, r2_text: str, reference: str, improvement_bonus: float = IMPROVEMENT_BONUS
) -> SelfCorrectionReward:
    """
    The rewards of a two-attempt rollout: r1 for the first answer, r2 + `improvement_bonus` x (r2 - r1) for the second.

    Args:
        r1_text (`str`): The first attempt's answer.
        r2_text (`str`): The second attempt's answer (after "Please check again what's the object in the hand?").
        reference (`str`): The expected answer.
        improvement_bonus (`float`, *optional*, defaults to `0.1`): SCoRe's alpha, the seed's 0.1.

    Returns:
        [`SelfCorrectionReward`]: `(first, second)`.
    """
    first = attempt_reward(r1_text, reference)
    second = attempt_reward(r2_text, reference)
    return SelfCorrectionReward(first=first, second=second + improvement_bonus * (second - first))


def _attempt_texts(completion) -> tuple[str, str]:
    # A two-attempt completion is [assistant attempt 1, user check-again, assistant attempt 2].
    if not isinstance(completion, list) or len(completion) != 3:
        raise ValueError(
            "A self-correction completion is the conversation [attempt 1, the check-again question, attempt 2]; got "
            f"{completion!r}. These reward functions score rollouts of SelfCorrectionTrainer only."
        )
    return completion[0]["content"], completion[2]["content"]


def self_correction_reward_funcs(improvement_bonus: float = IMPROVEMENT_BONUS) -> list:
    """
    The two reward functions of the `sc` stage, in GRPO's reward-function form (`prompts`, `completions`, dataset
    columns as keyword arguments; one float per completion).

    Args:
        improvement_bonus (`float`, *optional*, defaults to `0.1`): SCoRe's alpha.

    Returns:
        `list`: `[first_attempt_reward, second_attempt_reward]`.
    """

    def first_attempt_reward(completions: list, reference: list[str], **kwargs) -> list[float]:
        """r1: the first attempt's answer against the reference."""
        return [attempt_reward(_attempt_texts(c)[0], ref) for c, ref in zip(completions, reference, strict=True)]

    def second_attempt_reward(completions: list, reference: list[str], **kwargs) -> list[float]:
        """r2 + alpha x (r2 - r1): the second attempt's answer, shaped by its improvement over the first."""
        return [
            self_correction_reward(*_attempt_texts(c), ref, improvement_bonus=improvement_bonus).second
            for c, ref in zip(completions, reference, strict=True)
        ]

    return [first_attempt_reward, second_attempt_reward]
