"""`benchmarks/bench_eval.py` on CPU (tiny model): the seed loop, `recognize()` and `occ-hf eval` on one generated
split, and batched answers equal to the one-by-one seed loop in fp32."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_eval_tiny(tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_eval.py"), "--num_images", "8"]
    command += ["--batch_size", "3", "8"]
    subprocess.run([*command, "--work_dir", str(tmp_path / "work"), "--json", str(out)], check=True, timeout=600)
    runs = json.loads(out.read_text())["runs"]
    assert [run["run"] for run in runs] == [
        "seed loop",
        "recognize, batch 3",
        "recognize, batch 8",
        "occ-hf eval, dataset built",
        "occ-hf eval, dataset cached",
    ]
    assert all(run["images"] == 8 and run["images_per_s"] > 0 for run in runs)
    # Greedy answers of every stage equal the one-by-one path exactly in fp32, whatever the batch.
    assert [run["same_as_seed_loop"] for run in runs[1:3]] == [1.0, 1.0]
    assert set(runs[3]["metrics"]) == {"description", "decision"}
    assert runs[4]["metrics"] == runs[3]["metrics"]
