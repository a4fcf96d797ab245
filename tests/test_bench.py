"""Every bench script refuses bad arguments plainly; on a GPU, bench/cuda_check.py runs at a tiny size.

The other benchmarks are not run here, to keep the suite within its 4-minute budget;
tests/test_load.py, the browser tests and the training tests cover what they drive.
"""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT


def run_bench(script: str, *args: str, data_dir: str, timeout: int = 240) -> str:
    env = {**os.environ, "MNIST_DATA_DIR": data_dir}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_bench_scripts_refuse_counts_that_make_no_sense_and_say_what_they_cannot_reach(data_dir):
    # (script, args, exit code, message); the scripts share bench_args.count. The processes run side by side:
    # each spends ~2 s importing torch.
    cases = [
        ("train_speed.py", ["--rounds", "0"], 2, "--rounds: must be at least 1, got 0"),
        ("load_test.py", ["--clients", "many"], 2, "--clients: expected a whole number, got 'many'"),
        ("load_test.py", ["--clients", "1", "--requests", "1", "--url", "http://127.0.0.1:1/"], 1,
         "error: no Gradio app answers at http://127.0.0.1:1/"),
        ("browser_latency.py", ["--chromium", "/nonexistent/chromium"], 1, "Chromium not found at /nonexistent/chromium"),
        ("novelty.py", ["--limit", "0"], 2, "--limit: must be at least 1, got 0"),
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
