"""Runs `occ-hf ARGS...` with accelerate's FSDP engaged on CPU, for each process that `accelerate launch
--config_file recipes/accelerate_configs/fsdp.yaml` starts on a machine without a GPU.

accelerate 1.15 turns a run into `DistributedType.FSDP` only from a GPU-type distributed type (`AcceleratorState`
upgrades MULTI_GPU, MULTI_XPU, ... but not MULTI_CPU), so on CPU the shipped FSDP config trains as plain DDP, with no
error or warning. torch's FSDP2 (`fully_shard`) itself runs on CPU over gloo: this launcher makes the same upgrade for
MULTI_CPU that accelerate makes for GPUs, and everything else (sharding, the full-state-dict gather when saving,
the FSDP checkpoint and its resume) is accelerate's, transformers' and torch's own code path.

```bash
accelerate launch --config_file recipes/accelerate_configs/fsdp.yaml --num_processes 2 --mixed_precision no \
    tests/train/fsdp_on_cpu.py train sft --config recipes/tiny/sft_reflection.yaml
```
"""

import os
import sys

from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

from occ_hf import cli


_accelerator_state_init = AcceleratorState.__init__


def _init_with_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    _accelerator_state_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    # Every AcceleratorState() copies the process state (MULTI_CPU) back in, so the upgrade is made each time.
    if self.distributed_type == DistributedType.MULTI_CPU and os.environ.get("ACCELERATE_USE_FSDP") == "true":
        plugin = fsdp_plugin or getattr(self, "fsdp_plugin", None) or FullyShardedDataParallelPlugin()
        if self.mixed_precision != "no":
            plugin.set_mixed_precision(self.mixed_precision)
        self.distributed_type, self.fsdp_plugin = DistributedType.FSDP, plugin


if __name__ == "__main__":
    AcceleratorState.__init__ = _init_with_fsdp_on_cpu
    cli.main(sys.argv[1:])
