"""Evaluate a weights file on the 10k MNIST test set: python -m mnist_net.evaluate [--weights PATH]."""
from __future__ import annotations

import argparse
import sys
import time

import torch

from .checkpoint import DEFAULT_WEIGHTS, WeightsError, load_model
from .data import DataError, MNISTTensors, default_data_dir, load_mnist
from .training import EvalResult, evaluate, predictions


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """num_classes x num_classes counts; rows are true labels, columns predictions."""
    return torch.bincount(labels * num_classes + predicted, minlength=num_classes ** 2).view(num_classes, num_classes)


def format_report(result: EvalResult, cm: torch.Tensor) -> str:
    """Per-class accuracy and the confusion matrix as text."""
    lines = ["", "Per-class accuracy:"]
    for digit in range(cm.shape[0]):
        total = int(cm[digit].sum())
        lines.append(f"  {digit}: {int(cm[digit, digit])}/{total} ({100.0 * int(cm[digit, digit]) / max(total, 1):.2f}%)")
    lines += ["", "Confusion matrix (rows: true digit, columns: predicted):",
              "      " + "".join(f"{d:>6}" for d in range(cm.shape[1]))]
    for digit in range(cm.shape[0]):
        lines.append(f"  {digit:>2}  " + "".join(f"{int(v):>6}" for v in cm[digit]))
    return "\n".join(lines)


def run(weights=None, data_dir=None, test: MNISTTensors | None = None) -> tuple[EvalResult, torch.Tensor, torch.Tensor]:
    """(result, confusion matrix, probabilities N x 10) for a weights file on the test set."""
    model = load_model(weights)
    test = test if test is not None else load_mnist(data_dir, train=False)
    result = evaluate(model, test)
    probs = predictions(model, test)
    return result, confusion_matrix(test.labels, probs.argmax(1)), probs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mnist_net.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="weights file (default: %(default)s)")
    p.add_argument("--data-dir", default=default_data_dir(), help="torchvision MNIST root (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        test = load_mnist(args.data_dir, train=False)
        t0 = time.perf_counter()
        result, cm, _ = run(args.weights, test=test)
        seconds = time.perf_counter() - t0
    except (WeightsError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result.line())
    print(format_report(result, cm))
    print(f"\nEvaluated {args.weights} on {result.total} test images in {seconds:.2f} s (after data loading).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
