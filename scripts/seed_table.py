"""Print the README's recipe x seed table from metrics files written by train.py.

    python scripts/seed_table.py weights/mnist_net.metrics.json results/reliable-*.metrics.json results/assignment-*.metrics.json
"""
from __future__ import annotations

import argparse
import json
import sys

HEADER = ("| recipe | seed | first epoch >= 99.4% | best | final | s/epoch (train+test) | machine |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")


def row(path: str) -> str:
    """One table row from one `*.metrics.json`."""
    with open(path) as f:
        m = json.load(f)
    h = m["history"]
    per_epoch = sum(h["epoch_seconds"]) / len(h["epoch_seconds"])
    first = m.get("first_epoch_at_99_4") or "never"
    # A run that stopped early says so: its "final" epoch is not the planned last one.
    stopped = "; interrupted" if m.get("interrupted") else "; diverged" if m.get("diverged") else ""
    return (f"| {m['recipe']['name']} | {m['args']['seed']} | {first} | {h['test_accuracy'][m['best_epoch'] - 1]:.2f}% "
            f"(epoch {m['best_epoch']}) | {h['test_accuracy'][-1]:.2f}% (epoch {len(h['test_accuracy'])}{stopped}) "
            f"| {per_epoch:.1f} | {m['device']} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("metrics", nargs="+", help="*.metrics.json files written by train.py")
    args = p.parse_args(argv)
    rows = []
    for path in args.metrics:
        try:
            rows.append(row(path))
        except OSError as e:
            print(f"error: cannot read {path}: {e.strerror or e}", file=sys.stderr)
            return 2
        except (ValueError, KeyError, TypeError, IndexError, ZeroDivisionError) as e:
            print(f"error: {path} is not a metrics file written by train.py with at least one finished epoch "
                  f"({type(e).__name__}: {e})", file=sys.stderr)
            return 2
    print(HEADER)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
