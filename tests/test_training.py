import json
import shutil
from pathlib import Path

import pytest
import torch

import train as train_cli
from mnist_net import run as run_module
from mnist_net import training
from mnist_net.checkpoint import load_model
from mnist_net.data import MNISTTensors
from mnist_net.model import Net
from mnist_net.training import RECIPES, evaluate, fit


def test_short_real_training_learns(train_set, test_set):
    train = train_set.subset(3000)
    held_out = MNISTTensors(test_set.images[:2000], test_set.labels[:2000])
    model = Net()
    before = evaluate(model, held_out)
    history = fit(model, train, held_out, RECIPES["reliable"], epochs=2, batch_size=128, seed=0,
                  progress=False, log=lambda _: None)
    after = evaluate(model, held_out)
    assert history.train_loss[1] < history.train_loss[0]
    assert after.loss < before.loss / 3
    assert after.accuracy > 70.0, after.line()  # chance is 10%; 80-85% here, by the thread count (sums' order)
    assert history.test_accuracy[-1] == pytest.approx(after.accuracy)


def test_eval_result_line_matches_the_assignment_format():
    line = training.EvalResult(0.0184, 9951, 10000).line()
    assert line == "Test set: Average loss: 0.0184, Accuracy: 9951/10000 (99.51%)"


@pytest.fixture
def never_trains(tmp_path, monkeypatch):
    """For tests of what train.py refuses: should a refusal regress, fail at once, never train into the repo."""
    monkeypatch.chdir(tmp_path)

    def trained(*_a, **_k):
        raise AssertionError("train.py started training instead of refusing")

    monkeypatch.setattr(training, "fit", trained)
    monkeypatch.setattr(train_cli, "load_mnist", trained)


def _run(tmp_path, name, *extra, data_dir):
    out = tmp_path / name / "w.pt"
    argv = ["--epochs", "2", "--train-subset", "512", "--seed", "5", "--no-progress",
            "--data-dir", data_dir, "--out", str(out), *extra]
    return train_cli.main(argv), out


def test_cli_writes_weights_metrics_curves(tmp_path, data_dir, capsys):
    code, out = _run(tmp_path, "a", data_dir=data_dir)
    assert code == 0
    text = capsys.readouterr().out
    assert text.count("Test set: Average loss:") == 3 and "Total params: 14,120" in text  # 2 epochs + the best
    assert "First epoch >= 99.4%" in text and "Time per epoch" in text
    assert f"Serve them: MNIST_NET_WEIGHTS={out} python app.py" in text and "mnist_net.novelty --weights" in text
    metrics = json.loads(out.with_name("w.metrics.json").read_text())
    assert metrics["args"]["seed"] == 5 and metrics["recipe"]["name"] == "reliable"
    assert len(metrics["history"]["test_accuracy"]) == 2 and metrics["torch"] == torch.__version__
    assert out.with_name("w.curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = load_model(out)
    assert isinstance(best, Net)
    assert torch.load(out, weights_only=True)["metrics"]["epoch"] == metrics["best_epoch"]
    # The evaluation the Model tab shows is rewritten for these weights, not left from earlier ones.
    evaluation = json.loads(out.with_name("w.eval.json").read_text())
    assert evaluation["weights"] == "w.pt" and evaluation["total"] == 10000
    assert evaluation["correct"] == metrics["history"]["test_correct"][metrics["best_epoch"] - 1]
    assert out.with_name("w.misclassified.png").exists()


def raise_in_second_epoch(monkeypatch, error):
    """Make train_epoch raise `error` in its 2nd call; returns (the real train_epoch, the call counter)."""
    real_epoch, calls = training.train_epoch, {"n": 0}

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise error
        return real_epoch(*a, **k)

    monkeypatch.setattr(training, "train_epoch", failing)
    return real_epoch, calls


def test_interrupt_then_resume_equals_uninterrupted(tmp_path, data_dir, monkeypatch, capsys):
    # On the CPU even where a GPU is present: two GPU runs of one seed differ (cuDNN's kernel choice).
    code, full = _run(tmp_path, "full", "--device", "cpu", data_dir=data_dir)
    assert code == 0

    real_epoch, _ = raise_in_second_epoch(monkeypatch, KeyboardInterrupt)
    # --out and --data-dir relative to the folder the run was started from; it is resumed from another folder.
    import os

    monkeypatch.chdir(tmp_path)
    # --deterministic too: a resumed run keeps it (on a CPU it changes nothing; on a GPU it picks the kernels).
    assert train_cli.main(["--epochs", "2", "--train-subset", "512", "--seed", "5", "--no-progress", "--deterministic",
                           "--data-dir", os.path.relpath(data_dir), "--out", "part/w.pt", "--device", "cpu"]) == 130
    assert "Resume with: python train.py --resume part/w.last.pt" in capsys.readouterr().err
    part = tmp_path / "part" / "w.pt"
    metrics = json.loads(part.with_name("w.metrics.json").read_text())
    assert metrics["interrupted"] and metrics["epochs_done"] == 1
    assert part.exists()  # best weights of the finished epochs are kept
    monkeypatch.setattr(training, "train_epoch", real_epoch)

    last = str(part.with_name("w.last.pt"))
    # Changing the schedule of a run being resumed is refused, before anything is loaded or trained.
    assert train_cli.main(["--resume", last, "--epochs", "3", "--lr", "0.2"]) == 2
    err = capsys.readouterr().err
    assert "--epochs 3 (the run used 2)" in err and "--lr 0.2 (the run used 0.05)" in err
    assert train_cli.main(["--resume", last, "--out", str(tmp_path / "elsewhere" / "w.pt")]) == 2
    assert "--out" in capsys.readouterr().err and not (tmp_path / "elsewhere").exists()
    # Repeating the same values is fine. Started from another folder, at another depth, the run still reads
    # its data and writes beside its checkpoint.
    elsewhere = tmp_path / "a" / "b" / "another-cwd"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)  # as a process starts; restored after the test
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    code = train_cli.main(["--resume", last, "--no-progress", "--seed", "5", "--device", "cpu"])
    assert code == 0
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark  # kept through to training
    assert list(elsewhere.iterdir()) == []
    resumed = json.loads(part.with_name("w.metrics.json").read_text())
    assert resumed["epochs_done"] == 2 and resumed["args"]["deterministic"] is True
    a = torch.load(full.with_name("w.last.pt"), weights_only=True)
    b = torch.load(part.with_name("w.last.pt"), weights_only=True)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    assert a["metrics"]["history"]["test_accuracy"] == b["metrics"]["history"]["test_accuracy"]
    capsys.readouterr()
    assert train_cli.main(["--resume", last]) == 0  # the run is complete: say so, train nothing
    assert "Nothing to resume" in capsys.readouterr().out


def test_resume_rejects_a_plain_weights_file_and_an_incomplete_checkpoint(tmp_path, capsys):
    from mnist_net.checkpoint import save_weights

    p = tmp_path / "plain.pt"
    save_weights(Net(), p)
    assert train_cli.main(["--resume", str(p)]) == 2
    assert "no training state" in capsys.readouterr().err
    for path in (tmp_path / "gone.last.pt", tmp_path / "junk.pt"):  # the advice is a checkpoint's, not new weights'
        (tmp_path / "junk.pt").write_text("junk\n")
        assert train_cli.main(["--resume", str(path)]) == 2
        err = capsys.readouterr().err
        assert "Pass the FILE.last.pt checkpoint" in err and "--out" not in err and "the default one" not in err, err
    p = tmp_path / "w.last.pt"
    save_weights(Net(), p, metrics={"epoch": 1}, train_state={"epoch": 1})  # no run settings, no history
    assert train_cli.main(["--resume", str(p)]) == 2
    err = capsys.readouterr().err
    assert "not a complete train.py checkpoint" in err and "Traceback" not in err


def test_resume_trains_with_the_recipe_the_checkpoint_saved(tmp_path, capsys, monkeypatch):
    from mnist_net.checkpoint import save_weights

    older = {k: v for k, v in RECIPES["reliable"].__dict__.items() if k not in ("shear_degrees", "scale", "thicken")}
    args = {**run_module.SCHEDULE, "data_dir": str(tmp_path), "out": str(tmp_path / "w.pt")}
    state = {k: {} for k in run_module.STATE_KEYS} | {"epoch": 1}
    p = tmp_path / "w.last.pt"
    save_weights(Net(), p, metrics={"args": args, "recipe": older}, train_state=state)
    recipe = run_module.Run.resume(p, {}).recipe  # a run begun before the recipe gained slant, scale and strokes
    monkeypatch.chdir(tmp_path)  # a --data-dir given on resume is kept absolute, as a new run's is
    assert run_module.Run.resume(p, {"data_dir": "mnist"}).settings["data_dir"] == str(tmp_path / "mnist")
    assert (recipe.shear_degrees, recipe.scale, recipe.thicken) == (0.0, 0.0, 0.0)
    assert recipe.rotate_degrees == 7.0 and recipe.cycle_momentum == (0.85, 0.95)

    save_weights(Net(), p, metrics={"args": args, "recipe": {**older, "mixup": 0.2}}, train_state=state)
    assert train_cli.main(["--resume", str(p)]) == 2
    err = capsys.readouterr().err
    assert "recipe this version cannot rebuild" in err and "mixup" in err and "Traceback" not in err


def test_resume_refuses_weights_that_do_not_fit_the_network(tmp_path, data_dir, capsys):
    from mnist_net.checkpoint import save_weights

    args = {**run_module.SCHEDULE, "data_dir": data_dir, "out": str(tmp_path / "w.pt"), "deterministic": False}
    p = tmp_path / "w.last.pt"
    save_weights(Net(), p, metrics={"args": args, "recipe": None},
                 train_state={k: {} for k in run_module.STATE_KEYS} | {"epoch": 1})
    checkpoint = torch.load(p, weights_only=True)
    checkpoint["state_dict"]["block1.conv1.weight"] = torch.zeros(8, 1, 3, 3)  # e.g. from another version
    torch.save(checkpoint, p)
    assert train_cli.main(["--resume", str(p), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "different architecture" in err and "Traceback" not in err


def test_cli_reports_missing_data_clearly(tmp_path, capsys, monkeypatch):
    import torchvision.datasets.mnist as tvm

    monkeypatch.setattr(tvm, "download_and_extract_archive",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("network is unreachable")))
    out = tmp_path / "runs" / "new" / "w.pt"
    assert train_cli.main(["--data-dir", str(tmp_path / "none"), "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err and "MNIST" in err
    assert "network is unreachable" in err
    assert not (tmp_path / "runs").exists()  # nor is an empty folder for the weights left behind


def test_training_step_does_not_sync_every_batch(train_set, monkeypatch):
    """On a GPU each .item() waits for the device; the loop may only sync for what it prints."""
    data = train_set.subset(128 * 25)
    model = Net()
    opt, sched = training.make_optimizer(model, RECIPES["reliable"], epochs=1, steps_per_epoch=25)
    calls = {"n": 0}
    real_item = torch.Tensor.item

    def counting_item(self):
        calls["n"] += 1
        return real_item(self)

    monkeypatch.setattr(torch.Tensor, "item", counting_item)
    training.train_epoch(model, data, opt, sched, RECIPES["reliable"], 128, torch.Generator().manual_seed(0),
                         progress=True, desc_every=10)
    # batches 0, 10, 20 and the last one print; one more for the epoch's mean loss
    assert calls["n"] == 5


def test_cuda_path_selects_and_prepares_devices(train_set):
    assert training.pick_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert training.pick_device("auto").type == expected
    model, data = training.prepare(Net(), train_set.subset(256), torch.device("cpu"))
    assert data.images.is_contiguous(memory_format=torch.channels_last)
    assert model.block1.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    if torch.cuda.is_available():
        model, data = training.prepare(Net(), train_set.subset(256), torch.device("cuda"))
        assert data.images.is_cuda and model.block1.conv1.weight.is_cuda


@pytest.mark.parametrize("argv, message", [
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--lr", "nan"], "--lr must be a positive number"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["--train-subset", "-5"], "--train-subset must be a positive whole number, got -5"),
    (["--epochs", "0"], "--epochs must be a positive whole number, got 0"),
    (["--seed", str(2**64)], "--seed must be between 0 and"),
    # Side files are named after the file without ".pt": m.pth would share (and overwrite) m.pt's.
    (["--out", "weights/mnist_net.pth"], "--out must name a .pt file"),
    (["--out", "runs/model.v1"], "--out must name a .pt file"),
    (["--out", "runs/new-folder/"], "--out must name a .pt file"),
    (["--out", "weights/mnist_net.last.pt"], "not a *.last.pt checkpoint"),
])
def test_cli_rejects_bad_hyperparameters_before_training(argv, message, capsys, never_trains):
    with pytest.raises(SystemExit) as stop:
        train_cli.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("device, message", [
    ("gpu", "unknown device 'gpu': use auto, cpu, cuda or cuda:N"),
    ("mps", "unknown device 'mps'"),
    ("cuda", "sees no CUDA GPU; use --device cpu"),
])
def test_cli_rejects_an_unusable_device_with_a_message(device, message, tmp_path, capsys, monkeypatch, never_trains):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer with or without a GPU
    assert train_cli.main(["--device", device, "--out", str(tmp_path / "w.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and "Traceback" not in err
    assert not (tmp_path / "w.pt").exists()


def test_cli_reports_a_failed_save_without_a_traceback(tmp_path, data_dir, capsys, monkeypatch):
    def disk_full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_module, "save_weights", disk_full)
    code, out = _run(tmp_path, "full", data_dir=data_dir)
    assert code == 1
    err = capsys.readouterr().err
    assert "error: could not save the run's files" in err and "No space left on device" in err and "Traceback" not in err


def test_runs_never_overwrite_the_shipped_weights():
    from mnist_net.checkpoint import DEFAULT_WEIGHTS

    # A student's `python train.py --epochs 1` replaced the shipped weights and deleted their detector and rates;
    # a quick try, or the other recipe, must not land on a full run either.
    runs = DEFAULT_WEIGHTS.parents[1] / "runs"
    for argv, folder in (([], "reliable-seed1"), (["--recipe", "assignment", "--seed", "2"], "assignment-seed2"),
                         (["--train-subset", "256", "--epochs", "1"], "reliable-seed1-subset256")):
        s = run_module.Run.new(vars(train_cli.parse_args(argv))).settings
        assert s["out"] == str(runs / folder / "mnist_net.pt"), argv
    assert (s["epochs"], s["batch_size"], s["seed"], s["recipe"]) == (1, 128, 1, "reliable")


def test_an_unusable_out_is_refused_before_training(tmp_path, capsys, never_trains):
    (tmp_path / "folder.pt").mkdir()
    (tmp_path / "afile").write_text("")
    for out, message in ((tmp_path / "folder.pt", "it is a folder"), (tmp_path / "afile" / "w.pt", "afile is a file")):
        assert train_cli.main(["--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: cannot write the run's weights to {out}") and message in err and "Traceback" not in err, err
    (tmp_path / "old.pt").write_text("an earlier run's")
    with pytest.raises(AssertionError, match="started training"):  # an earlier run's file is replaced, as before
        train_cli.main(["--out", str(tmp_path / "old.pt")])


def test_a_killed_run_never_leaves_an_earlier_runs_evaluation_beside_new_weights(tmp_path, data_dir, monkeypatch,
                                                                                capsys):
    folder = tmp_path / "k"
    folder.mkdir()
    stale = {name: folder / name for name in ("w.eval.json", "w.misclassified.png", "w.curves.png", "w.detector.pt",
                                             "w.novelty.json")}
    for path in stale.values():
        path.write_text("an earlier run's")
    # As if killed outright (SIGKILL, power cut): nothing runs after it.
    real_epoch, _ = raise_in_second_epoch(monkeypatch, SystemError("killed"))
    with pytest.raises(SystemError):
        _run(tmp_path, "k", data_dir=data_dir)
    assert (folder / "w.pt").exists() and not any(p.exists() for p in stale.values())


def test_sigterm_stops_a_run_like_ctrl_c(tmp_path, data_dir, monkeypatch, capsys):
    import os
    import signal

    real_epoch, calls = training.train_epoch, {"n": 0}

    def killed_in_second_epoch(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` from another shell
        return real_epoch(*a, **k)

    monkeypatch.setattr(training, "train_epoch", killed_in_second_epoch)
    before = signal.getsignal(signal.SIGTERM)
    try:
        code, out = _run(tmp_path, "term", "--device", "cpu", data_dir=data_dir)
    finally:
        signal.signal(signal.SIGTERM, before)
    err = capsys.readouterr().err
    assert code == 130 and "Interrupted: the best weights" in err and "Traceback" not in err and "--resume" in err
    metrics = json.loads(out.with_name("w.metrics.json").read_text())
    evaluation = json.loads(out.with_name("w.eval.json").read_text())
    assert metrics["interrupted"] and metrics["epochs_done"] == 1
    assert evaluation["correct"] == metrics["history"]["test_correct"][metrics["best_epoch"] - 1]


def test_a_diverging_run_stops_with_a_message_and_valid_files(tmp_path, data_dir, capsys, monkeypatch):
    # Diverging after a good epoch: that epoch's weights are kept, evaluated and described in strict JSON.
    real_epoch, calls = training.train_epoch, {"n": 0}

    def nan_in_second_epoch(*a, **k):
        calls["n"] += 1
        loss = real_epoch(*a, **k)
        return float("nan") if calls["n"] == 2 else loss

    monkeypatch.setattr(training, "train_epoch", nan_in_second_epoch)
    code, out = _run(tmp_path, "later", data_dir=data_dir)
    err = capsys.readouterr().err
    assert code == 1 and "training diverged in epoch 2" in err and "smaller --lr" in err and "Traceback" not in err

    def no_nan(name):
        raise ValueError(f"{name} in JSON")

    metrics = json.loads(out.with_name("w.metrics.json").read_text(), parse_constant=no_nan)
    assert metrics["diverged"] and metrics["epochs_done"] == 1
    assert not out.with_name("w.last.pt").exists()  # resumed, it would diverge again step for step
    evaluation = json.loads(out.with_name("w.eval.json").read_text())
    assert evaluation["correct"] == metrics["history"]["test_correct"][0]


def test_an_interrupt_before_the_first_epoch_says_nothing_was_saved(tmp_path, data_dir, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_epoch", interrupted)
    code, out = _run(tmp_path, "early", data_dir=data_dir)
    assert code == 130 and not out.exists()
    err = capsys.readouterr().err
    assert "no epoch finished in this session" in err and "Nothing was saved" in err and "are saved" not in err
    # A new run stopped before its first epoch has nothing to resume, even where an older run's checkpoint lies.
    out.parent.mkdir(exist_ok=True)
    out.with_name("w.last.pt").write_text("an older run's")
    assert _run(tmp_path, "early", data_dir=data_dir)[0] == 130
    assert "Resume with" not in capsys.readouterr().err


def test_a_second_ctrl_c_while_evaluating_waits_for_the_evaluation(tmp_path, data_dir, capsys, monkeypatch):
    import os
    import signal

    real_curves = run_module.save_curves

    def interrupted_twice(*a, **k):  # Ctrl-C and then SIGTERM while the curves are drawn
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        return real_curves(*a, **k)

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(run_module, "save_curves", interrupted_twice)
    code, out = _run(tmp_path, "late", "--epochs", "1", data_dir=data_dir)
    assert code == 0 and out.with_name("w.curves.png").exists() and out.with_name("w.eval.json").exists()
    assert "Traceback" not in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C works again afterwards


def test_recipes_state_the_optimiser_settings_they_train_with():
    # The assignment's run: SGD(lr=0.01, momentum=0.9), no schedule.
    opt, sched = training.make_optimizer(Net(), RECIPES["assignment"], epochs=19, steps_per_epoch=469)
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"]) == (0.01, 0.9)
    for _ in range(1000):
        opt.step()
        sched.step()
    assert (group["lr"], group["momentum"]) == (0.01, 0.9)
    # reliable: OneCycle, with momentum cycled over the recipe's stated range (PyTorch's default range).
    recipe = RECIPES["reliable"]
    opt, sched = training.make_optimizer(Net(), recipe, epochs=19, steps_per_epoch=469)
    group, seen = opt.param_groups[0], []
    for _ in range(19 * 469):
        seen.append((group["lr"], group["momentum"]))
        opt.step()
        sched.step()
    lrs, moms = zip(*seen)
    low, high = recipe.cycle_momentum
    assert max(lrs) == pytest.approx(recipe.lr) and moms[0] == high and moms[-1] == pytest.approx(high)
    assert min(moms) == pytest.approx(low) and moms[lrs.index(max(lrs))] == pytest.approx(low)


def test_train_subset_larger_than_mnist_is_refused(tmp_path, data_dir, capsys):
    out = tmp_path / "big" / "w.pt"
    assert train_cli.main(["--train-subset", "100000", "--data-dir", data_dir, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--train-subset 100000 is more than the 60000 training images" in err and not out.exists()


def test_graphed_step_bookkeeping_trains_exactly_like_the_plain_loop(train_set):
    """The CUDA-graph path on a CPU (capture off): same batches, same math, and the gradient tensors the graph
    writes stay the parameters' .grad through the eager last partial batch (dropping them would detach the graph)."""
    data = train_set.subset(128 * 6 + 40)  # 6 full batches for the step, a partial one for the eager path
    recipe = RECIPES["reliable"]
    models = []
    for use_step in (False, True):
        torch.manual_seed(11)
        model = Net()
        opt, sched = training.make_optimizer(model, recipe, epochs=2, steps_per_epoch=7)
        generator = torch.Generator().manual_seed(4)
        step = training.graphed_step(model, data, recipe, 128, generator, capture=False) if use_step else None
        grads = None
        for _ in range(2):
            loss = training.train_epoch(model, data, opt, sched, recipe, 128, generator, progress=False, step=step)
            if step is not None:
                grads = grads or [p.grad for p in model.parameters()]
                assert all(p.grad is g for p, g in zip(model.parameters(), grads))
        models.append((model, loss))
    (plain, plain_loss), (stepped, stepped_loss) = models
    assert stepped_loss == plain_loss
    for (name, a), b in zip(plain.state_dict().items(), stepped.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(plain.block1.conv1.weight, Net().block1.conv1.weight)  # it did train
    stepped.eval()  # a graph holds the training-mode step: replaying it for an eval-mode model is refused
    with pytest.raises(RuntimeError, match="train mode"):
        step(torch.arange(128))


def test_short_onecycle_runs_schedule_every_length():
    """OneCycleLR divided by zero at 5 steps in all (its warm-up ended on step 0): a traceback for --epochs 5
    on 128 images or fewer."""
    for total in range(1, 13):
        opt, sched = training.make_optimizer(Net(), RECIPES["reliable"], epochs=total, steps_per_epoch=1)
        lrs = []
        for _ in range(total):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert 0 < min(lrs) and max(lrs) <= RECIPES["reliable"].lr, (total, lrs)
        assert total == 1 or lrs[-1] < max(lrs), (total, lrs)  # it anneals


def test_a_checkpoint_copied_alone_resumes_and_reports_the_best_epoch_it_saved(tmp_path, data_dir, monkeypatch, capsys):
    """A checkpoint resumed without its best weights saves the best of the new epochs beside itself; the metrics
    and the summary name that epoch, not an earlier, better one whose weights are not there."""
    accuracies = iter([900, 800])  # epoch 1 scores better than epoch 2
    monkeypatch.setattr(training, "evaluate", lambda *_a, **_k: training.EvalResult(0.5, next(accuracies), 1000))
    real_epoch, _ = raise_in_second_epoch(monkeypatch, KeyboardInterrupt)
    assert _run(tmp_path, "orig", "--device", "cpu", data_dir=data_dir)[0] == 130
    monkeypatch.setattr(training, "train_epoch", real_epoch)
    (tmp_path / "alone").mkdir()
    alone = Path(shutil.copy(tmp_path / "orig" / "w.last.pt", tmp_path / "alone" / "w.last.pt"))
    capsys.readouterr()
    assert train_cli.main(["--resume", str(alone), "--no-progress", "--data-dir", data_dir]) == 0
    said = capsys.readouterr()
    assert "best weights so far are not beside its checkpoint" in said.err
    saved_epoch = torch.load(alone.with_name("w.pt"), weights_only=True)["metrics"]["epoch"]
    metrics = json.loads(alone.with_name("w.metrics.json").read_text())
    assert saved_epoch == 2 and metrics["best_epoch"] == 2 and metrics["best_accuracy"] == 80.0
    assert "Best accuracy: 80.00% (epoch 2)" in said.out
    assert alone.with_name("w.eval.json").exists()
