"""Print the README's recipe x seed table from metrics files written by train.py.

    python scripts/seed_table.py weights/mnist_net.metrics.json results/*.metrics.json
"""
from __future__ import annotations

import json
import sys


def row(path: str) -> str:
    m = json.load(open(path))
    h = m["history"]
    per_epoch = sum(h["epoch_seconds"]) / len(h["epoch_seconds"])
    first = m.get("first_epoch_at_99_4") or "never"
    return (f"| {m['recipe']['name']} | {m['args']['seed']} | {first} | {max(h['test_accuracy']):.2f}% "
            f"(epoch {m['best_epoch']}) | {h['test_accuracy'][-1]:.2f}% | {per_epoch:.1f} | {m['device']} |")


def main(paths: list[str]) -> None:
    print("| recipe | seed | first epoch >= 99.4% | best | final (epoch 19) | s/epoch (train+test) | machine |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for p in paths:
        print(row(p))


if __name__ == "__main__":
    main(sys.argv[1:])
