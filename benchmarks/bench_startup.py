"""Benchmark: what occ-hf's start-up hook (`occ_hf-autoload.pth`, `_occ_hf_autoload.py`) adds to a Python start, in
one run.

Baseline: `python -c pass` with the hook switched off (`OCC_HF_AUTOLOAD=0`: site still reads the .pth line, which then
stops before importing anything). Measured: the same with the hook on (it imports its module and puts a finder in
`sys.meta_path`). Then the cost once the hook fires: `python -c "import datasets"` with the hook on (it imports
occ_hf, which registers `occ-obman-cot`) against the same with it off. Runs alternate between the two settings;
reports the median wall time of each and the ratios, and the hook module's own import time from `-X importtime` (the
start-up difference is below the noise of whole-process timings).

```bash
python benchmarks/bench_startup.py                        # this interpreter (occ-hf installed in it)
python benchmarks/bench_startup.py --python /tmp/v/bin/python --runs 40 --no_datasets
```
"""

import argparse
import os
import statistics
import subprocess
import sys
import time


PTH_NAME = "occ_hf-autoload.pth"


def timed_runs(python: str, code: str, runs: int) -> tuple[float, float]:
    """Median seconds of `python -c code` with the hook off, then on, over `runs` alternating pairs."""
    env = {key: value for key, value in os.environ.items() if key != "OCC_HF_AUTOLOAD"}
    seconds = {"0": [], "1": []}
    for _ in range(runs):
        for setting in ("0", "1"):
            start = time.perf_counter()
            subprocess.run([python, "-c", code], env={**env, "OCC_HF_AUTOLOAD": setting}, check=True)
            seconds[setting].append(time.perf_counter() - start)
    return statistics.median(seconds["0"]), statistics.median(seconds["1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter of the environment to measure")
    parser.add_argument("--runs", type=int, default=20, help="pairs of `python -c pass` runs")
    parser.add_argument("--datasets_runs", type=int, default=5, help="pairs of `import datasets` runs")
    parser.add_argument("--no_datasets", action="store_true", help="skip `import datasets` (not installed there)")
    args = parser.parse_args()

    check = (
        f"import site, os; print(any(os.path.isfile(os.path.join(d, {PTH_NAME!r})) for d in site.getsitepackages()))"
    )
    if subprocess.run([args.python, "-c", check], capture_output=True, text=True, check=True).stdout.strip() != "True":
        raise SystemExit(
            f"{args.python}: {PTH_NAME} is not in its site-packages; install occ-hf there (pip install -e .)."
        )

    importtime = subprocess.run([args.python, "-X", "importtime", "-c", "pass"], capture_output=True, text=True)
    hook_us = next(int(line.split("|")[1]) for line in importtime.stderr.splitlines() if "_occ_hf_autoload" in line)
    print(f"_occ_hf_autoload import (python -X importtime): {hook_us} us")
    off, on = timed_runs(args.python, "pass", args.runs)
    print(f"python -c pass:            hook off {off * 1e3:7.1f} ms   on {on * 1e3:7.1f} ms   ratio {on / off:.3f}")
    if not args.no_datasets:
        code = "import datasets"
        off, on = timed_runs(args.python, code, args.datasets_runs)
        print(
            f"python -c 'import datasets': hook off {off * 1e3:7.1f} ms   on {on * 1e3:7.1f} ms   ratio {on / off:.3f}"
        )


if __name__ == "__main__":
    main()
