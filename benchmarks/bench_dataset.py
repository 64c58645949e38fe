"""Benchmark: building `occ-obman-cot` `reflection` rows against just reading the same files, in one run.

Baseline: read every file the builder touches for a sample (meta pickle with the restricted unpickler, segm PNG
decoded, RGB JPEG bytes), nothing else. Measured: `load_dataset("occ-obman-cot", "reflection", ...)` into a fresh
cache (rows, images decoded once for validation, Arrow writing). Reports samples/s per core and the ratio.

```bash
python benchmarks/bench_dataset.py                       # generates a 512-sample split in a temp folder
python benchmarks/bench_dataset.py --obman_root /data/obman --split train --max_samples 5000 --num_proc 4
```
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import occ_hf  # noqa: F401  (registers the builder)
from occ_hf.obman import ObManSplit, generate_obman_split, load_meta


def read_files(root: Path, split: str, ids: list[str]) -> None:
    for sample_id in ids:
        load_meta(root / split / "meta" / f"{sample_id}.pkl")
        np.asarray(Image.open(root / split / "segm" / f"{sample_id}.png"))
        (root / split / "rgb" / f"{sample_id}.jpg").read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--obman_root", help="ObMan root; default: generate one")
    parser.add_argument("--split", default="train")
    parser.add_argument("--n", type=int, default=512, help="samples to generate when no root is given")
    parser.add_argument("--max_samples", type=int, default=None)
    parser.add_argument("--num_proc", type=int, default=1)
    args = parser.parse_args()

    from datasets import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.obman_root) if args.obman_root else Path(tmp) / "obman"
        if not args.obman_root:
            generate_obman_split(root, n=args.n, split=args.split, num_proc=2, progress=False)
        ids = ObManSplit(root, args.split).ids[: args.max_samples]
        # Warm the page cache so that both measurements read from memory.
        read_files(root, args.split, ids)

        start = time.perf_counter()
        read_files(root, args.split, ids)
        read_seconds = time.perf_counter() - start

        start = time.perf_counter()
        dataset = load_dataset(
            "occ-obman-cot",
            "reflection",
            data_dir=str(root),
            split=args.split,
            max_samples=args.max_samples,
            num_proc=args.num_proc if args.num_proc > 1 else None,
            cache_dir=str(Path(tmp) / "cache"),
        )
        build_seconds = time.perf_counter() - start
        assert dataset.num_rows == len(ids)

    cores = args.num_proc
    print(f"samples: {len(ids)}, processes: {cores}")
    print(f"read the files only : {len(ids) / read_seconds:8.1f} samples/s")
    rate = len(ids) / build_seconds
    print(f"build reflection    : {rate:8.1f} samples/s ({rate / cores:.1f} per core)")
    print(f"build / read time   : {build_seconds / read_seconds:8.2f}x")


if __name__ == "__main__":
    main()
