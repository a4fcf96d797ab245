"""The not-a-digit detector's rates on drawings it was not fitted on, through the app's /classify.

    python bench/novelty.py [--data-dir DIR] [--server URL] [--limit N] [--write] [--by-source] [--pen]
    python bench/novelty.py --images DIR [--server URL] [--limit N] [--by-source]

Sets (none used in fitting: mnist_net/drawings.py says what was):
- mnist-test: the 10,000 MNIST test digits, enlarged onto a canvas at random sizes, places and ink styles;
- writers: digits from the held-out Debian handwriting fonts (25 files; mnist_net.drawings.FONT_FAMILIES[1]), their
  centre lines redrawn with the brush in 10 writers' slants and proportions;
- schools: digits of 61 fonts of schools' handwriting models (mnist_net.drawings.SCHOOL_FONTS: 36 countries' and 10
  Australian ones), drawn the same way; the fonts are downloaded from npm into data/fonts the first time;
- handwriting: digits of 104 other handwriting fonts (mnist_net.drawings.HANDWRITING_FONTS, half of Google Fonts'
  handwriting category), drawn and downloaded the same way;
- letters: the letters of the held-out Debian fonts that do not look like digits (mnist_net.drawings.LETTERS);
- shapes: 8 kinds (house, arrow, diamond, flower, cloud, lightning, hash, pentagon), 60 of each;
- scribbles: 800 random strokes (seeds not used in fitting).
--pen draws all but mnist-test with a pen 2-8 px wide instead of the app's brush: images written with a pen.
Each drawing is a PNG file, sent as `client.predict(handle_file(path), api_name="/classify")` with --server, else to
the same handler in-process. --write saves the rates and score histograms beside the weights (the Model tab shows them).
--images DIR measures your own images instead, sent as they are: DIR/0 ... DIR/9 hold digits, any other folder
non-digits (torchvision's ImageFolder layout).
Needs Debian's handwriting fonts (apt-get install them as mnist_net.drawings.FONT_PACKAGES lists) and, the first
time, npm's registry.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mnist_net import drawings as d  # noqa: E402
from mnist_net.novelty import FONT_SETS  # noqa: E402
from bench_args import count  # noqa: E402  (same folder)

DIGIT_SETS = ("mnist-test", *FONT_SETS, "digits")  # "digits": --images DIR/0 ... DIR/9


def sets(data_dir: str | None, seed: int = 1):
    """{set name: generator of (canvas, label, source)}; label is the digit for the digit sets."""
    from mnist_net.data import load_raw

    images, labels = load_raw(data_dir, train=False)
    rng = [np.random.default_rng([seed, k]) for k in range(7)]  # one a set: --limit on one leaves the others as they are
    return {
        "mnist-test": ((d.mnist_drawn(x.numpy() / 255.0, rng[0]), int(y), "mnist") for x, y in zip(images, labels)),
        "writers": d.glyphs("0123456789", 10, rng[1], group=1),
        "schools": d.glyphs("0123456789", 10, rng[5], group=2),
        "handwriting": d.glyphs("0123456789", 10, rng[6], group=3),
        "letters": d.glyphs(d.LETTERS, 3, rng[2], group=1),
        "shapes": ((d.shape(k, rng[3]), k, k) for k in d.SHAPES[1] for _ in range(60)),
        "scribbles": ((d.scribble(rng[4]), "scribble", "scribble") for _ in range(800)),
    }


def folder_sets(root: str) -> dict:
    """{"digits": ..., "non-digits": ...} of (image path, label, folder), each set shuffled (--limit takes a sample):
    the files in root/0 ... root/9 are digits, those in its other folders non-digits."""
    root = Path(root)
    if not root.is_dir():
        sys.exit(f"error: --images {root}: not a folder")
    found = {"digits": [], "non-digits": []}
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith((".", "__")):  # hidden, and zip tools' __MACOSX
            continue
        if folder.name.isdigit() and len(folder.name) > 1:
            sys.exit(f"error: --images {root}: a folder named {folder.name!r}; digits go in folders 0 ... 9")
        digit = folder.name.isdigit()
        files = sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
        found["digits" if digit else "non-digits"] += [(str(f), int(folder.name) if digit else folder.name,
                                                        folder.name) for f in files]
    if not any(found.values()):
        sys.exit(f"error: --images {root}: no files in its folders (0 ... 9 for digits, any other for non-digits)")
    rng = np.random.default_rng(0)
    return {name: [items[k] for k in rng.permutation(len(items))] for name, items in found.items()}


def font_interval(kept: list, n: int = 10_000) -> np.ndarray:
    """95% interval of a font set's read-right rate over 'which fonts': whole fonts resampled (a font's hands share its
    style, so they are not independent drawings)."""
    fonts = sorted({r[3] for r in kept})
    per = np.array([[sum(r[1] == r[2] for r in kept if r[3] == f), sum(r[3] == f for r in kept)] for f in fonts])
    right, total = per[np.random.default_rng(0).integers(0, len(fonts), (n, len(fonts)))].sum(1).T
    return np.percentile(right / total, [2.5, 97.5])


def classifier(server: str | None):
    """path -> /classify's JSON, from a running app or the app's handler in-process."""
    if server:
        from gradio_client import Client, handle_file

        client = Client(server, verbose=False)
        return lambda path: client.predict(handle_file(path), api_name="/classify")
    import app

    if app.DETECTOR is None:
        sys.exit(f"error: no detector beside {app.WEIGHTS}; fit one: python -m mnist_net.novelty")
    return lambda path: app.classify({"path": path, "meta": {"_type": "gradio.FileData"}})  # as an upload arrives


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DATA_DIR or ./data)")
    p.add_argument("--server", help="URL of a running app (default: the app's handler in-process)")
    p.add_argument("--limit", type=count(1), help="at most this many drawings of each set")
    p.add_argument("--write", action="store_true",
                   help="save the rates beside the app's weights ($MNIST_NET_WEIGHTS, else the shipped ones): the Model "
                        "tab shows them; with --server, measure an app serving those weights")
    p.add_argument("--by-source", action="store_true", help="also each font's, shape's and letter's rate")
    p.add_argument("--pen", action="store_true", help="draw with a pen 2-8 px wide, not the app's ~28 px brush")
    p.add_argument("--images", metavar="DIR", help="measure your own images instead, sent as they are: DIR/0 ... "
                                                   "DIR/9 hold digits, any other folder non-digits")
    args = p.parse_args(argv)
    if args.images and (args.pen or args.write or args.data_dir):
        p.error("--images sends your images as they are, and the Model tab shows the sets drawn here: "
                "use it without --pen, --write and --data-dir")
    if args.pen and args.write:
        p.error("--write saves the brush's rates, which the Model tab shows: run --pen without it")
    if args.pen:
        d.STROKE = (2.0, 8.0)
    if args.images:
        chosen = folder_sets(args.images)
    else:
        try:  # before minutes of drawing: Debian's fonts are installed, the others can be downloaded
            d.fonts(1), d.fonts(2), d.fonts(3)
        except FileNotFoundError as e:
            sys.exit(f"error: {e}")
        chosen = sets(args.data_dir)
    classify = classifier(args.server)
    results, scores = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, drawings in chosen.items():
            if not drawings:  # --images with no digit folders, or no others
                continue
            t0, rows = time.time(), []
            for i, (canvas, label, source) in enumerate(drawings):
                if args.limit and i >= args.limit:
                    break
                path = canvas if isinstance(canvas, str) else os.path.join(tmp, f"{name}-{i}.png")
                if path is not canvas:
                    Image.fromarray(canvas).save(path)
                out = classify(path)
                if out["is_digit"] is None:
                    sys.exit(f"error: {out.get('message') or 'the app has no not-a-digit detector'}")
                if out["digit"] is None:  # blank or unreadable: no drawing to rate
                    print(f"    left out, {path}: {out['message']}")
                    continue
                label = int(label) if name in DIGIT_SETS else label
                rows.append((out["is_digit"], out["digit"], label, source, out["novelty"]))
            if not rows:
                print(f"{name:>10}: no image could be read")
                continue
            flagged = [not r[0] for r in rows]
            res = {"n": len(rows), "flagged": float(np.mean(flagged))}
            if name in DIGIT_SETS:
                kept = [r for r in rows if r[0]]
                if kept:
                    res["read_right"] = float(np.mean([r[1] == r[2] for r in kept]))
            interval = " (95% over fonts: {:.2%}-{:.2%})".format(*font_interval(kept)) \
                if name in FONT_SETS and kept else ""
            results[name], scores[name] = res, [r[4] for r in rows]
            if args.by_source:
                for key in sorted({r[3] for r in rows} | ({str(r[2]) for r in rows} if name == "letters" else set())):
                    mine = [r for r in rows if key in (r[3], str(r[2]))]
                    kept = [r for r in mine if r[0]] if name in DIGIT_SETS else []
                    print(f"    {key:>24}: {len(mine):>5} drawings, {np.mean([not r[0] for r in mine]):6.1%} flagged"
                          + (f", {np.mean([r[1] == r[2] for r in kept]):6.1%} of the rest read right" if kept else ""))
            print(f"{name:>10}: {res['n']:>6,} drawings, {res['flagged']:6.1%} flagged"
                  + (f", {res['read_right']:6.2%} of the rest read right" if "read_right" in res
                     else ", none passed" if name in DIGIT_SETS else "")
                  + interval
                  + f"  ({time.time() - t0:.0f} s)", flush=True)
    if args.images:
        return 0
    others = [results[n] for n in results if n not in DIGIT_SETS]
    caught = sum(r["flagged"] * r["n"] for r in others) / sum(r["n"] for r in others)
    print(f"non-digits (letters, shapes, scribbles together): {caught:.1%} flagged")
    if args.write:
        from mnist_net.checkpoint import served_weights
        from mnist_net.novelty import write_rates

        command = " ".join(["python bench/novelty.py", *(argv or sys.argv[1:])])
        print(f"Wrote {write_rates(served_weights(), results, scores, caught, command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
