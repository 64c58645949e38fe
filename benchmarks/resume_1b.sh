#!/usr/bin/env bash
# The shipped 1B SFT recipe (recipes/internvl2-1b/sft_reflection.yaml: bf16, batch 4 x 8 accumulation, 4 workers,
# save_strategy epoch, 2 epochs) on a GPU, at InternVL2-1B's real shape (random weights: benchmarks/real_shape.py),
# three times on one generated train split: uninterrupted; killed with SIGKILL right after its epoch-1 checkpoint
# (tests/train/kill_after_checkpoint.py); resumed from that checkpoint with --resume_from_checkpoint last. Then the
# shipped MPO recipe from the uninterrupted run's model, saving a checkpoint every 2 steps. Prints the losses and the
# weight difference of the two final models (also to $OUT/resume_1b.json when OUT is set).
#
#   bash benchmarks/resume_1b.sh [N_TRAIN_SAMPLES]      # 128 by default: 4 optimizer steps an epoch
set -euo pipefail
N=${1:-128}
WORK=${WORK:-/tmp/resume_1b}
RECIPES=$PWD/recipes/internvl2-1b
KILLER=$PWD/tests/train/kill_after_checkpoint.py
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} HF_DATASETS_CACHE=$WORK/hf_cache TOKENIZERS_PARALLELISM=false
rm -rf "$WORK" && mkdir -p "$WORK"
python3 benchmarks/real_shape.py "$WORK/runs/occ-internvl2-1b-sft1" --shape 1b --device cuda
python3 -m occ_hf.cli synth-obman "$WORK/data/obman" --n "$N" --split train --seed 0 --num_proc 8
cd "$WORK"
sft() { python3 "$KILLER" "$1" train sft --config "$RECIPES/sft_reflection.yaml" --logging_steps 1 --output_dir "$2" "${@:3}"; }
time sft -1 runs/straight
set +e; time sft 1 runs/resumed; status=$?; set -e
echo "killed run: exit status $status (137 = SIGKILL); left: $(ls runs/resumed)"
time sft -1 runs/resumed --resume_from_checkpoint last
time python3 -m occ_hf.cli train mpo --config "$RECIPES/mpo.yaml" --model_name_or_path runs/straight \
    --output_dir runs/mpo --max_steps 4 --save_strategy steps --save_steps 2 --logging_steps 1
python3 - <<'EOF'
import json, os, torch
from safetensors.torch import load_file

def losses(run):
    state = json.load(open(f"runs/{run}/" + sorted(d for d in os.listdir(f"runs/{run}") if d.startswith("checkpoint-"))[-1] + "/trainer_state.json"))
    return {e["step"]: e["loss"] for e in state["log_history"] if "loss" in e}

a, b = load_file("runs/straight/model.safetensors"), load_file("runs/resumed/model.safetensors")
diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
start = load_file("runs/occ-internvl2-1b-sft1/model.safetensors")
moved = max((a[k].float() - start[k].float()).abs().max().item() for k in a if k in start)
result = {"losses_straight": losses("straight"), "losses_resumed": losses("resumed"), "max_abs_weight_diff": diff,
          "max_abs_change_from_start": moved, "same_keys": a.keys() == b.keys(), "mpo_checkpoints": sorted(os.listdir("runs/mpo")),
          "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
for name in ("transformers", "trl", "datasets", "accelerate"):
    result[name] = __import__(name).__version__
print(json.dumps(result, indent=1))
if os.environ.get("OUT"):
    json.dump(result, open(os.path.join(os.environ["OUT"], "resume_1b.json"), "w"), indent=1)
EOF
