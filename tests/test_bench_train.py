"""`benchmarks/bench_train.py --shape tiny` runs on CPU: stock TRL and `occ-hf train` on the same rows, one JSON."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["sft", "mpo"])
def test_bench_train_tiny_trains_the_same_function(stage, tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--stage", stage, "--shape", "tiny"]
    command += ["--runs", "stock", "ours", "--steps", "3", "--warmup", "1", "--work_dir", str(tmp_path / "work")]
    subprocess.run([*command, "--json", str(out)], check=True, cwd=tmp_path, timeout=600)
    report = json.loads(out.read_text())
    assert [run["run"] for run in report["runs"]] == ["stock", "ours"]
    stock, ours = report["runs"]
    assert stock["args"]["gradient_checkpointing"] is True and ours["args"]["gradient_checkpointing"] is False
    for run in report["runs"]:
        assert run["samples_per_s"] > 0 and run["mfu"] is None  # no MFU without a GPU peak
        assert [step for step, _ in run["losses"]] == [1, 2, 3]
    # The speed settings differ, the function does not: the same losses on the same rows and seed.
    assert [loss for _, loss in ours["losses"]] == pytest.approx([loss for _, loss in stock["losses"]], abs=1e-3)
    assert report["model"]["tokens_per_sample"] > report["model"]["image_tokens"]
