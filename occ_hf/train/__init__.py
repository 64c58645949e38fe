"""Training on TRL: the `sft`, `mpo` and `sc` stages of OCC-MLLM-CoT, their configs, and the recipes' parser.

Each stage is a script in TRL's shape (`make_parser()` + `main(script_args, training_args, model_args, dataset_args)`,
parsed by `TrlParser`: `--config recipe.yaml`, flags override the YAML), run by `occ-hf train sft|mpo|sc`:

```bash
occ-hf train sft --config recipes/internvl2-1b/sft_description.yaml   # SFT1: the class question
occ-hf train sft --config recipes/internvl2-1b/sft_reflection.yaml    # SFT2: + the clarity question
occ-hf train mpo --config recipes/internvl2-1b/mpo.yaml               # MPO on the clarity preference pairs
occ-hf train sc --config recipes/internvl2-1b/sc.yaml                 # self-correction: two attempts, online RL
```

Configs: `OccSFTConfig` (TRL's `SFTConfig`), `OccMPOConfig` (TRL's `DPOConfig`), `OccSCConfig` (TRL's `GRPOConfig`,
trained by `SelfCorrectionTrainer`, a `GRPOTrainer` with two-attempt rollouts), `OccScriptArguments` (TRL's
`ScriptArguments`); the model and LoRA settings are TRL's `ModelConfig`. Importing this package imports TRL.
"""

from .mpo_config import OccMPOConfig
from .sc_config import OccSCConfig
from .script_arguments import LANGUAGE_MODEL_LORA_TARGETS, OccScriptArguments
from .sft_config import OccSFTConfig


__all__ = [
    "LANGUAGE_MODEL_LORA_TARGETS",
    "OccMPOConfig",
    "OccSCConfig",
    "OccSFTConfig",
    "OccScriptArguments",
    "STAGES",
]

STAGES = ("sft", "mpo", "sc")
