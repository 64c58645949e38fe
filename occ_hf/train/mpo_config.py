"""`OccMPOConfig`: TRL's `DPOConfig` set up as InternVL's Mixed Preference Optimization, as the seed's MPO stage.

```python
from occ_hf.train import OccMPOConfig

args = OccMPOConfig(output_dir="runs/mpo")  # 0.8 sigmoid (DPO) + 0.2 bco_pair + 1.0 sft, lr 1e-5, 1 epoch
```
"""

from dataclasses import dataclass, field

from trl import DPOConfig


__all__ = ["OccMPOConfig"]

MPO_LOSS_TYPES = ["sigmoid", "bco_pair", "sft"]
MPO_LOSS_WEIGHTS = [0.8, 0.2, 1.0]


@dataclass
class OccMPOConfig(DPOConfig):
    r"""
    Configuration of the `mpo` stage: TRL's [`~trl.DPOConfig`] with the seed's MPO loss, a weighted sum of the
    preference loss (`sigmoid`, DPO), the quality loss (`bco_pair`) and the generation loss (`sft`, on the chosen
    answer). Every other field is TRL's.

    > These parameters have default values different from [`~trl.DPOConfig`]:
    > - `loss_type`: Defaults to `["sigmoid", "bco_pair", "sft"]` instead of `["sigmoid"]`.
    > - `loss_weights`: Defaults to `[0.8, 0.2, 1.0]` instead of `None`.
    > - `learning_rate`: Defaults to `1e-5` (the seed used 1e-5 to 5e-6) instead of `1e-6`.
    > - `num_train_epochs`: Defaults to `1` instead of `3` (the seed ran 1 to 3).
    > - `lr_scheduler_type`: Defaults to `"cosine"`, `warmup_steps` to `0.03` and `weight_decay` to `0.05`, as for SFT.
    > - `max_length`: Defaults to `4096` instead of `1024`.
    """

    loss_type: list[str] = field(
        default_factory=lambda: list(MPO_LOSS_TYPES),
        metadata={"help": "Loss terms, summed with `loss_weights` (MPO: sigmoid, bco_pair, sft)."},
    )
    loss_weights: list[float] | None = field(
        default_factory=lambda: list(MPO_LOSS_WEIGHTS), metadata={"help": "Weight of each term of `loss_type`."}
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "The initial learning rate for AdamW."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Total number of training epochs to perform."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "The scheduler type to use."})
    warmup_steps: float = field(
        default=0.03, metadata={"help": "Linear warmup: steps (an integer) or a ratio of the total steps (< 1)."}
    )
    weight_decay: float = field(default=0.05, metadata={"help": "Weight decay for AdamW."})
    max_length: int | None = field(
        default=4096, metadata={"help": "Maximum length of a tokenized prompt + answer (image tokens included)."}
    )
