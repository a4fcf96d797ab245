"""The benchmark scripts run end to end (tiny sizes) and print the figures the README quotes.

These check that each documented command works from a clean clone; they assert nothing about speed.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, missing
from test_app import chromium_path


def run_bench(script: str, *args: str, data_dir: str, timeout: int = 240) -> str:
    env = {**os.environ, "MNIST_DATA_DIR": data_dir}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def numbers_after(label: str, text: str) -> list[float]:
    line = next((ln for ln in text.splitlines() if label in ln), None)
    assert line is not None, f"no line with {label!r} in:\n{text}"
    return [float(x) for x in re.findall(r"(\d+(?:\.\d+)?) ms", line)]


def test_train_speed_bench_times_the_three_pipelines_with_a_busy_core(data_dir):
    out = run_bench("train_speed.py", "--warm", "1", "--rounds", "1", "--batches", "1", "--busy-core", data_dir=data_dir)
    assert "one core kept busy" in out
    for label in ("(a) assignment", "(b) train.py data path, stock modules", "(c) train.py as it runs on a CPU"):
        assert re.search(re.escape(label) + r"[^\n]*\n +median [\d.]+ ms/batch", out), out
    assert re.search(r"speed-up \(c\) vs \(a\): [\d.]+x", out) and re.search(r"speed-up \(c\) vs \(b\): [\d.]+x", out)


def test_app_latency_bench_prints_in_process_and_client_percentiles(data_dir):
    out = run_bench("app_latency.py", "--n", "12", "--client-n", "3", data_dir=data_dir)
    for label in ("in-process analyze (preprocess", "in-process predict as served"):
        p50, p95, _ = numbers_after(label, out)
        assert 0 < p50 <= p95
    for label in ("app /predict, default Client", "app /predict, Client(ssl_verify=one SSLContext)",
                  "trivial image-upload endpoint, default Client", "do-nothing text endpoint (no upload)"):
        assert numbers_after(label, out)[0] > 0
    assert "p50 ratio app / trivial image-upload endpoint" in out


def test_browser_latency_bench_times_strokes_in_a_real_browser(data_dir):
    if not chromium_path():
        missing("Chromium not installed (apt-get install chromium)")
    out = run_bench("browser_latency.py", "--n", "1", "--warm", "0", "--chromium", chromium_path(), data_dir=data_dir)
    sent = numbers_after("predict request sent (canvas export", out)
    shown = numbers_after("stroke released -> prediction text shown", out)
    maps = numbers_after("block4 feature maps decoded", out)
    # Each part happens after the one before it.
    assert 0 < sent[0] < shown[0] <= maps[0] + 1
    reads = numbers_after("of which WebGL readPixels", out)
    assert 0 < reads[0] < sent[0]
    floor_sent, _, _, floor_shown, _, _ = numbers_after("floor: the same sketchpad on a bare page", out)
    assert 0 < floor_sent < floor_shown


def test_load_test_bench_checks_every_answer(data_dir, server):
    out = run_bench("load_test.py", "--clients", "2", "--requests", "2", "--url", server, data_dir=data_dir)
    assert "2 clients x 2 = 4 predictions: answered 4, errors 0, answers differing from the solo answer 0" in out
    assert "predictions/s" in out


def test_bench_scripts_refuse_counts_that_make_no_sense_and_say_what_they_cannot_reach(data_dir):
    cases = [  # (script, args, exit code, message); the processes run side by side: each spends ~2 s importing torch
        ("train_speed.py", ["--rounds", "0"], 2, "--rounds: must be at least 1, got 0"),
        ("app_latency.py", ["--n", "0"], 2, "--n: must be at least 1, got 0"),
        ("browser_latency.py", ["--warm", "-1"], 2, "--warm: must be at least 0, got -1"),
        ("load_test.py", ["--clients", "many"], 2, "--clients: expected a whole number, got 'many'"),
        ("cuda_check.py", ["--steps", "0"], 2, "--steps: must be at least 1, got 0"),
        ("load_test.py", ["--clients", "1", "--requests", "1", "--url", "http://127.0.0.1:1/"], 1,
         "error: no Gradio app answers at http://127.0.0.1:1/"),
        ("browser_latency.py", ["--chromium", "/nonexistent/chromium"], 1, "Chromium not found at /nonexistent/chromium"),
    ]
    procs = [subprocess.Popen([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, text=True,
                              env={**os.environ, "MNIST_DATA_DIR": data_dir}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for script, args, _, _ in cases]
    for proc, (script, _, code, message) in zip(procs, cases):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == code and message in err and "Traceback" not in err, (script, err[-2000:])


def test_cuda_check_runs_on_a_gpu_and_says_plainly_when_there_is_none(data_dir, tmp_path):
    """The GPU check of the CUDA-graph step: its figures on a GPU, one clear line (exit 2) without one."""
    import torch

    args = ["--steps", "3", "--rounds", "1", "--replays", "10", "--saves", "2", "--save-dir", str(tmp_path)]
    if torch.cuda.is_available():
        out = run_bench("cuda_check.py", *args, data_dir=data_dir)
        assert "eager vs graph: 3 steps" in out and "speed-up graph vs eager" in out
        return
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "cuda_check.py"), *args], cwd=ROOT,
                          env={**os.environ, "MNIST_DATA_DIR": data_dir}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: no CUDA GPU is visible"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
