"""What the app's Model tab shows, read from the committed artifacts beside the weights (no dataset needed)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .artifacts import artifact_paths, read_json, sibling
from .model import Net, summary_rows
from .sketch import Sketch, from_mnist


def architecture_rows(model: Net) -> list[list]:
    """[block, layer, type, output shape, params] per layer, in the assignment's table order."""
    names = [(block, name) for block in model.block_names
             for name, layer in getattr(model, block).named_children() if type(layer).__name__ != "ReLU"]
    rows = summary_rows(model)
    return [[b, n, kind, " x ".join(map(str, shape)), params] for (b, n), (kind, shape, params) in zip(names, rows)]


def curve_frames(history: dict, target: float = 99.4):
    """Long-form tables for the two line plots: (epoch, accuracy, series) with the target, (epoch, loss, series)."""
    import pandas as pd  # the app's plots take DataFrames; nothing else here needs pandas

    acc, loss = [], []
    for e, a in enumerate(history["test_accuracy"], start=1):
        acc += [[e, a, "test accuracy (%)"], [e, target, f"{target}% target"]]
    for e, (tr, te) in enumerate(zip(history["train_loss"], history["test_loss"]), start=1):
        loss += [[e, tr, "train loss"], [e, te, "test loss"]]
    return (pd.DataFrame(acc, columns=["epoch", "accuracy", "series"]),
            pd.DataFrame(loss, columns=["epoch", "loss", "series"]))


def training_summary(metrics: dict) -> str:
    """One line on the training run: recipe, seed, device, the first epoch at >= 99.4%, the best accuracy."""
    m = metrics
    return (f"Training run (recipe `{m['recipe']['name']}`, seed {m['args']['seed']}, {m['device']}): first epoch "
            f">= 99.4%: {m.get('first_epoch_at_99_4') or 'never'}, best {m.get('best_accuracy')}% "
            f"at epoch {m.get('best_epoch')}")


def percent(p: float) -> str:
    """'87%'; a confidence short of certain never reads '100%' ('99.5%', or '>99.9%' when even that rounds up)."""
    if round(p * 100) < 100 or p >= 1:
        return f"{p:.0%}"
    return f"{p:.1%}" if round(p * 1000) < 1000 else ">99.9%"


@dataclass
class Misclassified:
    """One misclassified test digit."""

    index: int
    label: int
    predicted: int
    confidence: float
    pixels: np.ndarray  # 28 x 28 uint8, white on black as in MNIST

    @property
    def caption(self) -> str:
        """'#1234: true 4, predicted 9 (87%)'."""
        return f"#{self.index}: true {self.label}, predicted {self.predicted} ({percent(self.confidence)})"

    @property
    def short_caption(self) -> str:
        """'4→9 (87%)': true digit, prediction, confidence; short enough for a gallery thumbnail."""
        return f"{self.label}\u2192{self.predicted} ({percent(self.confidence)})"

    def as_drawing(self, size: int = 280) -> np.ndarray:
        """Dark ink on white at canvas size, so it can be loaded into the sketchpad."""
        big = Image.fromarray(255 - self.pixels).resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(big.convert("RGB"))

    def as_sketch(self) -> Sketch:
        """The digit exactly as the evaluation fed it to the network, so the app shows the recorded mistake."""
        return from_mnist(self.pixels)


@dataclass
class ModelReport:
    """Everything the Model tab needs; built from files, so the app needs no dataset at run time."""

    metrics: dict | None
    evaluation: dict | None
    misclassified: list[Misclassified]
    problems: list[str]


def load_report(weights: str | Path) -> ModelReport:
    """Read metrics, evaluation and misclassified digits written beside the weights; note what is missing."""
    weights = Path(weights)
    problems, metrics, evaluation, wrong = [], None, None, []
    try:  # a weights "path" such as "." or "/" has no file name to put a suffix on: ValueError
        metrics_path = sibling(weights, ".metrics.json")
        metrics = read_json(metrics_path)
        training_summary(metrics), curve_frames(metrics["history"])  # what the Model tab reads, all there
    except (OSError, ValueError, KeyError, TypeError) as e:
        metrics = None
        problems.append(f"Training metrics unavailable beside {weights} ({type(e).__name__}: {e}). "
                        "`python train.py --out` writes them beside the weights it names.")
    try:
        eval_path, sprite_path = artifact_paths(weights, weights.parent)
        evaluation = read_json(eval_path)
        evaluation["line"], evaluation["confusion_matrix"], evaluation["total"] - evaluation["correct"]  # all there
        sprite = np.asarray(Image.open(sprite_path).convert("L"))
        cols, cell = evaluation["sprite"]["columns"], evaluation["sprite"]["cell"]
        for k, rec in enumerate(evaluation["misclassified"]):
            r, c = divmod(k, cols)
            wrong.append(Misclassified(rec["index"], rec["label"], rec["predicted"], rec["confidence"],
                                       sprite[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell]))
    except (OSError, ValueError, KeyError, TypeError) as e:
        evaluation, wrong = None, []
        problems.append(f"Test-set evaluation unavailable ({type(e).__name__}: {e}). "
                        f"`python -m mnist_net.evaluate --weights {weights} --artifacts {weights.parent}` writes it.")
    return ModelReport(metrics, evaluation, wrong, problems)
