"""`OccSCConfig`: TRL's `GRPOConfig` with the seed's self-correction (`sc`) stage settings.

```python
from occ_hf.train import OccSCConfig

args = OccSCConfig(output_dir="runs/sc")  # lr 4e-5, 2 epochs, cosine, 4 rollouts per image, alpha 0.1
args.check_again_question                 # "Please check again what's the object in the hand?"
```
"""

from dataclasses import dataclass, field

from trl import GRPOConfig

from .sc_reward import IMPROVEMENT_BONUS


__all__ = ["CHECK_AGAIN_QUESTION", "OccSCConfig"]

# The seed builds its second-attempt prompt by replacing "What's the object in the hand" with this in the class
# question, which keeps the question mark; here it is asked as a new turn after the first answer (the image is already
# in the conversation, so the "\n<image>" of the class question is not repeated).
CHECK_AGAIN_QUESTION = "Please check again what's the object in the hand?"


@dataclass
class OccSCConfig(GRPOConfig):
    r"""
    Configuration of the `sc` stage: TRL's [`~trl.GRPOConfig`] with the seed's self-correction settings
    (`occ-mllm-cot/src/SC/finetune-sc.sh` and `sc_trainer.py`, DESIGN.md section 1) and two fields of its own.
    Every other field is TRL's; `max_completion_length`, `temperature` and `top_p` apply to each attempt.

    Parameters:
        check_again_question (`str`, *optional*, defaults to `"Please check again what's the object in the hand?"`):
            The user turn between the two attempts.
        improvement_bonus (`float`, *optional*, defaults to `0.1`):
            SCoRe's alpha: the second attempt's reward is r2 + alpha x (r2 - r1).

    > These parameters have default values different from [`~trl.GRPOConfig`]:
    > - `learning_rate`: Defaults to `4e-5` (the seed's) instead of `1e-6`.
    > - `num_train_epochs`: Defaults to `2` (the seed's) instead of `3`.
    > - `lr_scheduler_type`: Defaults to `"cosine"`, `warmup_steps` to `0.03` and `weight_decay` to `0.05`, as in the
    >   seed's script.
    > - `top_p`: Defaults to `0.9` (the seed samples with top-p 0.9, temperature 1.0) instead of `1.0`.
    > - `max_completion_length`: Defaults to `64` tokens per attempt instead of `512`: an answer ("The object is
    >   cellphone.") takes under 10 tokens; the seed's 256 only lengthens runaway samples.
    > - `num_generations`: Defaults to `4` rollouts per image instead of `8` (the seed normalises each attempt's
    >   rewards over a batch of 4; GRPO normalises over the rollouts of one image).
    """

    check_again_question: str = field(
        default=CHECK_AGAIN_QUESTION, metadata={"help": "The user turn asked between the first and second attempt."}
    )
    improvement_bonus: float = field(
        default=IMPROVEMENT_BONUS,
        metadata={"help": "SCoRe's alpha: the second attempt's reward is r2 + alpha * (r2 - r1)."},
    )
    learning_rate: float = field(default=4e-5, metadata={"help": "The initial learning rate for AdamW."})
    num_train_epochs: float = field(default=2.0, metadata={"help": "Total number of training epochs to perform."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "The scheduler type to use."})
    warmup_steps: float = field(
        default=0.03, metadata={"help": "Linear warmup: steps (an integer) or a ratio of the total steps (< 1)."}
    )
    weight_decay: float = field(default=0.05, metadata={"help": "Weight decay for AdamW."})
    top_p: float = field(default=0.9, metadata={"help": "Top-p of the sampled attempts."})
    max_completion_length: int | None = field(
        default=64, metadata={"help": "Maximum number of generated tokens of each attempt."}
    )
    num_generations: int | None = field(
        default=4, metadata={"help": "Rollouts (two attempts each) per image; rewards are normalised over them."}
    )
