"""Drawings made as a visitor makes them on the 280x280 canvas (a round brush, ~28 px strokes), to fit and measure
the not-a-digit detector: MNIST digits (enlarged, or their centre line redrawn with the brush), Hershey's
single-stroke glyphs in a writer's hand, font glyphs (Debian's fonts; schools' and other handwriting fonts,
downloaded from npm once), shapes and scribbles. Drawing needs requirements-train.txt; the app imports only CANVAS
and BRUSH."""
from __future__ import annotations

import fnmatch
import functools
import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CANVAS = 280  # the app's sketchpad: 10x MNIST's 28 px
BRUSH = 28  # the app's brush, px: ~3 px once a ~190 px digit is scaled to MNIST's 20 px box, as MNIST's strokes
STROKE = (0.8 * BRUSH, 1.2 * BRUSH)  # widths drawn, px; bench/novelty.py --pen sets a pen's
# Letters a reader would take for a digit (0/O, 1/I/l, 2/Z, 5/S, 8/B, 6/G/b, 9/g/q, 7/T, ...): not non-digits.
DIGIT_LIKE = set("OoQDIiljJZzSsBGbgqTt")
LETTERS = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in DIGIT_LIKE]
# The detector is fitted on Hershey's Latin fonts, the first group of handwriting font families and the first group
# of shapes; bench/novelty.py measures it on the second groups and on the npm fonts below.
HERSHEY_FONTS = ("futural", "futuram", "rowmans", "rowmand", "rowmant", "scripts", "scriptc", "cursive", "timesr",
                 "timesi", "timesrb", "timesib")
FONT_FAMILIES = (("BecauseWeBuild*", "BecauseWeConnect*", "BecauseWeCreate*", "dkg*", "Humor-Sans*", "KleeOne*"),
                 ("BecauseWeLearn*", "BecauseWeMentor*", "BecauseWeOrganize*", "Breip*", "breipfont*", "ComicNeue*",
                  "DancingScript*", "Ecolier*", "KaushanScript*", "Kristi*", "Rufscript010", "TomsonTalks", "Delphine",
                  "SteveHand", "YOzRS_", "YuseiMagic-Regular", "setofont", "kiloji", "Navilu"))  # file-name patterns
FONT_DIR = Path("/usr/share/fonts")
FONT_FOLDERS = ("opentype/bwht", "truetype/fifthhorseman", "truetype/humor-sans", "truetype/klee", "truetype/breip",
                "opentype/comic-neue", "opentype/dancingscript", "truetype/ecolier-court", "opentype/kaushanscript",
                "truetype/kristi", "truetype/rufscript", "truetype/tomsontalks", "truetype/sjfonts",
                "truetype/yozvox-yozfont", "truetype/yusei-magic", "truetype/seto", "truetype/kiloji", "truetype/Navilu")
FONT_PACKAGES = ("fonts-bwht fonts-dkg-handwriting fonts-humor-sans fonts-klee fonts-breip fonts-comic-neue "
                 "fonts-dancingscript fonts-ecolier-court fonts-kaushanscript fonts-kristi fonts-rufscript "
                 "fonts-tomsontalks fonts-sjfonts fonts-yozvox-yozfont-standard-kana fonts-yusei-magic fonts-seto "
                 "fonts-kiloji fonts-navilu")
# Schools' handwriting models: every Playwrite (36 countries) and Edu (Australian states) family of Google Fonts found
# as an @fontsource-variable npm package, dotted, guide-line and arrow variants left out: how children are taught to
# write digits. Only measured (bench/novelty.py).
SCHOOL_FONTS = tuple(f"playwrite-{c}" for c in (
    "ar at au-nsw au-qld au-sa au-tas au-vic be-vlg be-wal br ca cl co cu cz de-grund de-la de-sas de-va dk-loopet "
    "dk-uloopet es es-deco fr-moderne fr-trad gb-j gb-s hr hr-lijeva hu id ie in is it-moderna it-trad mx ng-modern "
    "nl no nz pe pl pt ro sk tz us-modern us-trad vn za").split()) + tuple(f"edu-{c}" for c in (
        "au-vic-wa-nt-hand au-vic-wa-nt-pre nsw-act-cursive nsw-act-foundation qld-beginner qld-hand sa-beginner "
        "sa-hand tas-beginner vic-wa-nt-beginner").split())
# Google Fonts' "handwriting" category, other designers' hands: the half that no training or fitting uses (the sorted
# ids shuffled by numpy default_rng(20261205); schools' models, other scripts' variants and the fonts above left out;
# the other half is kept to train on, docs/novelty.md). Only measured. "@version" where the npm package is not 5.3.0.
HANDWRITING_FONTS = tuple("""
    alex-brush amita@5.2.8 architects-daughter arizonia babylonica bad-script berkshire-swash beth-ellen
    bonheur-royale borel butterfly-kids caramel cedarville-cursive charm@5.2.7 comforter-brush coming-soon
    condiment@4.5.1 cookie corinthia covered-by-your-grace crafty-girls dawning-of-a-new-day
    delicious-handrawn delius delius-swash-caps delius-unicase eagle-lake engagement ephesis explora
    fleur-de-leah@5.2.8 fuzzy-bubbles gaegu gamja-flower give-you-glory gochi-hand grand-hotel
    grechen-fuemen grey-qo@5.0.21 gwendolyn hachi-maru-pop handlee hurricane imperial-script@5.2.8
    indie-flower ingrid-darling inspiration@5.2.7 jim-nightshade@5.1.1 julee@4.5.11 just-me-again-down-here
    kapakana kings kolker-brush la-belle-aurore lakki-reddy league-script@5.2.8 leckerli-one long-cang
    loved-by-the-king lxgw-wenkai-tc mansalva marck-script mea-culpa merienda monsieur-la-doulaise
    montecarlo@5.2.8 montez mr-bedfort mrs-saint-delafield ms-madi nanum-brush-script nanum-pen-script
    niconne norican nothing-you-could-do oooh-baby pacifico patrick-hand-sc permanent-marker
    petit-formal-script playpen-sans princess-sofia quintessential qwigley@5.2.8 redressed ruge-boogie
    ruthie sacramento satisfy short-stack smooch solitreo square-peg sriracha stalemate sue-ellen-francisco
    sunshiney tangerine updock vibur vujahday-script walter-turncoat water-brush yomogi
    """.split())
NPM_FONT_DIR = Path(__file__).resolve().parents[1] / "data" / "fonts"  # downloaded once; git ignores data/
SHAPES = (("heart", "star", "triangle", "square", "cross", "spiral", "smiley", "wave", "check", "circled-cross", "sun",
           "fish", "stick-figure", "envelope", "infinity", "zigzag", "moon", "polygon", "doodle",
           "doodle", "dots"),  # doodles twice: the most varied kind; dots: a tap, a visitor's first stroke
          ("house", "arrow", "diamond", "flower", "cloud", "lightning", "hash", "pentagon"))


def brush_canvas(strokes: list[np.ndarray], rng: np.random.Generator, brush: float | None = None) -> np.ndarray:
    """Polylines (points in any units, y down) scaled into the canvas at a random size and place, drawn with a round
    brush: the 280x280 canvas, black on white (uint8)."""
    pts = np.concatenate(strokes)
    lo, hi = pts.min(0), pts.max(0)
    span = max(float((hi - lo).max()), 1e-6)
    size = rng.uniform(140, 240)
    scale = size / span
    offset = rng.uniform(BRUSH, CANVAS - BRUSH - (hi - lo) * scale, size=2) if ((hi - lo) * scale < CANVAS - 2 * BRUSH).all() \
        else np.full(2, BRUSH)
    width = brush or rng.uniform(*STROKE)
    image = Image.new("L", (CANVAS, CANVAS), 255)
    draw = ImageDraw.Draw(image)
    r = width / 2
    for s in strokes:
        xy = [tuple(p) for p in (s - lo) * scale + offset]
        if len(xy) > 1:
            draw.line(xy, fill=0, width=int(round(width)), joint="curve")
        for x, y in (xy[0], xy[-1]) if len(xy) > 1 else xy:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=0)
    return np.asarray(image)


def writer_hand(strokes: list[np.ndarray], rng: np.random.Generator, shake: float = 0.015) -> list[np.ndarray]:
    """One writer's version of a glyph: slant, aspect, rotation, and a smooth wobble along each stroke."""
    slant, aspect, angle = rng.uniform(-0.3, 0.3), rng.uniform(0.8, 1.25), rng.uniform(-0.15, 0.15)
    c, s = math.cos(angle), math.sin(angle)
    m = np.array([[c, -s], [s, c]]) @ np.array([[aspect, slant], [0.0, 1.0]])
    out = []
    for st in strokes:
        st = densify(st, 0.02)
        t = np.linspace(0, 1, len(st))[:, None]
        wobble = sum(rng.normal(0, shake, 2) * np.sin((k + 1) * math.pi * t + rng.uniform(0, 6)) for k in range(3))
        out.append(st @ m.T + wobble)
    return out


def densify(points: np.ndarray, step: float) -> np.ndarray:
    """Points along a polyline, at most `step` apart."""
    out = [points[:1]]
    for a, b in zip(points[:-1], points[1:]):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / step)))
        out.append(a + (b - a) * np.linspace(0, 1, n + 1)[1:, None])
    return np.concatenate(out)


def fonts(group: int) -> list[Path]:
    """Debian's handwriting fonts of FONT_FAMILIES[group]: 0 to fit, 1 to measure; 2: the schools' models, 3: the
    other handwriting fonts (both measured). FileNotFoundError if one is missing, so a set is never measured smaller
    than it is."""
    if group in (2, 3):
        return [npm_font(name) for name in (SCHOOL_FONTS if group == 2 else HANDWRITING_FONTS)]
    found = sorted(p for folder in FONT_FOLDERS for p in (FONT_DIR / folder).glob("*.[ot]tf")
                   if any(fnmatch.fnmatchcase(p.stem, f) for f in FONT_FAMILIES[group]))
    missing = [f for f in FONT_FAMILIES[group] if not any(fnmatch.fnmatchcase(p.stem, f) for p in found)]
    if missing:
        raise FileNotFoundError(f"Handwriting fonts {', '.join(missing)} not in {FONT_DIR}: "
                                f"apt-get install {FONT_PACKAGES}")
    return found


def npm_font(name: str) -> Path:
    """A school model's or handwriting font's file (its regular weight), downloaded once from its pinned npm package."""
    name, _, version = name.partition("@")
    version = version or "5.3.0"
    path = NPM_FONT_DIR / f"{name}-{version}.woff2"  # a new pin fetches anew
    if path.exists():
        return path
    import http.client
    import io
    import tarfile
    import urllib.request
    import zlib

    from .checkpoint import atomic_write_bytes

    if name in SCHOOL_FONTS:  # variable fonts: Playwrite's packages keep the whole font in one "fallback" file
        url = f"https://registry.npmjs.org/@fontsource-variable/{name}/-/{name}-{version}.tgz"
        member = f"package/files/{name}-{'fallback' if name.startswith('playwrite') else 'latin'}-wght-normal.woff2"
    else:
        url = f"https://registry.npmjs.org/@fontsource/{name}/-/{name}-{version}.tgz"
        member = f"package/files/{name}-latin-400-normal.woff2"
    try:
        with urllib.request.urlopen(url, timeout=60) as response, \
                tarfile.open(fileobj=io.BytesIO(response.read()), mode="r:gz") as package:
            atomic_write_bytes(path, package.extractfile(member).read())
    except (OSError, EOFError, zlib.error, http.client.HTTPException, tarfile.TarError, KeyError, AttributeError) as e:
        raise FileNotFoundError(f"Font {name}: could not fetch it from {url}: {e}") from e
    return path


@functools.lru_cache(maxsize=None)
def font_chars(font: Path) -> frozenset[str]:
    """The characters a font file has glyphs for (any other one would be drawn as an empty box)."""
    from fontTools.ttLib import TTFont

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # Navilu's harmless "extra bytes in post" warning
    return frozenset(map(chr, TTFont(str(font), fontNumber=0).getBestCmap()))


def glyph_mask(char: str, font: Path) -> np.ndarray:
    """A font's glyph as a boolean ink mask, whole: drawn in its own box (tall scripts overflow any fixed square)."""
    if char not in font_chars(font):
        raise ValueError(f"{font.name} has no glyph for {char!r}")
    face = ImageFont.truetype(str(font), 200)
    left, top, right, bottom = face.getbbox(char)
    image = Image.new("L", (right - left + 20, bottom - top + 20), 0)
    ImageDraw.Draw(image).text((10 - left, 10 - top), char, fill=255, font=face)
    return np.asarray(image) > 127


def font_glyph(char: str, font: Path, rng: np.random.Generator) -> np.ndarray:
    """A font's glyph as a pen draws it: its centre line (skeleton), traced with the brush in a writer's slant."""
    pts = centre_line(glyph_mask(char, font))
    if len(pts) == 0:
        raise ValueError(f"{font.name} has no glyph for {char!r}")
    slant, aspect = rng.uniform(-0.25, 0.25), rng.uniform(0.85, 1.2)
    return brush_canvas([p[None] for p in pts @ np.array([[aspect, slant], [0.0, 1.0]]).T], rng)


def centre_line(mask: np.ndarray) -> np.ndarray:
    """The skeleton of an ink mask as points, its longer side scaled to 1: each one becomes a dot of the brush."""
    from skimage.morphology import skeletonize

    ys, xs = np.nonzero(skeletonize(mask))
    return np.stack([xs, ys], 1) / max(mask.shape)


@functools.lru_cache(maxsize=None)
def _hershey(font: str):
    from HersheyFonts import HersheyFonts

    h = HersheyFonts()
    h.load_default_font(font)
    return h


def hershey_glyph(char: str, font: str, rng: np.random.Generator) -> np.ndarray:
    """A Hershey single-stroke glyph drawn with the brush in one writer's hand."""
    segments = list(_hershey(font).lines_for_text(char))
    if not segments:
        raise ValueError(f"Hershey {font} has no glyph for {char!r}")
    strokes: list[list] = []
    for a, b in segments:  # consecutive segments sharing an end are one pen stroke
        if strokes and strokes[-1][-1] == a:
            strokes[-1].append(b)
        else:
            strokes.append([a, b])
    arrays = [np.array(s, float) / 30.0 for s in strokes]
    return brush_canvas(writer_hand(arrays, rng), rng)


def _arc(cx, cy, rx, ry, a0, a1, n=40):
    t = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _poly(*pts, close=False):
    p = np.array(pts, float)
    return np.concatenate([p, p[:1]]) if close else p


def shape_strokes(kind: str, rng: np.random.Generator) -> list[np.ndarray]:
    u = lambda lo=0.0, hi=1.0: rng.uniform(lo, hi)  # noqa: E731
    if kind == "heart":
        t = np.linspace(0, 2 * math.pi, 80)
        return [np.stack([16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))], 1) / 32]
    if kind == "star":
        k = np.arange(11) * math.pi / 5 - math.pi / 2
        r = np.where(np.arange(11) % 2 == 0, 1.0, u(0.35, 0.5))
        return [np.stack([r * np.cos(k), r * np.sin(k)], 1)] if u() < 0.5 else \
            [np.stack([np.cos(k[::2] * 2), np.sin(k[::2] * 2)], 1)]  # drawn as a pentagram, in one line
    if kind == "triangle":
        return [_poly((0.5, 0), (1, 0.9), (0, 0.9), close=True)]
    if kind == "square":
        w = u(0.7, 1.3)
        return [_poly((0, 0), (w, 0), (w, 1), (0, 1), close=True)]
    if kind == "cross":
        return [_poly((0, 0), (1, 1)), _poly((1, 0), (0, 1))]
    if kind == "spiral":
        t = np.linspace(0, u(3, 5) * math.pi, 120)
        return [np.stack([t * np.cos(t), t * np.sin(t)], 1)]
    if kind == "smiley":
        face = _arc(0, 0, 1, 1, 0, 2 * math.pi, 60)
        return [face, _arc(-0.35, -0.3, 0.06, 0.08, 0, 2 * math.pi, 10), _arc(0.35, -0.3, 0.06, 0.08, 0, 2 * math.pi, 10),
                _arc(0, 0.05, 0.55, 0.45, 0.2, math.pi - 0.2, 20)]
    if kind == "wave":
        t = np.linspace(0, u(2, 4) * math.pi, 80)
        return [np.stack([t / math.pi, 0.4 * np.sin(t)], 1)]
    if kind == "check":
        return [_poly((0, 0.6), (0.35, 1), (1, 0))]
    if kind == "circled-cross":
        return [_arc(0, 0, 1, 1, 0, 2 * math.pi, 50), _poly((-0.7, -0.7), (0.7, 0.7)), _poly((0.7, -0.7), (-0.7, 0.7))]
    if kind == "sun":
        rays = [_poly((math.cos(a) * 0.75, math.sin(a) * 0.75), (math.cos(a) * 1.2, math.sin(a) * 1.2))
                for a in np.arange(8) * math.pi / 4 + u(0, 0.4)]
        return [_arc(0, 0, 0.5, 0.5, 0, 2 * math.pi, 40)] + rays
    if kind == "fish":
        return [np.concatenate([_arc(0, 0, 1, 0.5, 0.6, 2 * math.pi - 0.6, 40), _poly((0.83, 0.28), (1.5, -0.4), (1.5, 0.4),
                                                                                     (0.83, -0.28))])]
    if kind == "stick-figure":
        return [_arc(0, -0.75, 0.25, 0.25, 0, 2 * math.pi, 20), _poly((0, -0.5), (0, 0.5)), _poly((-0.5, -0.1), (0, -0.25),
                (0.5, -0.1)), _poly((-0.4, 1.1), (0, 0.5), (0.4, 1.1))]
    if kind == "envelope":
        return [_poly((0, 0), (1.4, 0), (1.4, 1), (0, 1), close=True), _poly((0, 0), (0.7, 0.55), (1.4, 0))]
    if kind == "infinity":
        t = np.linspace(0, 2 * math.pi, 80)
        return [np.stack([np.cos(t), np.sin(2 * t) / 2], 1)]
    if kind == "zigzag":
        n = int(rng.integers(3, 7))
        return [np.stack([np.arange(n + 1) / n, (np.arange(n + 1) % 2) * u(0.3, 0.6)], 1)]
    if kind == "moon":
        return [np.concatenate([_arc(0, 0, 1, 1, 0.5 * math.pi, 1.5 * math.pi, 30), _arc(-0.35, 0, 0.7, 1, 1.5 * math.pi, 0.5 * math.pi, 30)])]
    if kind == "polygon":  # irregular, 4 to 8 corners: often not convex
        n = int(rng.integers(4, 9))
        a = np.sort(rng.uniform(0, 2 * math.pi, n))
        r = rng.uniform(0.3, 1.0, n)
        return [_poly(*zip(r * np.cos(a), r * np.sin(a)), close=True)]
    if kind == "doodle":  # 2 or 3 of the shapes above, anywhere, at any size: a child's drawing
        out = []
        for _ in range(int(rng.integers(2, 4))):
            part = shape_strokes(str(rng.choice(["heart", "star", "triangle", "square", "cross", "spiral", "wave",
                                                 "zigzag", "polygon", "moon"])), rng)
            pts = np.concatenate(part)
            scale, shift = u(0.3, 1.0) / max(np.ptp(pts, 0).max(), 1e-6), rng.uniform(0, 1.5, 2)
            out += [(p - pts.min(0)) * scale + shift for p in part]
        return out
    if kind == "dots":  # 1 to 3 taps of the brush, one alone half the time
        return [rng.uniform(0, 1, (1, 2)) for _ in range(1 if u() < 0.5 else int(rng.integers(2, 4)))]
    if kind == "house":
        return [_poly((0, 0.45), (0, 1), (1, 1), (1, 0.45), (0, 0.45), (0.5, 0), (1, 0.45)),
                _poly((0.4, 1), (0.4, 0.7), (0.6, 0.7), (0.6, 1))]
    if kind == "arrow":
        return [_poly((0, 0.5), (1, 0.5)), _poly((0.7, 0.25), (1, 0.5), (0.7, 0.75))]
    if kind == "diamond":
        return [_poly((0.5, 0), (1, 0.6), (0.5, 1.2), (0, 0.6), close=True)]
    if kind == "flower":
        t = np.linspace(0, 2 * math.pi, 160)
        r = 0.6 + 0.4 * np.abs(np.cos(2.5 * t))
        return [np.stack([r * np.cos(t), r * np.sin(t)], 1), _poly((0, 1), (0, 2.2))]
    if kind == "cloud":
        bumps = [_arc(x, 0, 0.3, 0.3, math.pi, 2 * math.pi, 15) for x in (0.3, 0.9, 1.5)]
        return [np.concatenate(bumps + [_arc(0.9, 0, 0.9, 0.4, 0, math.pi, 30)])]
    if kind == "lightning":
        return [_poly((0.6, 0), (0.2, 0.55), (0.55, 0.5), (0.3, 1.1), (0.9, 0.4), (0.5, 0.45), (0.8, 0))]
    if kind == "hash":
        return [_poly((0.3, 0), (0.25, 1)), _poly((0.7, 0), (0.65, 1)), _poly((0, 0.3), (1, 0.3)), _poly((0, 0.7), (1, 0.7))]
    if kind == "pentagon":
        k = np.arange(6) * 2 * math.pi / 5 - math.pi / 2
        return [np.stack([np.cos(k), np.sin(k)], 1)]
    raise ValueError(kind)


def shape(kind: str, rng: np.random.Generator) -> np.ndarray:
    return brush_canvas(writer_hand(shape_strokes(kind, rng), rng, shake=0.02), rng)


def scribble(rng: np.random.Generator) -> np.ndarray:
    """1-3 random smooth strokes: a pen wandering with momentum."""
    strokes = []
    for _ in range(int(rng.integers(1, 4))):
        n, heading, turn = int(rng.integers(20, 80)), rng.uniform(0, 2 * math.pi), rng.normal(0, 0.3)
        p, pts = rng.uniform(0, 1, 2), []
        for _ in range(n):
            turn = 0.8 * turn + rng.normal(0, 0.25)
            heading += turn
            p = p + 0.04 * np.array([math.cos(heading), math.sin(heading)])
            pts.append(p)
        strokes.append(np.array(pts))
    return brush_canvas(strokes, rng)


def mnist_drawn(digit: np.ndarray, rng: np.random.Generator, style: str | None = None) -> np.ndarray:
    """A 28x28 MNIST digit (0..1, white on black) enlarged at a random size and place onto a 640x480 canvas,
    "dark-on-light" or "light-on-transparent" (style None: either, at random), as the app's tests draw digits."""
    size = int(rng.integers(120, 400))
    scale = size / max(digit.shape)
    bh, bw = round(digit.shape[0] * scale), round(digit.shape[1] * scale)
    big = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize((bw, bh), Image.BILINEAR))
    h, w = 480, 640
    y, x = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
    ink = np.zeros((h, w), np.uint8)
    ink[y:y + bh, x:x + bw] = big
    if (style or ("dark-on-light" if rng.random() < 0.5 else "light-on-transparent")) == "dark-on-light":
        return np.dstack([255 - ink] * 3)
    return np.dstack([np.full_like(ink, 255)] * 3 + [ink])


def mnist_redrawn(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 MNIST digit's centre line redrawn with the app's brush: the writer's shape, the canvas's stroke."""
    big = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize((112, 112), Image.BILINEAR)) > 100
    pts = centre_line(big)
    if len(pts) == 0:
        pts = np.stack(np.nonzero(big)[::-1], 1) / 112.0
    return brush_canvas([p[None] for p in pts], rng)


def glyphs(chars: str | list, hands: int, rng: np.random.Generator, group: int):
    """(canvas, char, font name): `hands` hands of each char in each font of the group (0: fitting, with the Hershey
    fonts; 1-3: measuring)."""
    for font in fonts(group):
        for ch in (c for c in chars if c.isdigit() or c in font_chars(font)):  # Navilu has Latin digits only
            for _ in range(hands):
                yield font_glyph(ch, font, rng), ch, font.stem
    for name in HERSHEY_FONTS if group == 0 else ():
        for ch in chars:
            for _ in range(hands):
                yield hershey_glyph(ch, name, rng), ch, f"hershey-{name}"


def two_digits(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two MNIST digits side by side on one canvas: a number, not a digit."""
    gap = int(rng.integers(0, 8))
    pair = np.concatenate([a, np.zeros((28, gap), a.dtype), b], 1)
    return mnist_drawn(pair, rng)
