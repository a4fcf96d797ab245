"""Weights files: atomic writes, safe loads (weights_only=True), and clear errors for bad files."""
from __future__ import annotations

import io
import json
import os
import re
import shlex
import pickle
import tempfile
from pathlib import Path

import torch

from .model import ModelConfig, Net

FORMAT = "mnist_net/1"
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS = PACKAGE_DIR.parent / "weights" / "mnist_net.pt"
TRAIN_COMMAND = "python train.py"


def served_weights() -> Path:
    """The weights the app serves: $MNIST_NET_WEIGHTS, else the shipped ones."""
    return Path(os.environ.get("MNIST_NET_WEIGHTS") or DEFAULT_WEIGHTS)


class WeightsError(RuntimeError):
    """A weights file is missing, unreadable or does not fit the model."""


def _fix(path: Path) -> str:
    path = Path(path)
    if path.suffix != ".pt" or path.name.endswith(".last.pt"):  # not a name train.py --out accepts
        return f"Pass a weights file written by `{TRAIN_COMMAND}` (the shipped one is {DEFAULT_WEIGHTS})."
    shipped = path.resolve() == DEFAULT_WEIGHTS.resolve()
    return (f"Run `{TRAIN_COMMAND} --out {shlex.quote(str(path))}` to produce good weights"
            + (" (or `git checkout -- weights/` to restore the shipped ones)." if shipped else "."))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write data to path via a temp file in the same folder and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """torch.save, atomically."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def save_weights(model: Net, path: str | os.PathLike, metrics: dict | None = None,
                 train_state: dict | None = None) -> None:
    """Save state_dict + config (+ metrics, + optional resume state) atomically."""
    payload = {
        "format": FORMAT,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        # Through JSON: only plain types survive, so weights_only=True can always read it back
        # (torch.__version__, a str subclass, would otherwise make the file unloadable).
        "metrics": json.loads(json.dumps(metrics or {}, default=str)),
    }
    if train_state is not None:
        payload["train_state"] = train_state
    atomic_torch_save(payload, path)


def read_checkpoint(path: str | os.PathLike | None = None, fix: str | None = None) -> dict:
    """Load a weights file safely (no code execution) and check its structure; raise WeightsError, ending with `fix`
    (default: how to make or restore such a file)."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    fix = fix or _fix(path)
    if not path.exists():
        raise WeightsError(f"Weights file not found: {path}. {fix}")
    if path.is_dir():
        raise WeightsError(f"Weights path is a folder, not a file: {path}. {fix}")
    if path.stat().st_size == 0:
        raise WeightsError(f"Weights file is empty: {path}. {fix}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses anything but tensors and plain containers: a crafted pickle lands here,
        # and so does a file that is no pickle at all (a text file, an image), which needs another message.
        # torch words it "Unsupported global: GLOBAL builtins.open" or "unsupported GLOBAL posix.system".
        found = re.search(r"unsupported (?:global|class):? (?:GLOBAL )?([\w.]+)", str(e), re.IGNORECASE)
        if found is None:
            raise WeightsError(f"Weights file is not a PyTorch file: {path} (the safe loader could not read it "
                               f"as one; nothing in it was run). "
                               f"{fix}") from None
        raise WeightsError(f"Refused to load {path}: it contains Python objects other than weights "
                           f"({found.group(1)}), which could run code when unpickled, so it was not unpickled. "
                           f"{fix}") from None
    except Exception as e:  # weights_only runs nothing; bytes that are not weights fail in many ways (KeyError, ...)
        # torch's own words say what is wrong with a zip or a file; a KeyError's (a memo index) says nothing.
        detail = f" ({str(e).splitlines()[0]})" if isinstance(e, (RuntimeError, OSError)) and str(e) else ""
        raise WeightsError(f"Weights file is truncated or not a PyTorch file: {path}{detail}. {fix}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or "state_dict" not in obj:
        kind = type(obj).__name__
        raise WeightsError(f"{path} is not an mnist_net weights file (found a {kind} without "
                           f"format '{FORMAT}'). {fix}")
    return obj


def build_model(ckpt: dict, path: str | os.PathLike = "<checkpoint>") -> Net:
    """Rebuild Net from a checkpoint's config and load its state_dict strictly."""
    try:
        config = ModelConfig(**ckpt.get("config", {}))
        model = Net(**config.to_dict())
    except (TypeError, ValueError, RuntimeError) as e:  # RuntimeError: sizes torch cannot build, e.g. -1 classes
        raise WeightsError(f"{path} has an unusable model config {ckpt.get('config')!r} ({e}). "
                           f"{_fix(Path(path))}") from None
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        # torch's first line is only "Error(s) in loading state_dict for Net:"; the details follow.
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
        first = lines[1] if len(lines) > 1 else lines[0]
        raise WeightsError(f"{path} holds weights for a different architecture: {first.rstrip('.')}. "
                           f"{_fix(Path(path))}") from None
    return model


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Net:
    """Net in eval mode with the weights from path (default: the shipped weights)."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    model = build_model(read_checkpoint(path), path)
    return model.to(device).eval()
