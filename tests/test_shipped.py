"""The committed weights and the artifacts beside them, checked against the real 10k test set."""
import json
import re
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT

from mnist_net import evaluate as evaluate_cli
from mnist_net.checkpoint import DEFAULT_WEIGHTS, load_model
from mnist_net.data import MNIST_MEAN, MNIST_STD
from mnist_net.artifacts import artifact_paths
from mnist_net.explain import saliency
from mnist_net.training import evaluate

sys.path.insert(0, str(ROOT / "scripts"))
import seed_table  # noqa: E402


def test_shipped_weights_reach_99_4_on_the_full_test_set(test_set):
    result = evaluate(load_model(), test_set)
    print("\n" + result.line())
    assert result.total == 10000
    assert result.accuracy >= 99.4, result.line()


def test_shipped_metrics_record_the_run():
    metrics = json.loads(DEFAULT_WEIGHTS.with_name("mnist_net.metrics.json").read_text())
    assert metrics["parameters"] == 14120 and metrics["args"]["epochs"] == 19 and metrics["args"]["batch_size"] == 128
    assert len(metrics["history"]["test_accuracy"]) == 19
    assert metrics["best_accuracy"] >= 99.4 and metrics["first_epoch_at_99_4"] <= 19
    stored = torch.load(DEFAULT_WEIGHTS, weights_only=True)["metrics"]
    assert stored["weights"] == "best" and stored["history"]["test_accuracy"][stored["epoch"] - 1] == metrics["best_accuracy"]


def test_evaluate_cli_regenerates_the_committed_artifacts(tmp_path, data_dir, capsys):
    assert evaluate_cli.main(["--data-dir", data_dir, "--artifacts", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Test set: Average loss:") and "Per-class accuracy" in out and "Confusion matrix" in out
    fresh_json, fresh_png = artifact_paths(DEFAULT_WEIGHTS, tmp_path)
    committed_json, committed_png = artifact_paths(DEFAULT_WEIGHTS, DEFAULT_WEIGHTS.parent)
    fresh, committed = json.loads(fresh_json.read_text()), json.loads(committed_json.read_text())
    assert fresh["confusion_matrix"] == committed["confusion_matrix"]
    assert [m["index"] for m in fresh["misclassified"]] == [m["index"] for m in committed["misclassified"]]
    assert fresh["correct"] == committed["correct"] and sum(map(sum, fresh["confusion_matrix"])) == 10000
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(fresh_png)), np.asarray(Image.open(committed_png)))


def test_evaluate_run_loads_the_test_set_itself_and_matches_training_evaluate(data_dir, test_set):
    result, cm, probs = evaluate_cli.run(DEFAULT_WEIGHTS, data_dir=data_dir)
    reference = evaluate(load_model(), test_set)  # NCHW, batches of 1000: the training loop's path
    assert result.correct == reference.correct and abs(result.loss - reference.loss) < 1e-5
    assert probs.shape == (10000, 10) and int(cm.sum()) == 10000 and int(cm.trace()) == result.correct


def test_evaluate_loss_matches_training_evaluate_for_confidently_wrong_weights(tmp_path, test_set):
    """The loss came from exponentiated probabilities, which underflow to 0 for a confidently wrong digit:
    each such digit's loss was capped at -log(1e-30) = 69, so a bad model's loss read lower than it was."""
    from mnist_net.checkpoint import save_weights

    model = load_model()
    with torch.no_grad():
        model.block4.conv8.weight.mul_(-30)  # confidently wrong everywhere
    save_weights(model, tmp_path / "wrong.pt")
    result, _, _ = evaluate_cli.run(tmp_path / "wrong.pt", test=test_set)
    reference = evaluate(load_model(tmp_path / "wrong.pt"), test_set)
    assert reference.loss > 69 and abs(result.loss - reference.loss) < 1e-3 * reference.loss, (result, reference)


def test_evaluate_cli_reports_a_bad_weights_file(tmp_path, data_dir, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert evaluate_cli.main(["--weights", str(bad), "--data-dir", data_dir]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err


def test_saliency_is_finite_and_larger_on_the_ink(test_set):
    model = load_model()
    ratios = []
    for i in range(40):
        x = test_set.images[i:i + 1]
        grad, target = saliency(model, x)
        assert grad.shape == (28, 28) and np.isfinite(grad).all()
        pixels = x[0, 0].numpy() * MNIST_STD + MNIST_MEAN
        ink, empty = pixels > 0.5, pixels < 0.01
        ratios.append(np.abs(grad)[ink].mean() / np.abs(grad)[empty].mean())
    assert min(ratios) > 1.2 and np.median(ratios) > 2.0, ratios
    # It explains the network in eval mode and hands the model back as it found it, BatchNorm untouched.
    model.train()
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    saliency(model, test_set.images[:1])
    assert model.training and all(torch.equal(v, model.state_dict()[k]) for k, v in stats.items())


def test_readme_seed_tables_are_what_the_committed_metrics_print(capsys):
    readme = (ROOT / "README.md").read_text() + (ROOT / "docs" / "gpu-runs.md").read_text()
    commands = [c.split() for c in re.findall(r"`python scripts/seed_table.py ([^`]+)`", readme)]
    assert len(commands) == 2  # the README's CPU recipe x seed table and docs/gpu-runs.md's table
    for command, expected_rows in zip(commands, (8, 14)):
        files = [str(p) for pattern in command for p in sorted(ROOT.glob(pattern))]
        assert len(files) == expected_rows, files
        assert seed_table.main(files) == 0
        table = capsys.readouterr().out.strip()
        assert table in readme, table


def test_seed_table_refuses_a_file_that_is_not_a_metrics_record(tmp_path, capsys):
    broken = tmp_path / "x.metrics.json"
    broken.write_text("{")
    assert seed_table.main([str(broken)]) == 2
    assert seed_table.main([str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "is not a metrics file written by train.py" in err and "cannot read" in err and "Traceback" not in err


def test_the_model_tab_hint_evaluates_the_weights_it_is_about(tmp_path, data_dir):
    import shlex

    from mnist_net.checkpoint import save_weights
    from mnist_net.model import Net
    from mnist_net.report import load_report

    weights = tmp_path / "other.pt"
    torch.manual_seed(0)
    save_weights(Net(), weights)  # untrained: nowhere near the shipped weights' accuracy
    problem = next(p for p in load_report(weights).problems if "evaluation unavailable" in p)
    command = shlex.split(re.search(r"`python -m mnist_net\.evaluate ([^`]*)`", problem).group(1))
    assert evaluate_cli.main([*command, "--data-dir", data_dir]) == 0
    report = load_report(weights)
    assert report.evaluation["weights"] == "other.pt" and report.evaluation["correct"] < 5000


def test_an_interrupted_artifact_write_never_pairs_an_old_json_with_a_new_sprite(tmp_path, data_dir, monkeypatch):
    assert evaluate_cli.main(["--data-dir", data_dir, "--artifacts", str(tmp_path)]) == 0
    json_path, sprite_path = artifact_paths(DEFAULT_WEIGHTS, tmp_path)
    assert json_path.exists() and sprite_path.exists()

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_cli, "atomic_write_bytes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate_cli.main(["--data-dir", data_dir, "--artifacts", str(tmp_path)])
    assert not json_path.exists()  # the app then says the evaluation is missing, instead of mislabelling digits


def test_seed_table_marks_a_run_that_stopped_early(tmp_path, capsys):
    record = json.loads((ROOT / "results" / "h200" / "05-graph.metrics.json").read_text())
    record["interrupted"] = True
    path = tmp_path / "stopped.metrics.json"
    path.write_text(json.dumps(record))
    assert seed_table.main([str(path)]) == 0
    assert "99.60% (epoch 19; interrupted)" in capsys.readouterr().out


def test_readme_novelty_table_is_what_the_committed_rates_say():
    from mnist_net import novelty

    rates = novelty.read_rates(DEFAULT_WEIGHTS)
    assert rates is not None and rates["threshold"] == round(float(novelty.load(DEFAULT_WEIGHTS).threshold), 4)
    for page in ("README.md", "docs/novelty.md"):
        assert novelty.rates_table(rates) in (ROOT / page).read_text(), page
