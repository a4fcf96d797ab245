"""train.py and python -m mnist_net.evaluate as real processes: a pipe closed by its reader, a Ctrl-C while they load."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import ROOT


def env_with(unbuffered: bool) -> dict:
    """The environment with stdout unbuffered (PYTHONUNBUFFERED=1, as here) or block-buffered (Python's default)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return {**env, "PYTHONUNBUFFERED": "1"} if unbuffered else env


def run_with_closed_stdout(args: list[str], unbuffered: bool) -> subprocess.CompletedProcess:
    """Run with a stdout whose reader has gone before anything is written (`| true`, or `| head` done reading)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, *args], cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE,
                              text=True, env=env_with(unbuffered), timeout=120)
    finally:
        os.close(write_end)


def assert_quiet_end(stderr: str) -> None:
    # "Exception ignored": Python's own flush of a block-buffered stdout at exit hitting the closed pipe.
    assert "Traceback" not in stderr and "Exception ignored" not in stderr and "BrokenPipeError" not in stderr, stderr


@pytest.mark.parametrize("unbuffered", [True, False], ids=["unbuffered", "buffered"])
def test_evaluate_ends_quietly_when_its_reader_has_gone(data_dir, unbuffered):
    proc = run_with_closed_stdout(["-m", "mnist_net.evaluate", "--data-dir", data_dir], unbuffered)
    assert_quiet_end(proc.stderr)
    assert proc.returncode == 1


def test_train_ends_quietly_before_training_when_its_reader_has_gone(tmp_path, data_dir):
    # Block-buffered (Python's default for a pipe): train.py prints line by line, so the closed pipe is
    # noticed at the first line, before training, instead of at the end of the run.
    out = tmp_path / "w.pt"
    proc = run_with_closed_stdout(["train.py", "--train-subset", "256", "--epochs", "1", "--no-progress",
                                   "--device", "cpu", "--data-dir", data_dir, "--out", str(out)], unbuffered=False)
    assert_quiet_end(proc.stderr)
    assert proc.returncode == 1
    assert list(tmp_path.rglob("*.pt")) == []  # stopped before training: nothing replaced


def test_train_stops_like_ctrl_c_with_its_epochs_saved_when_its_reader_goes_during_training(tmp_path, data_dir):
    out = tmp_path / "w.pt"
    proc = subprocess.Popen([sys.executable, "train.py", "--train-subset", "256", "--epochs", "3", "--no-progress",
                             "--device", "cpu", "--data-dir", data_dir, "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_with(True))
    try:
        for line in proc.stdout:  # `| head`: read up to the first epoch's line, then go
            if line.startswith("Test set:"):
                break
        else:
            pytest.fail(f"no epoch line: {proc.communicate(timeout=60)}")
        proc.stdout.close()
        stderr = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert_quiet_end(stderr)
    assert proc.returncode == 1 and "Stopped: the output was closed" in stderr and "--resume" in stderr, stderr
    metrics = json.loads(out.with_name("w.metrics.json").read_text())
    # Epoch 1's line was read; epoch 2's could not be written, and epoch 2 is saved before the run stops.
    assert metrics["interrupted"] and metrics["epochs_done"] == 2
    evaluation = json.loads(out.with_name("w.eval.json").read_text())
    assert evaluation["correct"] == metrics["history"]["test_correct"][metrics["best_epoch"] - 1]
    assert out.with_name("w.last.pt").exists() and out.with_name("w.curves.png").exists()


def test_train_with_stderr_in_the_closed_pipe_too_stops_with_its_epochs_saved(tmp_path, data_dir):
    # `python train.py 2>&1 | head`: the progress bar and the final messages go to the closed pipe as well.
    # Their first failed write used to raise out of training (or out of the final evaluation), and the
    # evaluation and curves, deleted as stale after the first epoch, were never written again.
    out = tmp_path / "w.pt"
    proc = subprocess.Popen([sys.executable, "train.py", "--train-subset", "256", "--epochs", "3",
                             "--device", "cpu", "--data-dir", data_dir, "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env_with(True))
    try:
        for line in proc.stdout:
            if line.startswith("Test set:"):
                break
        else:
            pytest.fail(f"no epoch line: {proc.communicate(timeout=60)}")
        proc.stdout.close()
        proc.wait(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1
    metrics = json.loads(out.with_name("w.metrics.json").read_text())
    assert metrics["interrupted"] and metrics["epochs_done"] == 2
    assert out.with_name("w.eval.json").exists() and out.with_name("w.curves.png").exists()
    assert out.with_name("w.misclassified.png").exists() and out.with_name("w.last.pt").exists()


@pytest.mark.parametrize("command", [["train.py"], ["-m", "mnist_net.evaluate"]], ids=["train", "evaluate"])
def test_ctrl_c_while_torch_loads_ends_with_one_line(command):
    # -X importtime reports each module as its import ends: a Ctrl-C right after the first torch module has
    # loaded lands inside `import torch`, which goes on for a second or more (no timing guess, no test hook).
    proc = subprocess.Popen([sys.executable, "-X", "importtime", *command, "--help"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if line.rsplit("|", 1)[-1].strip().startswith("torch"):
                break
        else:
            pytest.fail(f"torch was never imported: {proc.communicate(timeout=60)}")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    said = [line for line in stderr.splitlines() if not line.startswith("import time:")]
    assert proc.returncode == 130 and [line for line in said if line] == ["Interrupted."], stderr[-3000:]
    assert stdout == ""  # ended during the imports: no usage printed


def test_the_package_loads_torch_only_when_used():
    # `python -m mnist_net.evaluate` imports the package first: torch loaded there was out of reach of its
    # Ctrl-C handling. Its names and submodules are still one attribute away.
    probe = ("import sys, mnist_net; assert 'torch' not in sys.modules; "
             "assert mnist_net.checkpoint.DEFAULT_WEIGHTS.name == 'mnist_net.pt' and mnist_net.Net.__name__ == 'Net'; "
             "assert {'Net', 'training', 'render'} <= set(dir(mnist_net))")
    subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, timeout=120)
