"""Runs `occ-hf ARGS...` and kills its own process with SIGKILL right after the first checkpoint at or past optimizer
step STEP is saved (1: the first checkpoint), as a crash, an OOM kill or a pre-empted node would: no handler, no
`finally`, no flush. A negative STEP never kills.

```bash
python tests/train/kill_after_checkpoint.py 3 train sft --config recipes/tiny/sft_reflection.yaml --save_steps 1
```
"""

import os
import signal
import sys

import transformers.trainer
from transformers import TrainerCallback

from occ_hf import cli


class KillAfterCheckpoint(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        # Trainer calls on_save once the checkpoint folder is complete (trainer_state.json written last).
        if 0 <= self.step <= state.global_step:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    # Every Trainer built in this process starts with the default callbacks, this one among them.
    transformers.trainer.DEFAULT_CALLBACKS.append(KillAfterCheckpoint(int(sys.argv[1])))
    cli.main(sys.argv[2:])
