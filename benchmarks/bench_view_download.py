"""Views per second of `download_views` (the dataset builder's `views_url` path): one download at a time vs threads.

The seed's test views are 6,227 small PNGs on S3, so fetching them is round trips, not bandwidth. This script serves
`--num_views` rendered views from a local HTTP server that waits `--latency_ms` before each answer (a round trip to
a distant bucket), then fetches them all through a `datasets.DownloadManager` into a fresh cache with
`num_workers=1` (the baseline, in the same run) and with each of `--workers`. Ratios are to the baseline; absolute
views/s follow from the latency chosen.

```bash
python benchmarks/bench_view_download.py                       # 256 views, 30 ms, workers 1 vs 4, 16
python benchmarks/bench_view_download.py --latency_ms 80 --workers 8 16 32 --json results.json
```
"""

import argparse
import http.server
import json
import logging
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path


# Runnable from a bare checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
try:
    from datasets import DownloadConfig, DownloadManager

    from occ_hf.obman import generate_obman_split
    from occ_hf.views import GroundTruthMesh, render_split_views, view_name
except ImportError as error:
    sys.exit(f"bench_view_download.py needs occ-hf's dependencies ({error}).")


def _serve(files: dict[str, bytes], latency: float) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            time.sleep(latency)  # the round trip, paid by every request
            body = files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing its kept-alive connection
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _views(num_views: int, folder: Path) -> dict[str, bytes]:
    """`num_views` real views: generated samples rendered from their known meshes, as the demo makes them."""
    from occ_hf.obman import ObManSplit

    root = folder / "obman"
    generate_obman_split(root, n=num_views, seed=0, split="test", progress=False)
    split = ObManSplit(root, "test", shapenet_root=root / "ShapeNetCore.v2")
    render_split_views(split, GroundTruthMesh(), folder / "v", progress=False)
    return {view_name(f"{i:08d}"): (folder / "v" / view_name(f"{i:08d}")).read_bytes() for i in range(num_views)}


def _time_download(url: str, ids: list[str], num_workers: int, cache: Path) -> float:
    from occ_hf.views import download_views

    manager = DownloadManager(download_config=DownloadConfig(cache_dir=cache, disable_tqdm=True))
    start = time.perf_counter()
    paths, missing = download_views(manager, ids, url, num_workers=num_workers)
    seconds = time.perf_counter() - start
    if missing or len(paths) != len(ids):
        raise RuntimeError(f"{len(missing)} views missing: {list(missing.items())[:2]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_views", type=int, default=256)
    parser.add_argument("--latency_ms", type=float, default=30.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--json", help="Also write the results here.")
    args = parser.parse_args()
    logging.getLogger("datasets").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = _views(args.num_views, tmp)
        server = _serve(files, args.latency_ms / 1000)
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        ids = [f"{i:08d}" for i in range(args.num_views)]
        rows = []
        for workers in [1, *args.workers]:
            seconds = _time_download(url, ids, workers, tmp / f"cache-{workers}")
            rows.append({"num_workers": workers, "seconds": seconds, "views_per_s": args.num_views / seconds})
        server.shutdown()

    baseline = rows[0]["views_per_s"]
    print(
        f"{args.num_views} views ({sum(map(len, files.values())) / len(files) / 1024:.1f} KiB each), "
        f"{args.latency_ms:g} ms a request, {platform.node()} ({platform.processor() or platform.machine()})"
    )
    print("| num_workers | seconds | views/s | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        row["ratio"] = row["views_per_s"] / baseline
        print(f"| {row['num_workers']} | {row['seconds']:.2f} | {row['views_per_s']:.1f} | {row['ratio']:.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
