"""Many users at once: N concurrent gradio_client users x M predictions against a launched app.

    python bench/load_test.py [--clients 32] [--requests 25] [--url http://127.0.0.1:7860/]

Without --url it launches app.py's demo in-process on a free port. Checks: zero errors, and every
answer identical to the answer the same drawing gets alone; prints p50/p95 latency and throughput.
"""
from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mnist_net.data import DataError, default_data_dir, load_raw  # noqa: E402
from bench_args import count  # noqa: E402  (same folder)


def make_inputs(folder: Path, n: int, data_dir: str) -> list[str]:
    """n MNIST test digits drawn dark-on-light at canvas size, saved as PNG files."""
    images, _ = load_raw(data_dir, train=False)
    paths = []
    for i in range(n):
        img = Image.fromarray(255 - images[i].numpy()).resize((280, 280), Image.BILINEAR)
        path = folder / f"digit{i}.png"
        img.save(path)
        paths.append(str(path))
    return paths


def answer(client, path: str):
    """The label, its top confidences and the five images (PNG data URLs, compared byte for byte)."""
    from gradio_client import handle_file

    result = client.predict({"background": None, "layers": [], "composite": handle_file(path)}, api_name="/predict")
    label = result[0]
    return (label["label"], tuple((c["label"], round(c["confidence"], 6)) for c in label["confidences"]),
            tuple(result[1:6]))


def run_load(url: str, paths: list[str], clients: int, requests: int, seed: int = 0) -> dict:
    """Fire clients x requests predictions concurrently; compare each with the answer given alone."""
    from gradio_client import Client

    try:
        solo = Client(url, verbose=False, download_files=False)
    except Exception as e:  # noqa: BLE001 - httpx, ValueError for a malformed URL, Gradio's own errors
        sys.exit(f"error: no Gradio app answers at {url}: {e}")
    reference = {p: answer(solo, p) for p in paths}
    latencies, errors, mismatches = [], [], []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def user(k: int) -> None:
        rng = np.random.default_rng(seed + k)
        try:
            client = Client(url, verbose=False, download_files=False)
        except Exception as e:  # noqa: BLE001 - every failure counts as an error
            with lock:
                errors.append(f"client {k} connect: {e!r}")
            start.abort()
            return
        try:
            start.wait(timeout=120)
        except threading.BrokenBarrierError:
            pass
        for _ in range(requests):
            path = paths[int(rng.integers(len(paths)))]
            t0 = time.perf_counter()
            try:
                got = answer(client, path)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(f"client {k}: {e!r}")
                continue
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                if got != reference[path]:
                    mismatches.append((Path(path).name, got[:2], reference[path][:2],  # images: too long to show
                                       "images differ" if got[2] != reference[path][2] else "images equal"))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - t0
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {"clients": clients, "requests": clients * requests, "answered": len(latencies),
            "errors": errors, "mismatches": mismatches, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "wall_s": wall, "throughput_rps": len(latencies) / wall}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=count(1), default=32)
    p.add_argument("--requests", type=count(1), default=25, help="predictions per client")
    p.add_argument("--url", default=None, help="an app already running; default: launch one in-process")
    p.add_argument("--data-dir", default=default_data_dir())
    args = p.parse_args()
    demo = None
    if args.url is None:
        import app

        demo = app.demo
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        args.url = f"http://127.0.0.1:{port}/"
        print(f"launched app on {args.url} (concurrency_limit={app.CONCURRENCY}, max_size={app.QUEUE_SIZE})")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = make_inputs(Path(tmp), 20, args.data_dir)
            r = run_load(args.url, paths, args.clients, args.requests)
    finally:
        if demo is not None:
            demo.close()
    print(f"{r['clients']} clients x {args.requests} = {r['requests']} predictions: answered {r['answered']}, "
          f"errors {len(r['errors'])}, answers differing from the solo answer {len(r['mismatches'])}")
    print(f"latency p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms; wall {r['wall_s']:.1f} s, "
          f"{r['throughput_rps']:.1f} predictions/s")
    for e in r["errors"][:5]:
        print("  error:", e)
    return 0 if not r["errors"] and not r["mismatches"] and r["answered"] == r["requests"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DataError as e:  # no MNIST where we looked: say where and how to get it, no traceback
        sys.exit(f"{e}")
