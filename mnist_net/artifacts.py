"""Files written beside a weights file: metrics JSON and the training-curves PNG, atomically."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

from .checkpoint import atomic_write_bytes


def sibling(weights: str | os.PathLike, suffix: str) -> Path:
    """weights/mnist_net.pt + '.metrics.json' -> weights/mnist_net.metrics.json."""
    p = Path(weights)
    return p.with_name(p.stem + suffix)


def artifact_paths(weights, out_dir) -> tuple[Path, Path]:
    """(eval JSON, misclassified sprite PNG) for a weights file, inside out_dir."""
    stem = Path(weights).stem
    return Path(out_dir) / f"{stem}.eval.json", Path(out_dir) / f"{stem}.misclassified.png"


def write_json(obj, path: str | os.PathLike) -> None:
    """Pretty JSON, written atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def read_json(path: str | os.PathLike):
    """Parse a JSON file."""
    return json.loads(Path(path).read_text())


def curves_png(history: dict, title: str = "", target: float = 99.4) -> bytes:
    """PNG bytes: loss (train and test) and test accuracy per epoch, the target line marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = list(range(1, len(history["test_accuracy"]) + 1))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    ax_loss.plot(epochs, history["train_loss"], "o-", label="train (mean over epoch)")
    ax_loss.plot(epochs, history["test_loss"], "s-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="NLL loss", yscale="log", title="Loss")
    ax_loss.legend()
    ax_acc.plot(epochs, history["test_accuracy"], "s-", color="tab:green", label="test accuracy")
    ax_acc.axhline(target, color="tab:red", ls="--", lw=1, label=f"{target}% target")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Test accuracy (10k)",
               ylim=(max(97.0, min(history["test_accuracy"]) - 0.2), 100))
    ax_acc.legend(loc="lower right")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.set_xticks(epochs)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def save_curves(history: dict, path: str | os.PathLike, title: str = "") -> None:
    """Write the training-curves PNG atomically."""
    atomic_write_bytes(path, curves_png(history, title))
