"""App latency: p50/p95 of predict in-process and through gradio_client against a launched app.

    python bench/app_latency.py [--n 200] [--client-n 100] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import ssl
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mnist_net.data import DataError, default_data_dir, load_raw  # noqa: E402
from mnist_net.drawings import CANVAS  # noqa: E402  (the app's)
from bench_args import count  # noqa: E402  (same folder)
from load_test import free_port  # noqa: E402  (same folder)


def drawings(data_dir: str, n: int, seed: int = 0) -> list[np.ndarray]:
    """n real MNIST test digits drawn at random sizes and places on a sketchpad-sized RGBA canvas."""
    images, _ = load_raw(data_dir, train=False)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        size = int(rng.integers(100, 260))
        big = np.asarray(Image.fromarray(images[i].numpy()).resize((size, size), Image.BILINEAR))
        y, x = rng.integers(0, CANVAS - size + 1, size=2)
        alpha = np.zeros((CANVAS, CANVAS), np.uint8)
        alpha[y:y + size, x:x + size] = big
        rgb = np.zeros((CANVAS, CANVAS, 3), np.uint8)   # black ink, as the sketchpad's brush draws it
        out.append(np.dstack([rgb, alpha]))
    return out


def percentiles(samples: list[float]) -> str:
    ms = np.array(samples) * 1000
    return f"p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, mean {ms.mean():.1f} ms (n={len(ms)})"



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=count(1), default=200)
    p.add_argument("--client-n", type=count(1), default=100)
    p.add_argument("--data-dir", default=default_data_dir())
    args = p.parse_args()

    t0 = time.perf_counter()
    import app  # loads the model once, builds the UI
    print(f"import app (model load + UI build): {time.perf_counter() - t0:.2f} s")
    samples = drawings(args.data_dir, args.n)
    values = [{"background": None, "layers": [], "composite": d} for d in samples]
    for v in values[:10]:
        app.predict(v)  # warm-up
    from mnist_net.inference import analyze

    times = []
    for v in values:
        t = time.perf_counter()
        analyze(app.MODEL, v, with_layers=False)
        times.append(time.perf_counter() - t)
    print(f"in-process analyze (preprocess + forward + 4 block renders, as arrays): {percentiles(times)}")
    times = []
    for v in values:
        t = time.perf_counter()
        app.predict(v)
        times.append(time.perf_counter() - t)
    print(f"in-process predict as served (the same + the 5 images as PNG data URLs): {percentiles(times)}")
    times = []
    for v in values:
        t = time.perf_counter()
        app.predict(v, True)
        times.append(time.perf_counter() - t)
    print(f"in-process predict with every layer rendered too: {percentiles(times)}")

    from gradio_client import Client, handle_file

    baseline = baseline_demo()
    servers = []
    try:
        for demo in (app.demo, baseline):
            port = free_port()
            demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
            servers.append((demo, f"http://127.0.0.1:{port}/"))
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for i, d in enumerate(samples[:args.client_n]):
                path = Path(tmp) / f"{i}.png"
                Image.fromarray(d, "RGBA").save(path)
                paths.append(str(path))
            # gradio_client builds a fresh httpx client, and with it a fresh TLS context from certifi's
            # CA bundle (~90 ms here), for every request and every result stream, even for http:// URLs.
            # Passing one ready ssl.SSLContext as ssl_verify keeps verification as it is and builds it once.
            tls = ssl.create_default_context()
            results = {}
            # /predict's answer holds the label and the five images (inline PNG data URLs): nothing to download.
            runs = [("app /predict, default Client", servers[0][1], True, "/predict"),
                    ("app /predict, Client(ssl_verify=one SSLContext)", servers[0][1], tls, "/predict"),
                    ("baseline: trivial image-upload endpoint, default Client", servers[1][1], True, "/shape"),
                    ("baseline: trivial image-upload endpoint, Client(ssl_verify=one SSLContext)",
                     servers[1][1], tls, "/shape"),
                    ("floor: do-nothing text endpoint (no upload), Client(ssl_verify=one SSLContext)",
                     servers[1][1], tls, "/echo")]
            for label, url, verify, endpoint in runs:
                client = Client(url, verbose=False, download_files=False, ssl_verify=verify)
                if endpoint == "/predict":
                    call = lambda p: client.predict(  # noqa: E731
                        {"background": None, "layers": [], "composite": handle_file(p)}, api_name="/predict")
                elif endpoint == "/echo":
                    call = lambda p: client.predict(p, api_name="/echo")  # noqa: E731
                else:
                    call = lambda p: client.predict(handle_file(p), api_name="/shape")  # noqa: E731
                for path in paths[:5]:
                    call(path)
                times = []
                for path in paths:
                    t = time.perf_counter()
                    call(path)
                    times.append(time.perf_counter() - t)
                results[label] = times
                print(f"through gradio_client, {label}: {percentiles(times)}")
        ours = np.percentile(results[runs[1][0]], 50)
        upload_floor = np.percentile(results[runs[3][0]], 50)
        floor = np.percentile(results[runs[4][0]], 50)
        print(f"p50 ratio app / trivial image-upload endpoint: {ours / upload_floor:.2f}x; "
              f"app - do-nothing text endpoint: {(ours - floor) * 1000:+.1f} ms")
    finally:
        for demo, _ in servers:
            demo.close()


def baseline_demo():
    """The framework's floors: /shape uploads the same PNG and returns its shape; /echo returns its text.

    gradio_client waits for results by checking every 50 ms (`time.sleep(0.05)` in its SSE reader), so
    even /echo, which does nothing and uploads nothing, cannot answer in much under ~55 ms.
    """
    import gradio as gr

    with gr.Blocks() as demo:
        image, out = gr.Image(type="numpy"), gr.Textbox()
        image.change(lambda x: str(None if x is None else x.shape), image, out, api_name="shape")
        text_in, text_out = gr.Textbox(), gr.Textbox()
        text_in.submit(lambda s: s, text_in, text_out, api_name="echo")
    return demo


if __name__ == "__main__":
    try:
        main()
    except DataError as e:  # no MNIST where we looked: say where and how to get it, no traceback
        sys.exit(f"{e}")
