#!/usr/bin/env bash
# The shipped 1B SFT recipe (recipes/internvl2-1b/sft_reflection.yaml: bf16, batch 4 x 8 accumulation, 4 workers,
# save_strategy epoch, 2 epochs) on a GPU, at InternVL2-1B's real shape (random weights: benchmarks/real_shape.py),
# on one generated train split: uninterrupted, twice (bf16 kernels are not bit-reproducible on a GPU: the two give the
# noise floor); killed with SIGKILL right after its epoch-1 checkpoint (tests/train/kill_after_checkpoint.py), then
# resumed from that checkpoint with --resume_from_checkpoint last. Then the shipped MPO recipe from the uninterrupted
# run's model, saving a checkpoint every 2 steps. Prints the losses and how far the final weights are apart: the
# resumed run from the first uninterrupted one, against the second uninterrupted one from the first, each as a share
# of how far training moved the weights (also to $OUT/resume_1b.json when OUT is set).
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
time sft -1 runs/straight2
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

def distance(x, y):  # the L2 distance of two state dicts, over the tensors they share
    return sum(((x[k].double() - y[k].double()) ** 2).sum().item() for k in x if k in y) ** 0.5

a, b, a2 = (load_file(f"runs/{run}/model.safetensors") for run in ("straight", "resumed", "straight2"))
start = load_file("runs/occ-internvl2-1b-sft1/model.safetensors")
moved = distance(a, start)
result = {"losses_straight": losses("straight"), "losses_straight2": losses("straight2"),
          "losses_resumed": losses("resumed"), "same_keys": a.keys() == b.keys() == a2.keys(),
          "training_moved_weights_l2": moved,
          "resumed_vs_straight_relative": distance(b, a) / moved, "straight2_vs_straight_relative": distance(a2, a) / moved,
          "max_abs_resumed_vs_straight": max((a[k].float() - b[k].float()).abs().max().item() for k in a),
          "max_abs_straight2_vs_straight": max((a[k].float() - a2[k].float()).abs().max().item() for k in a),
          "mpo_checkpoints": sorted(os.listdir("runs/mpo")),
          "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
for name in ("transformers", "trl", "datasets", "accelerate"):
    result[name] = __import__(name).__version__
print(json.dumps(result, indent=1))
if os.environ.get("OUT"):
    json.dump(result, open(os.path.join(os.environ["OUT"], "resume_1b.json"), "w"), indent=1)
EOF
