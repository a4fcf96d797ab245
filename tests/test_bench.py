"""Every bench script refuses bad arguments plainly; on a GPU, bench/cuda_check.py runs at a tiny size.

The other benchmarks are not run here, to keep the suite within its 4-minute budget;
tests/test_load.py, the browser tests and the training tests cover what they drive.
"""
from __future__ import annotations

import os
import runpy
import subprocess
import sys

from conftest import ROOT


def run_bench(script: str, *args: str, data_dir: str, timeout: int = 240) -> str:
    env = {**os.environ, "MNIST_DATA_DIR": data_dir}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def run_in_process(script: str, args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """`python bench/SCRIPT ARGS`, run in this process (no interpreter start-up and imports, ~2.5 s a script):
    its exit code and standard error, as the shell would see them."""
    monkeypatch.setattr(sys, "argv", [str(ROOT / "bench" / script), *args])
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # as `python bench/SCRIPT` puts its folder first
    capsys.readouterr()
    try:
        runpy.run_path(str(ROOT / "bench" / script), run_name="__main__")
        code, message = 0, ""
    except SystemExit as e:  # sys.exit("message") prints the message and exits with 1
        code, message = (1, f"{e.code}\n") if isinstance(e.code, str) else (e.code or 0, "")
    return code, capsys.readouterr().err + message


def test_bench_scripts_refuse_counts_that_make_no_sense_and_say_what_they_cannot_reach(data_dir, monkeypatch, capsys):
    # (script, args, exit code, message); the scripts share bench_args.count.
    monkeypatch.setenv("MNIST_DATA_DIR", data_dir)
    cases = [
        ("train_speed.py", ["--rounds", "0"], 2, "--rounds: must be at least 1, got 0"),
        ("load_test.py", ["--clients", "many"], 2, "--clients: expected a whole number, got 'many'"),
        ("load_test.py", ["--clients", "1", "--requests", "1", "--url", "http://127.0.0.1:1/"], 1,
         "error: no Gradio app answers at http://127.0.0.1:1/"),
        ("browser_latency.py", ["--chromium", "/nonexistent/chromium"], 1, "Chromium not found at /nonexistent/chromium"),
        ("novelty.py", ["--limit", "0"], 2, "--limit: must be at least 1, got 0"),
    ]
    for script, args, expected_code, expected in cases:
        code, err = run_in_process(script, args, monkeypatch, capsys)
        assert code == expected_code and expected in err, (script, code, err[-2000:])


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


def test_browser_latency_times_the_apps_own_sketchpad_on_its_floor_page(app_module, monkeypatch):
    import gradio as gr

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import browser_latency

    def sketchpad(demo):
        return next(b for b in demo.blocks.values() if isinstance(b, gr.Sketchpad))

    floor, shown = sketchpad(browser_latency.floor_demo()), sketchpad(app_module.demo)
    for setting in ("canvas_size", "fixed_canvas", "layers", "transforms", "type", "image_mode", "height"):
        assert getattr(floor, setting) == getattr(shown, setting), setting
    assert floor.brush.default_size == shown.brush.default_size == app_module.BRUSH // 2
