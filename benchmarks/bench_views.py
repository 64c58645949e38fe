"""Views per second of the 3D-view renderers: torch one view at a time vs batched, and pyrender where it runs.

It generates a small ObMan-format split (the generator's procedural meshes, ~1,000-3,000 triangles each, like
MOHO's marching-cubes meshes after decimation), loads the known meshes, then renders every sample's input-camera
view plus `--num_orbit_views` orbit views at 256 x 256 with each configuration, `--repeats` times after one
warm-up pass, and reports the best time. The baseline is the torch backend at batch size 1 in the same run, so the
ratios hold on a loaded or a different machine; absolute views/s depend on it.

```bash
python benchmarks/bench_views.py                          # CPU: torch unbatched vs batched, pyrender if installed
python benchmarks/bench_views.py --device cuda            # GPU (needs trimesh, used by the generator)
python benchmarks/bench_views.py --device cuda --num_samples 256 --batch_size 64 --json results.json
```
"""

import argparse
import json
import platform
import tempfile
import time

import torch

from occ_hf.import_utils import is_pyrender_available
from occ_hf.obman import ObManSplit, generate_obman_split
from occ_hf.views import GroundTruthMesh, render_views


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="Torch device of the torch backend (cpu or cuda).")
    parser.add_argument("--num_samples", type=int, default=32, help="Generated samples (meshes) to render.")
    parser.add_argument("--num_orbit_views", type=int, default=1, help="Orbit views per sample, besides view 0.")
    parser.add_argument("--batch_size", type=int, default=32, help="Samples per call of the batched run.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed passes per configuration; the best counts.")
    parser.add_argument("--skip_pyrender", action="store_true", help="Do not time the pyrender backend.")
    parser.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    return parser


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(meshes, device: str, repeats: int, **kwargs) -> float:
    """Best wall time of `repeats` passes over all meshes, after one warm-up pass."""
    render_views(meshes, device=device, **kwargs)
    _synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        render_views(meshes, device=device, **kwargs)
        _synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def main(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as root:
        summary = generate_obman_split(root, n=args.num_samples, seed=0, split="test", progress=False)
        split = ObManSplit(root, "test", shapenet_root=summary.shapenet_root)
        meshes = [GroundTruthMesh().reconstruct(None, sample) for sample in split]
    num_views = len(meshes) * (1 + args.num_orbit_views)
    configurations = [
        ("torch, batch 1 (baseline)", {"backend": "torch", "batch_size": 1}),
        (f"torch, batch {args.batch_size}", {"backend": "torch", "batch_size": args.batch_size}),
    ]
    if is_pyrender_available() and not args.skip_pyrender:
        configurations.append(("pyrender (EGL, 2x oversampled), one view per draw", {"backend": "pyrender"}))

    results = {
        "device": torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else platform.processor(),
        "torch_threads": torch.get_num_threads(),
        "num_samples": len(meshes),
        "views_per_sample": 1 + args.num_orbit_views,
        "mean_faces": sum(len(mesh.faces) for mesh in meshes) / len(meshes),
        "runs": [],
    }
    baseline = None
    for name, kwargs in configurations:
        seconds = _time(meshes, args.device, args.repeats, num_orbit_views=args.num_orbit_views, **kwargs)
        views_per_second = num_views / seconds
        baseline = baseline or views_per_second
        results["runs"].append(
            {
                "configuration": name,
                "views_per_s": round(views_per_second, 1),
                "ms_per_view": round(1000 * seconds / num_views, 2),
                "vs_baseline": round(views_per_second / baseline, 2),
            }
        )

    print(
        f"{results['num_samples']} samples x {results['views_per_sample']} views, 256 x 256, "
        f"{results['mean_faces']:.0f} faces on average; torch device {args.device} ({results['device']}), "
        f"{results['torch_threads']} threads"
    )
    print(f"{'configuration':<52} {'views/s':>9} {'ms/view':>9} {'x baseline':>11}")
    for run in results["runs"]:
        print(f"{run['configuration']:<52} {run['views_per_s']:>9} {run['ms_per_view']:>9} {run['vs_baseline']:>11}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)
    return results


if __name__ == "__main__":
    main(make_parser().parse_args())
