"""Knows when a drawing is not a digit: a small detector on the network's own block features, fitted after training.

The network is unchanged. The detector reads what the blocks computed for a drawing (block 1's channels pooled, the
maps of blocks 2-3 and of block 4's first stage, the 10 class scores) and gives a novelty score: the log-odds that the
drawing is not a digit. It learns it from MNIST digits, as they are and redrawn with the app's brush, and brush-drawn
digits of Hershey and handwriting fonts, against the same fonts' letters, shapes, scribbles and two-digit numbers
(mnist_net/drawings.py). Its threshold is set on digits alone: 1% of other MNIST training digits, drawn on a canvas
or redrawn with the brush, score above it. Fit: `python -m mnist_net.novelty`; measure: `python bench/novelty.py`.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .artifacts import read_json, sibling, write_json
from .checkpoint import DEFAULT_WEIGHTS, WeightsError, atomic_torch_save, load_model
from .model import Net

SUFFIX = ".detector.pt"
RATES_SUFFIX = ".novelty.json"  # what bench/novelty.py measured with this detector (the Model tab shows it)
FORMAT = "mnist_net.detector/2"
# block 1's channels pooled (mean, max), blocks 2-3, block 4's conv7 stage, the class scores
N_FEATURES = 2 * 10 + 16 * 8 * 8 + 16 * 4 * 4 + 16 * 2 * 2 + 10
METHOD = ("A small detector (five small networks of one hidden layer, averaged) reads what the four blocks computed for "
          "the drawing and scores how unlike a digit it is: it learnt that from MNIST and brush-drawn digits against "
          "brush-drawn letters, shapes, scribbles and two-digit numbers; the network itself is unchanged. The threshold "
          "is set on digits alone: 1% of MNIST training digits it never saw score above it.")
SET_TITLES = {"mnist-test": "MNIST test digits, drawn on a canvas",
              "writers": "digits in held-out Debian handwriting fonts",
              "schools": "digits in schools' handwriting-model fonts",
              "handwriting": "digits in 104 Google Fonts handwriting fonts", "letters": "letters in the held-out fonts",
              "shapes": "shapes (8 kinds)", "scribbles": "scribbles"}
FONT_SETS = ("writers", "schools", "handwriting")  # digits drawn from fonts: bench/novelty.py's other writers
TARGETS = {"mnist-test": "<= 1% flagged", **dict.fromkeys(FONT_SETS, "<= 3% flagged, >= 99% read right"),
           "non-digits": ">= 85% flagged"}
# The Model tab's plot: a colour per set, then the threshold, seen on light and dark themes alike (short names: a
# phone's legend has room for three).
PLOT_COLOURS = {"MNIST digits": "#1f77b4", "font digits": "#2ca02c", "non-digits": "#d62728", "threshold": "#ff7f0e"}
DIGIT_QUANTILE = 0.99  # the threshold: this share of MNIST digits not used in the fit score below it
HEADS = 5  # averaged: one head's rates on unseen kinds of drawing swing with its seed (docs/novelty.md)


def _head(hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, 1))


class Detector(nn.Module):
    """Standardised block features -> small heads, their outputs averaged -> novelty (log-odds of "not a digit")."""

    def __init__(self, hidden: int = 64, heads: int = HEADS):
        super().__init__()
        self.register_buffer("mean", torch.zeros(N_FEATURES))
        self.register_buffer("std", torch.ones(N_FEATURES))
        self.register_buffer("threshold", torch.tensor(0.0))
        self.heads = nn.ModuleList(_head(hidden) for _ in range(heads))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = (features - self.mean) / self.std
        return torch.stack([head(z)[:, 0] for head in self.heads]).mean(0)


def features(model: Net, blocks: dict) -> torch.Tensor:
    """B x N_FEATURES from `model.forward_blocks`' outputs (eval mode)."""
    stage7 = model.block4[:-1](blocks["block3"])  # all of block 4 but its last conv
    b1 = blocks["block1"].flatten(2)
    return torch.cat([b1.mean(2), b1.amax(2), blocks["block2"].flatten(1), blocks["block3"].flatten(1),
                      stage7.flatten(1), blocks["block4"].flatten(1)], 1)


@torch.inference_mode()
def novelty(model: Net, detector: Detector, blocks: dict) -> float:
    return float(detector(features(model, blocks))[0])


def detector_path(weights) -> Path:
    return sibling(weights, SUFFIX)


def rates_path(weights) -> Path:
    """The rates bench/novelty.py measured with the detector beside these weights."""
    return sibling(weights, RATES_SUFFIX)


def save(detector: Detector, weights) -> Path:
    path = detector_path(weights)
    atomic_torch_save({"format": FORMAT, "state_dict": detector.state_dict(),
                       "hidden": detector.heads[0][0].out_features, "heads": len(detector.heads)}, path)
    rates_path(weights).unlink(missing_ok=True)  # rates measured with another detector
    return path


def load(weights) -> Detector | None:
    """The detector fitted for these weights; None when there is none (or it is unreadable: the app then reads
    drawings without the not-a-digit check, and says so)."""
    path = detector_path(weights)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("format") != FORMAT or not 1 <= int(saved["heads"]) <= 64:  # another format, or a crafted file
            return None
        detector = Detector(int(saved["hidden"]), int(saved["heads"]))
        detector.load_state_dict(saved["state_dict"])
    except Exception:  # weights_only runs nothing; a file that is not a detector fails in many ways
        return None
    return detector.eval()


def write_rates(weights, results: dict, scores: dict, non_digits: float, command: str) -> Path:
    """The measured rates and each set's histogram of scores, beside the weights."""
    detector = load(weights)
    edges = np.linspace(-30, 30, 31)
    clipped = {name: np.clip(v, edges[0], edges[-1]) for name, v in scores.items()}
    path = rates_path(weights)
    write_json({"threshold": None if detector is None else round(float(detector.threshold), 4), "command": command,
                "sets": results, "non_digits_flagged": non_digits,
                "histogram": {"edges": edges.tolist(),
                              "counts": {n: np.histogram(v, edges)[0].tolist() for n, v in clipped.items()}}}, path)
    return path


def rates_table(rates: dict) -> str:
    """The measured rates as a Markdown table (the README's and the Model tab's)."""
    rows = ["| drawings never used in fitting | drawings | flagged as not a digit | of the rest, read right | target |",
            "| --- | ---: | ---: | ---: | --- |"]
    for name, r in rates["sets"].items():
        right = f"{r['read_right']:.2%}" if "read_right" in r else ""
        rows.append(f"| {SET_TITLES.get(name, name)} | {r['n']:,} | {r['flagged']:.1%} | {right} | {TARGETS.get(name, '')} |")
    n = sum(r["n"] for name, r in rates["sets"].items() if "read_right" not in r)
    rows.append(f"| letters, shapes and scribbles together | {n:,} | {rates['non_digits_flagged']:.1%} | | {TARGETS['non-digits']} |")
    return "\n".join(rows)


def summary(weights, detector: Detector | None, rates: dict | None) -> str:
    """The Model tab's account of the detector (Markdown): the method, the threshold, the measured rates."""
    if detector is None:
        return (f"No not-a-digit detector beside {Path(weights).name}: drawings are read as digits whatever they are. "
                f"`python -m mnist_net.novelty --weights {weights}` fits one.")
    text = (f"{METHOD} Threshold: **{float(detector.threshold):.2f}**; above it, the Draw tab says \"This doesn't look "
            f"like a digit\".")
    if not rates:
        return text + " Not measured yet: `python bench/novelty.py --write` measures it."
    return f"{text}\n\n{rates_table(rates)}\n\nMeasured with `{rates['command']}`."


def histogram_frame(rates: dict, threshold: float):
    """Digits' and non-digits' share of drawings per novelty bin, and the threshold as a vertical line: a plot's data."""
    import pandas as pd

    edges, counts = rates["histogram"]["edges"], rates["histogram"]["counts"]
    rows = []
    for title, names in zip(PLOT_COLOURS, (["mnist-test"], FONT_SETS, ["letters", "shapes", "scribbles"])):
        summed = np.sum([counts[n] for n in names if n in counts], axis=0)
        rows += [(0.5 * (a + b), 100.0 * c / max(1, summed.sum()), title) for a, b, c in zip(edges, edges[1:], summed)]
    rows += [(threshold, y, "threshold") for y in (0.0, max(r[1] for r in rows))]
    return pd.DataFrame(rows, columns=["novelty", "share", "set"])


def read_rates(weights) -> dict | None:
    """The rates bench/novelty.py measured for these weights; None if there are none, or not in the form it writes."""
    try:
        rates = read_json(rates_path(weights))
        rates_table(rates), histogram_frame(rates, 0.0)  # what the Model tab reads, all there
        return rates
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


# ---- fitting ----------------------------------------------------------------------------------------------------

def _drawn_features(model: Net, canvases) -> torch.Tensor:
    """Features of drawings, each preprocessed as the app preprocesses a canvas."""
    from .sketch import preprocess

    tensors = [s.tensor for s in map(preprocess, canvases) if s is not None]
    return _features_of(model, torch.cat(tensors))


@torch.inference_mode()
def _features_of(model: Net, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([features(model, model.forward_blocks(b)) for b in x.split(1000)])


def fitting_sets(model: Net, train_images: torch.Tensor, seed: int = 0, log=print):
    """(digits, non-digits, calibration digits) features for `model` (eval mode): MNIST training digits
    (N x 1 x 28 x 28, normalised) as they are and redrawn with the brush, and drawings made here."""
    from . import drawings as d
    from .data import MNIST_MEAN, MNIST_STD

    rng = np.random.default_rng(seed)
    t0 = time.time()
    order = rng.permutation(len(train_images))
    raw = lambda idx: (train_images[idx, 0].numpy() * MNIST_STD + MNIST_MEAN).clip(0, 1)  # noqa: E731
    digits = torch.cat([
        _features_of(model, train_images[order[:20000]]),
        _drawn_features(model, (d.mnist_redrawn(x, rng) for x in raw(order[20000:26000]))),
        _drawn_features(model, (g[0] for g in d.glyphs("0123456789", 15, rng, group=0)))])
    pairs = raw(order[26000:28000])
    others = torch.cat([
        _drawn_features(model, (g[0] for g in d.glyphs(d.LETTERS, 5, rng, group=0))),
        _drawn_features(model, (d.shape(k, rng) for k in d.SHAPES[0] for _ in range(150))),
        _drawn_features(model, (d.scribble(rng) for _ in range(1500))),
        _drawn_features(model, (d.two_digits(a, b, rng) for a, b in zip(pairs[::2], pairs[1::2])))])
    calibration = torch.cat([_drawn_features(model, (d.mnist_drawn(x, rng) for x in raw(order[28000:33000]))),
                             _drawn_features(model, (d.mnist_redrawn(x, rng) for x in raw(order[33000:36000])))])
    log(f"detector: {len(digits):,} digits, {len(others):,} non-digits, {len(calibration):,} to set the threshold "
        f"({time.time() - t0:.0f} s)")
    return digits, others, calibration


def fit_head(digits: torch.Tensor, others: torch.Tensor, calibration: torch.Tensor, seed: int = 0, hidden: int = 64,
             heads: int = HEADS, epochs: int = 20, weight_decay: float = 1e-2, log=print) -> Detector:
    """The detector trained to tell digits from non-digits; its threshold from the calibration digits alone."""
    detector = Detector(hidden, heads=0)
    x = torch.cat([digits, others])
    y = torch.cat([torch.zeros(len(digits)), torch.ones(len(others))])
    detector.mean.copy_(x.mean(0))
    detector.std.copy_(x.std(0).clamp_min(1e-4))
    z = (x - detector.mean) / detector.std
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(len(digits) / len(others)))
    for k in range(heads):  # each head on its own seed (its initial weights, its batches); seeds never shared
        torch.manual_seed(seed * heads + k)
        head = _head(hidden)
        opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=weight_decay)
        for _ in range(epochs):
            for idx in torch.randperm(len(x)).split(256):
                opt.zero_grad()
                loss_fn(head(z[idx])[:, 0], y[idx]).backward()
                opt.step()
        detector.heads.append(head)
    detector.eval()
    with torch.inference_mode():
        detector.threshold.fill_(torch.quantile(detector(calibration), DIGIT_QUANTILE))
        caught = (detector(others) > detector.threshold).float().mean()
    log(f"detector: threshold {float(detector.threshold):.2f}; {caught:.1%} of the fitting non-digits above it")
    return detector


def fit(model: Net, train_images: torch.Tensor, seed: int = 0, log=print) -> Detector:
    """Fit the detector for `model` (eval mode) on MNIST training digits and drawings made here."""
    return fit_head(*fitting_sets(model, train_images, seed, log), seed=seed, log=log)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mnist_net.novelty",
                                description="Fit the not-a-digit detector for a weights file (written beside it).")
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="weights file (default: the shipped weights)")
    p.add_argument("--data-dir", default=None, help="torchvision MNIST root (default: as train.py's)")
    p.add_argument("--seed", type=int, default=0, help="drawings' and fitting's seed (default: %(default)s)")
    args = p.parse_args(argv)
    if args.seed < 0:
        p.error(f"--seed must be 0 or more (got {args.seed})")  # numpy's generators take no negative seed
    from .data import DataError, load_mnist

    try:
        model = load_model(args.weights)
        detector = fit(model, load_mnist(args.data_dir, train=True).images, args.seed)
    except (WeightsError, DataError, FileNotFoundError) as e:  # FileNotFoundError: the handwriting fonts
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        print(f"Wrote {save(detector, args.weights)}")
    except OSError as e:
        print(f"error: could not write {detector_path(args.weights)}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
