"""Broken or missing weights never take the app down: it starts and says what is wrong and how to fix it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest
import torch

from conftest import ROOT, free_port
from mnist_net import checkpoint, novelty
from mnist_net.model import Net


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def make_bad(tmp_path, kind):
    p = tmp_path / f"{kind}.pt"
    if kind == "missing":
        return p
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        checkpoint.save_weights(Net(), p)
        p.write_bytes(p.read_bytes()[:3000])
    elif kind == "junk":  # the safe unpickler fails on these bytes with a KeyError, not an UnpicklingError
        p.write_bytes(b"junk\n")
    elif kind == "wrong-architecture":
        sd = Net().state_dict()
        sd["block4.conv8.weight"] = torch.zeros(10, 16, 3, 3)
        torch.save({"format": checkpoint.FORMAT, "config": {}, "state_dict": sd, "metrics": {}}, p)
    elif kind == "wrong-type":
        torch.save({"hello": torch.zeros(3)}, p)
    elif kind == "malicious":
        torch.save({"format": checkpoint.FORMAT, "state_dict": _Exploit(str(tmp_path / "pwned"))}, p)
    return p


KINDS = {"missing": "not found", "empty": "empty", "truncated": "truncated", "junk": "not a PyTorch file",
         "wrong-architecture": "different architecture", "wrong-type": "not an mnist_net weights file",
         "malicious": "Refused"}


@pytest.mark.parametrize("kind", list(KINDS))
def test_predict_reports_bad_weights(app_module, tmp_path, monkeypatch, kind):
    path = make_bad(tmp_path, kind)
    with pytest.raises(checkpoint.WeightsError) as caught:
        checkpoint.load_model(path)
    error = str(caught.value)
    assert KINDS[kind] in error and str(path) in error and "python train.py" in error
    monkeypatch.setattr(app_module, "MODEL", None)
    monkeypatch.setattr(app_module, "MODEL_ERROR", error)
    out = app_module.predict({"background": None, "layers": [], "composite": None})
    assert out[1] is None and "could not be loaded" in out[-1] and KINDS[kind] in out[-1]
    assert app_module.saliency(object()) is None
    assert not (tmp_path / "pwned").exists()


def test_app_process_starts_with_unreadable_weights_and_says_why_and_one_whose_port_is_taken_says_so(tmp_path):
    import shutil
    import socket

    from gradio_client import Client

    port = free_port()
    weights = make_bad(tmp_path, "junk")
    shutil.copy(novelty.detector_path(checkpoint.DEFAULT_WEIGHTS), novelty.detector_path(weights))
    # GRADIO_NUM_PORTS=1: were the port taken meanwhile, fail rather than serve on the next one unseen.
    env = {**os.environ, "MNIST_NET_WEIGHTS": str(weights), "GRADIO_SERVER_PORT": str(port),
           "GRADIO_NUM_PORTS": "1"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Meanwhile (each process spends seconds importing torch and gradio), a second app whose port is taken.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    taken = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env={**os.environ, "GRADIO_SERVER_PORT": str(busy.getsockname()[1]),
                                                          "GRADIO_NUM_PORTS": "1"})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while True:
            try:
                page = urllib.request.urlopen(url, timeout=2).read().decode()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"app did not start: {proc.stdout.read() if proc.poll() is not None else 'timeout'}")
                time.sleep(0.5)
        assert "junk.pt" in page  # the error banner is part of the page's config
        assert "No not-a-digit detector" not in page  # the Model tab still describes the detector beside them
        client = Client(url, verbose=False)
        result = client.predict({"background": None, "layers": [], "composite": None}, api_name="/predict")
        assert "not a PyTorch file" in result[-1] and "python train.py" in result[-1]
        # A client that sends a path where the sketchpad's dict goes is told what was expected, not only "error".
        with pytest.raises(Exception, match="valid dictionary or instance of EditorData"):
            client.predict("digit.png", api_name="/predict")
        _, err = taken.communicate(timeout=120)
        assert taken.returncode == 1
        assert "could not start the server: Cannot find empty port" in err and "Traceback" not in err
    finally:
        busy.close()
        taken.kill()
        proc.terminate()
        proc.wait(timeout=30)


def test_app_process_refuses_a_bad_port_setting_with_a_message():
    env = {**os.environ, "GRADIO_SERVER_PORT": "abc"}
    proc = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "GRADIO_SERVER_PORT must be a port number" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("weights", [".", "/"])
def test_model_report_of_a_folder_lists_problems_instead_of_failing(weights):
    from pathlib import Path

    from mnist_net.report import load_report

    report = load_report(Path(weights))
    assert report.metrics is None and report.evaluation is None and len(report.problems) == 2


def test_a_metrics_file_missing_fields_is_a_listed_problem(tmp_path):
    import json

    from mnist_net.report import load_report

    weights = tmp_path / "w.pt"
    metrics = json.loads((ROOT / "weights" / "mnist_net.metrics.json").read_text())
    del metrics["recipe"]  # e.g. written by hand, or by another program
    (tmp_path / "w.metrics.json").write_text(json.dumps(metrics))
    report = load_report(weights)
    assert report.metrics is None and "Training metrics unavailable" in report.problems[0]
    assert "recipe" in report.problems[0]


def test_eval_and_rates_files_of_another_shape_are_a_listed_problem_and_no_rates(tmp_path):
    # Valid JSON written by hand or by another program: a KeyError or TypeError at import stopped the app.
    import json
    import shutil

    from mnist_net import novelty
    from mnist_net.report import load_report

    for f in (ROOT / "weights").glob("mnist_net.*"):
        shutil.copy(f, tmp_path / f.name)
    weights = tmp_path / "mnist_net.pt"
    assert load_report(weights).evaluation and novelty.read_rates(weights)  # the shipped files, as they are
    evaluation = json.loads((tmp_path / "mnist_net.eval.json").read_text())
    del evaluation["line"]
    (tmp_path / "mnist_net.eval.json").write_text(json.dumps(evaluation))
    (tmp_path / "mnist_net.novelty.json").write_text(json.dumps({"sets": [1, 2], "histogram": None}))
    report = load_report(weights)
    assert report.evaluation is None and report.misclassified == [] and len(report.problems) == 1
    assert "Test-set evaluation unavailable (KeyError: 'line')" in report.problems[0]
    assert novelty.read_rates(weights) is None


def test_weights_that_miss_thousands_show_the_most_confident_mistakes(tmp_path, data_dir):
    # An untrained net (a quick try's weights are as bad) misses ~9,000 digits: a gallery of all of them made
    # the app take 25 s to start, 1.2 GB and ~9,000 cached files.
    weights = tmp_path / "untrained.pt"
    torch.manual_seed(0)
    checkpoint.save_weights(Net(), weights)
    from mnist_net import evaluate

    assert evaluate.main(["--weights", str(weights), "--artifacts", str(tmp_path), "--data-dir", data_dir]) == 0
    probe = ("import json, app; ev = app.REPORT.evaluation; print(json.dumps([ev['total'] - ev['correct'], "
             "[d.confidence for d in app.GALLERY], 'most confident of the' in str(app.demo.config), "
             "'`untrained.pt` on the 10,000' in str(app.demo.config)]))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True,
                         env={**os.environ, "MNIST_NET_WEIGHTS": str(weights)}).stdout
    missed, shown, titled, named = __import__("json").loads(out.strip().splitlines()[-1])
    _, _, probs = evaluate.run(weights, data_dir)
    labels = evaluate.load_raw(data_dir, train=False)[1]
    wrong = probs.argmax(1) != labels
    most_confident = [round(float(p), 4) for p in probs[wrong].amax(1).sort(descending=True).values[:100]]
    assert missed > 1000 and len(shown) == 100 and shown == most_confident and titled
    assert named, "the Model tab's evaluation heading names the weights it serves"
