"""Images per second of `recognize()` with and without KV-cache reuse across the turns of a conversation.

`recognize()` asks the describe question, then the clarity question with the first turn as history, then (for unclear
images) the class question on the 3D view. With `reuse_cache=True` the reflect turn keeps the describe turn's KV cache
(image tokens included) and feeds only the new tokens; with `reuse_cache=False` it prefills the whole conversation
again. Both modes run on the same images in the same process, interleaved, after one warm-up pass each; the best of
`--repeats` passes counts, and the ratio is reuse over recompute. The two modes must give the same answers: the
script checks that too.

By default the model is `occ-hf init-tiny`'s (~0.34M parameters, random, built here offline); `--model DIR` takes a
real checkpoint (e.g. a converted InternVL2). Images are random noise at 256 x 256, as ObMan's (no `datasets`
needed: torch, transformers, pillow, numpy and occ-hf's source tree suffice).

```bash
python benchmarks/bench_recognize.py                                   # CPU, tiny model
python benchmarks/bench_recognize.py --device cuda --batch_size 8 32 64
python benchmarks/bench_recognize.py --device cuda --model runs/occ-internvl-1b --dtype bfloat16 --json out.json
```
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


# Runnable from a bare checkout (the GPU machine gets the working tree, not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import occ_hf  # noqa: E402, F401  (registers OccInternVL with the Auto classes)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    parser.add_argument("--model", default=None, help="Checkpoint folder; default: a tiny random one built here.")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16.")
    parser.add_argument("--num_images", type=int, default=None, help="Images per pass; 32 on CPU, 256 on GPU.")
    parser.add_argument(
        "--batch_size", type=int, nargs="+", default=None, help="Images per batch; 8 32 on CPU, 8 32 128 on GPU."
    )
    parser.add_argument("--max_new_tokens", type=int, default=None, help="Tokens per stage (config's by default).")
    parser.add_argument("--repeats", type=int, default=3, help="Timed passes per configuration; the best counts.")
    parser.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    return parser


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _noise_images(count: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)) for _ in range(count)]


def main(args: argparse.Namespace) -> dict:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    on_gpu = args.device.startswith("cuda")
    args.num_images = args.num_images or (256 if on_gpu else 32)
    args.batch_size = args.batch_size or ([8, 32, 128] if on_gpu else [8, 32])
    with tempfile.TemporaryDirectory() as tiny_dir:
        model_dir = args.model
        if model_dir is None:
            from occ_hf.models.occ_internvl.tiny_occ_internvl import TinyOccInternVLConfig, init_tiny_checkpoint

            init_tiny_checkpoint(TinyOccInternVLConfig(output_dir=tiny_dir))
            model_dir = tiny_dir
        model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=getattr(torch, args.dtype))
        model = model.to(args.device).eval()
        processor = AutoProcessor.from_pretrained(model_dir)
    if not hasattr(model, "recognize"):
        sys.exit(f"{model_dir} is not an OccInternVL checkpoint (no recognize()); convert it with occ-hf first.")
    images, views = _noise_images(args.num_images, 0), _noise_images(args.num_images, 1)

    def run(batch_size: int, reuse_cache: bool):
        return model.recognize(
            images,
            views=views,
            processor=processor,
            batch_size=batch_size,
            reuse_cache=reuse_cache,
            max_new_tokens=args.max_new_tokens,
        )

    configurations = [(size, reuse) for size in args.batch_size for reuse in (False, True)]
    answers = {}
    for size, reuse in configurations:  # warm-up, and the answers each mode gives
        answers[size, reuse] = run(size, reuse)
    _synchronize(args.device)
    best = dict.fromkeys(configurations, float("inf"))
    for _ in range(args.repeats):
        # Interleaved, so that a machine whose load changes slows both modes alike.
        for size, reuse in configurations:
            start = time.perf_counter()
            run(size, reuse)
            _synchronize(args.device)
            best[size, reuse] = min(best[size, reuse], time.perf_counter() - start)

    results = {
        "device": torch.cuda.get_device_name(args.device)
        if on_gpu
        else f"{platform.machine()} CPU, {os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(),
        "model": args.model or "init-tiny (random)",
        "num_parameters": model.num_parameters(),
        "dtype": args.dtype,
        "num_images": args.num_images,
        "used_view": sum(r.used_view for r in answers[configurations[0]]),
        "runs": [],
    }
    print(
        f"{args.num_images} images (256 x 256), {results['used_view']} sent to their view; model {results['model']}, "
        f"{results['num_parameters']:,} parameters, {args.dtype}; device {args.device} ({results['device']}), "
        f"{results['torch_threads']} threads"
    )
    print(f"{'batch':>6} {'recompute img/s':>16} {'reuse img/s':>12} {'reuse / recompute':>18} {'same answers':>13}")
    for size in args.batch_size:
        recompute, reuse = args.num_images / best[size, False], args.num_images / best[size, True]
        same = answers[size, False] == answers[size, True]
        results["runs"].append(
            {
                "batch_size": size,
                "recompute_images_per_s": round(recompute, 2),
                "reuse_images_per_s": round(reuse, 2),
                "reuse_vs_recompute": round(reuse / recompute, 3),
                "same_answers": same,
            }
        )
        print(f"{size:>6} {recompute:>16.2f} {reuse:>12.2f} {reuse / recompute:>18.3f} {str(same):>13}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)
    return results


if __name__ == "__main__":
    main(make_parser().parse_args())
