"""Write real handwriting for `bench/novelty.py --images`: scikit-learn's copy of UCI's optdigits test set (1,797 digits
by 13 writers, each 8x8 counts of a 32x32 bitmap) and, as the control, MNIST's test digits brought to the same form.

    pip install scikit-learn
    python bench/optdigits.py DIR
    python bench/novelty.py --images DIR/writers --by-source
    python bench/novelty.py --images DIR/mnist --by-source

Both sets lose the same detail at 8x8, so the gap between their rates is what other writers' hands cost.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def to_8x8(digit: np.ndarray) -> np.ndarray:
    """optdigits' form of a 28x28 MNIST digit: its ink fitted into a 32x32 box, aspect kept, centred, and the ink
    pixels counted in each 4x4 block (0 ... 16). Ink is above 62 of 255: there MNIST's 10,000 test digits have as
    much ink as optdigits' 1,797 (312.6 of 1,024 pixels on average, both), so neither set's strokes are the thicker."""
    ink = digit > 62
    ys, xs = np.nonzero(ink)
    if not ys.size:
        return np.zeros((8, 8), int)
    ink = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    scale = 32 / max(ink.shape)
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    fitted = np.array(Image.fromarray(ink).resize(size, Image.Resampling.NEAREST))
    box = np.zeros((32, 32), bool)
    top, left = (32 - fitted.shape[0]) // 2, (32 - fitted.shape[1]) // 2
    box[top:top + fitted.shape[0], left:left + fitted.shape[1]] = fitted
    return box.reshape(8, 4, 8, 4).sum((1, 3))


def save(root: Path, images, labels) -> None:
    """each 8x8 count image as a PNG, dark ink on white, in root/<digit>/."""
    for digit in range(10):
        (root / str(digit)).mkdir(parents=True, exist_ok=True)
    for i, (counts, label) in enumerate(zip(images, labels)):
        png = Image.fromarray((255 - np.asarray(counts) * 255 / 16).round().astype(np.uint8))
        png.save(root / str(int(label)) / f"{i}.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="folder to write DIR/writers/0 ... 9 and DIR/mnist/0 ... 9 into")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DATA_DIR or ./data)")
    args = p.parse_args(argv)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("error: the real handwriting ships with scikit-learn: pip install scikit-learn")
    from mnist_net.data import DataError, load_raw

    if args.out.exists() and not args.out.is_dir():
        sys.exit(f"error: {args.out} is a file, not a folder")
    try:
        images, labels = load_raw(args.data_dir, train=False)
    except DataError as e:  # no MNIST where we looked: say where and how to get it
        sys.exit(f"error: {e}")
    writers = load_digits()
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        save(args.out / "writers", writers.images, writers.target)
        save(args.out / "mnist", (to_8x8(x) for x in images.numpy()), labels.tolist())
    except OSError as e:
        sys.exit(f"error: cannot write into {args.out}: {e.strerror or e}")
    print(f"Wrote {len(writers.target):,} digits to {args.out / 'writers'}, {len(labels):,} to {args.out / 'mnist'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
