"""Write real pen handwriting for `bench/novelty.py --images`: UJI Pen Characters (Version 2), 60 writers in Spain
who wrote every character twice with a stylus on a tablet PC (Llorens et al., LREC 2008; CC BY 4.0; its file
ujipenchars2.txt is on the UCI Machine Learning Repository). Each sample's pen strokes are drawn with the app's brush,
at a random size and place, as a visitor draws on the canvas.

    python bench/ujipen.py ujipenchars2.txt DIR [--seed N]
    python bench/novelty.py --images DIR --by-source

DIR/0 ... DIR/9 get the digits, DIR/letters the letters that do not look like a digit (mnist_net.drawings.LETTERS);
each file is named after its writer and repetition, e.g. DIR/7/W12-2.png, DIR/letters/W12-2-upper-K.png.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mnist_net import drawings as d  # noqa: E402

SAMPLE = re.compile(r"WORD (\S+) (?:trn|tst)_[A-Z]+_(W\d+)-0?(\d+)")  # [A-Z]+: the site, UJI or UPV
POINTS = re.compile(r"POINTS ([1-9]\d*) #((?: -?\d+)*)")
DIGITS = tuple("0123456789")


def samples(text: str, name: str = "the file") -> list[tuple[str, str, list[np.ndarray]]]:
    """(character, writer-repetition, pen strokes as (n, 2) arrays, y down) of each sample in UJIpenchars2's text."""
    found, declared = [], []  # declared: (its WORD line's number, its NUMSTROKES)
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if (m := SAMPLE.fullmatch(line)):
            found.append((m[1], f"{m[2]}-{m[3]}", []))
            declared.append((number, None))
        elif line.startswith(("NUMSTROKES", "POINTS")) and not found:
            sys.exit(f"error: {name}, line {number}: {line.split()[0]} before any WORD line")
        elif (m := re.fullmatch(r"NUMSTROKES (\d+)", line)):
            declared[-1] = (declared[-1][0], int(m[1]))
        elif (m := POINTS.fullmatch(line)):
            values = m[2].split()
            if len(values) != 2 * int(m[1]):
                sys.exit(f"error: {name}, line {number}: POINTS {m[1]} but {len(values)} numbers, not {2 * int(m[1])}")
            found[-1][2].append(np.array(values, float).reshape(-1, 2))
        elif line and not line.startswith("//"):
            sys.exit(f"error: {name}, line {number}: not UJIpenchars2's format: {line[:60]!r}")
    for (c, who, strokes), (number, n) in zip(found, declared):
        if n not in (None, len(strokes)):
            sys.exit(f"error: {name}, line {number}: {c} {who}: NUMSTROKES {n} but {len(strokes)} POINTS lines")
    return found


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("file", type=Path, help="ujipenchars2.txt")
    p.add_argument("out", type=Path, help="folder to write DIR/0 ... 9 and DIR/letters into")
    p.add_argument("--seed", type=int, default=0, help="seed of the drawings' sizes, places and widths (default: 0)")
    args = p.parse_args(argv)
    try:
        text = args.file.read_text(encoding="utf-8", errors="replace")  # only its accented letters are not ASCII
    except OSError as e:
        sys.exit(f"error: cannot read {args.file}: {e.strerror or e}")
    wanted = [(c, who, strokes) for c, who, strokes in samples(text, str(args.file))
              if (c in DIGITS or c in d.LETTERS) and strokes]
    if not wanted:
        sys.exit(f"error: {args.file} holds no digits or letters in UJIpenchars2's format")
    try:
        for folder in [*DIGITS, "letters"]:
            (args.out / folder).mkdir(parents=True, exist_ok=True)
        for c, who, strokes in wanted:
            # Seeded by the sample itself: drawn the same whatever else, in whatever order, the file holds.
            rng = np.random.default_rng([args.seed, *map(int, re.findall(r"\d+", who)), ord(c)])
            path = args.out / c if c in DIGITS else args.out / "letters"
            name = who if c in DIGITS else f"{who}-{'upper' if c.isupper() else 'lower'}-{c}"
            Image.fromarray(d.brush_canvas(strokes, rng)).save(path / f"{name}.png")
    except OSError as e:
        sys.exit(f"error: cannot write into {args.out}: {e.strerror or e}")
    digits = sum(c in DIGITS for c, _, _ in wanted)
    print(f"Wrote {digits:,} digits to {args.out}/0 ... 9, {len(wanted) - digits:,} letters to {args.out / 'letters'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
