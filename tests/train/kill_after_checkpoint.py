"""Runs `occ-hf ARGS...` and kills its own process with SIGKILL right after checkpoint STEP is saved, as a crash,
an OOM kill or a pre-empted node would: no handler, no `finally`, no flush.

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
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    # Every Trainer built in this process starts with the default callbacks, this one among them.
    transformers.trainer.DEFAULT_CALLBACKS.append(KillAfterCheckpoint(int(sys.argv[1])))
    cli.main(sys.argv[2:])
