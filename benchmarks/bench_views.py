"""Views per second of the 3D-view renderers: torch one view at a time vs batched, and pyrender where it runs.

It generates a small ObMan-format split and loads its known meshes (the generator's procedural meshes have ~200
triangles; `--subdivisions k` splits every triangle into 4^k, to reach the ~3,000-50,000 of a marching-cubes mesh
such as MOHO's), then renders every sample's input-camera view plus `--num_orbit_views` orbit views at 256 x 256
with each configuration, `--repeats` times after one warm-up pass, and reports the best time. The baseline is the
torch backend at batch size 1 in the same run, so the ratios hold on a loaded or a different machine; absolute
views/s depend on it.

```bash
python benchmarks/bench_views.py                          # CPU: torch unbatched vs batched, pyrender if installed
python benchmarks/bench_views.py --device cuda            # GPU (needs trimesh, used by the generator)
python benchmarks/bench_views.py --device cuda --subdivisions 2 --json results.json
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

import torch


# Runnable from a bare checkout (the GPU machine gets the working tree, not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
try:
    import trimesh

    from occ_hf.import_utils import is_pyrender_available, is_pytorch3d_available
    from occ_hf.obman import ObManSplit, generate_obman_split
    from occ_hf.views import GroundTruthMesh, ObjectMesh, render_views
except ImportError as error:
    sys.exit(f"bench_views.py needs occ-hf's dependencies ({error}); e.g. pip install trimesh pillow tqdm.")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="Torch device of the torch backend (cpu or cuda).")
    parser.add_argument(
        "--num_samples", type=int, default=None, help="Generated samples (meshes) to render; 32 on CPU, 256 on GPU."
    )
    parser.add_argument("--num_orbit_views", type=int, default=1, help="Orbit views per sample, besides view 0.")
    parser.add_argument(
        "--batch_size",
        type=int,
        nargs="+",
        default=None,
        help="Samples per batched call; 8 32 on CPU, 8 64 256 on GPU.",
    )
    parser.add_argument("--subdivisions", type=int, default=0, help="Split each triangle into 4^k (denser meshes).")
    parser.add_argument("--repeats", type=int, default=5, help="Timed passes per configuration; the best counts.")
    parser.add_argument("--skip_pyrender", action="store_true", help="Do not time the pyrender backend.")
    parser.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    return parser


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time_all(meshes, device: str, repeats: int, configurations: list[dict]) -> list[float]:
    """Best wall time of each configuration over `repeats` passes, after one warm-up pass each.

    Passes are interleaved (every configuration once, then again), so a machine whose load changes during the run
    (a shared CI runner) slows all configurations alike and the ratios stay meaningful.
    """
    for kwargs in configurations:
        render_views(meshes, device=device, **kwargs)
    _synchronize(device)
    best = [float("inf")] * len(configurations)
    for _ in range(repeats):
        for index, kwargs in enumerate(configurations):
            start = time.perf_counter()
            render_views(meshes, device=device, **kwargs)
            _synchronize(device)
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def main(args: argparse.Namespace) -> dict:
    on_gpu = args.device.startswith("cuda")
    args.num_samples = args.num_samples or (256 if on_gpu else 32)
    args.batch_size = args.batch_size or ([8, 64, 256] if on_gpu else [8, 32])
    with tempfile.TemporaryDirectory() as root:
        # The generator renders on the CPU; use the cores for it.
        num_proc = min(8, os.cpu_count() or 1)
        summary = generate_obman_split(
            root, n=args.num_samples, seed=0, split="test", batch_size=16, num_proc=num_proc, progress=False
        )
        split = ObManSplit(root, "test", shapenet_root=summary.shapenet_root)
        meshes = [GroundTruthMesh().reconstruct(None, sample) for sample in split]
    for _ in range(args.subdivisions):
        meshes = [ObjectMesh(*trimesh.remesh.subdivide(m.vertices, m.faces), m.object_to_camera) for m in meshes]
    num_views = len(meshes) * (1 + args.num_orbit_views)
    configurations = [
        ("torch, batch 1 (baseline)", {"backend": "torch", "batch_size": 1}),
    ] + [(f"torch, batch {size}", {"backend": "torch", "batch_size": size}) for size in args.batch_size]
    if is_pyrender_available() and not args.skip_pyrender:
        configurations.append(("pyrender (EGL, 8x oversampled), one view per draw", {"backend": "pyrender"}))
        configurations.append(
            ("pyrender (EGL, 2x oversampled), one view per draw", {"backend": "pyrender", "pyrender_oversample": 2})
        )
    if is_pytorch3d_available():
        configurations.append(("pytorch3d, batch 8", {"backend": "pytorch3d", "batch_size": 8}))

    results = {
        "device": torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else f"{platform.machine()} CPU, {os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(),
        "num_samples": len(meshes),
        "views_per_sample": 1 + args.num_orbit_views,
        "mean_faces": sum(len(mesh.faces) for mesh in meshes) / len(meshes),
        "runs": [],
    }
    timings = _time_all(
        meshes,
        args.device,
        args.repeats,
        [{"num_orbit_views": args.num_orbit_views, **kw} for _, kw in configurations],
    )
    baseline = None
    for (name, _), seconds in zip(configurations, timings, strict=True):
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
