import os
import pickle

import pytest
import torch

from mnist_net import checkpoint
from mnist_net.checkpoint import WeightsError, load_model, save_weights
from mnist_net.model import Net


def test_round_trip_rebuilds_the_exact_model(tmp_path):
    model = Net(dropout=0.2)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    path = tmp_path / "w.pt"
    save_weights(model, path, metrics={"seed": 3, "torch": torch.__version__})
    loaded = load_model(path)
    assert not loaded.training and loaded.config.dropout == 0.2
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    assert torch.load(path, weights_only=True)["metrics"]["seed"] == 3
    assert not list(tmp_path.glob("*.tmp"))


def _expect(path, *fragments):
    with pytest.raises(WeightsError) as e:
        load_model(path)
    msg = str(e.value)
    assert str(path) in msg and "python train.py" in msg
    for f in fragments:
        assert f in msg, msg
    return msg


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.pt", "not found")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    _expect(p, "empty")


def test_truncated_file(tmp_path):
    good = tmp_path / "good.pt"
    save_weights(Net(), good)
    p = tmp_path / "truncated.pt"
    p.write_bytes(good.read_bytes()[:5000])
    _expect(p, "truncated")


def test_wrong_architecture(tmp_path):
    sd = Net().state_dict()
    sd["block1.conv1.weight"] = torch.zeros(8, 1, 3, 3)
    p = tmp_path / "wide.pt"
    torch.save({"format": checkpoint.FORMAT, "config": {"dropout": 0.1, "num_classes": 10}, "state_dict": sd,
                "metrics": {}}, p)
    _expect(p, "different architecture")


def test_a_config_torch_cannot_build(tmp_path):
    p = tmp_path / "negative.pt"
    torch.save({"format": checkpoint.FORMAT, "config": {"dropout": 0.1, "num_classes": -1},
                "state_dict": Net().state_dict(), "metrics": {}}, p)
    _expect(p, "unusable model config")


def test_wrong_type(tmp_path):
    p = tmp_path / "list.pt"
    torch.save([1, 2, 3], p)
    _expect(p, "not an mnist_net weights file")
    p2 = tmp_path / "bare_state_dict.pt"
    torch.save(Net().state_dict(), p2)
    _expect(p2, "not an mnist_net weights file")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _ShellExploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # the classic one: torch words its refusal differently ("unsupported GLOBAL")
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "state_dict": _Exploit(str(marker))}, p)
    _expect(p, "Refused")
    assert not marker.exists()
    torch.save({"format": checkpoint.FORMAT, "state_dict": _ShellExploit(str(marker))}, p)
    assert "system" in _expect(p, "Refused")
    assert not marker.exists()
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(WeightsError):
        load_model(raw)
    assert not marker.exists()


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    p = tmp_path / "w.pt"
    save_weights(Net(), p)
    before = p.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save_weights(Net(dropout=0.3), p)
    assert p.read_bytes() == before
    assert not list(tmp_path.glob(".*tmp"))
    load_model(p)


def test_a_file_that_is_no_pickle_is_not_called_dangerous(tmp_path):
    p = tmp_path / "notes.pt"
    p.write_text("-- not weights, just text --\n")
    msg = _expect(p, "not a PyTorch file")
    assert "Refused" not in msg


def test_a_bad_weights_path_gets_advice_train_py_accepts(tmp_path):
    """The advice used to be `python train.py --out PATH` for any PATH, which train.py refuses for a checkpoint,
    a folder or a metrics file, and to `git checkout -- weights/` for files that are not the shipped ones."""
    import train as train_cli
    from mnist_net.checkpoint import DEFAULT_WEIGHTS, WeightsError, load_model

    for path, advice in [(tmp_path / "a b" / "m.pt", f"`python train.py --out '{tmp_path}/a b/m.pt'`"),
                         (tmp_path / "m.last.pt", "Pass a weights file written by `python train.py`"),
                         (tmp_path, "Pass a weights file written by `python train.py`"),
                         (tmp_path / "m.metrics.json", "Pass a weights file written by `python train.py`")]:
        with pytest.raises(WeightsError) as e:
            load_model(path)
        assert advice in str(e.value) and "git checkout" not in str(e.value), str(e.value)
        if "--out" in advice:
            assert train_cli.parse_args(["--out", str(path)]).out == str(path)  # the advice is a command that runs
    assert "git checkout -- weights/" in checkpoint._fix(DEFAULT_WEIGHTS)
