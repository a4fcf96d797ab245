"""Turn any drawing or image into the network's 28x28 input, the way MNIST itself was made."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .data import MNIST_MEAN, MNIST_STD, normalize_uint8

BOX = 20          # MNIST: the digit's longer side is scaled to 20 px ...
SIZE = 28         # ... inside a 28x28 field ...
CENTRE = 14.0     # ... with its centre of mass at pixel (14, 14) (the mean over MNIST's test set)
MAX_SIDE = 512    # larger inputs are downscaled first so every request takes bounded time
MAX_PIXELS = 64_000_000  # an 8000x8000 photo; larger files are refused before they are decoded
INK_THRESHOLD = 0.15  # ink level (0..1) that counts as a drawn pixel for the bounding box
# Strokes thinner than this at the 28x28 scale (px; the 5th percentile of MNIST's training digits) are thickened to
# it: a thin pen's line, scaled into the 20 px box, is a faint hairline unlike any MNIST stroke, and is misread.
STROKE_FLOOR = 1.8
# MNIST's thickest twentieth begins here (28x28 px, the 95th percentile): thicker, as a digit drawn small with the
# brush is, its strokes fill its loops, and the network reads a blob.
STROKE_CEILING = 4.1
WORK = 4  # thin strokes are widened at 4x the 28x28 scale: steps of half a pixel there
# Share of see-through pixels from which alpha, not colour, is read as the ink. A screenshot's rounded
# corners are ~1% of it; strokes on a transparent layer leave far more than this even when cropped tight.
SEE_THROUGH = 0.10
# A card on a transparent margin (a cut-out scan, a screenshot of a note): its opaque pixels fill at least
# this share of their bounding box, and between these shares of them contrast with the card's colour.
CARD_FILL = 0.9
CARD_INK = (0.005, 0.5)


class SketchError(ValueError):
    """The input is not an image we can read; the message says what was expected."""


@dataclass
class Sketch:
    """A preprocessed drawing: what the network sees."""

    pixels: np.ndarray   # 28 x 28 float32 in [0, 1], white ink on black as in MNIST
    tensor: torch.Tensor  # 1 x 1 x 28 x 28, normalised with MNIST's mean and std
    stroke: float | None = None  # the drawing's stroke width at the 28x28 scale (px), before any thickening

    @property
    def thick(self) -> bool:
        """Strokes thicker than almost all of MNIST's for the digit's size (drawn small with a wide brush)."""
        return self.stroke is not None and self.stroke > STROKE_CEILING


def _reduce(image: Image.Image) -> Image.Image:
    """Box-filter huge images down to about MAX_SIDE in C, before any float conversion."""
    factor = int(np.ceil(max(image.size) / MAX_SIDE))
    if factor <= 1:
        return image
    if image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        # 1-bit, palette and 16-bit images cannot be reduced as they are; converting them is C work too.
        image = image.convert("I" if image.mode.startswith("I;16") else
                              "L" if image.mode == "1" else
                              "RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    return image.reduce(factor)


def check_size(width: int, height: int) -> None:
    """SketchError for images too large to decode in bounded time and memory."""
    if width * height > MAX_PIXELS:
        raise SketchError(f"The image is {width}x{height} pixels; images up to "
                          f"{MAX_PIXELS // 1_000_000} million pixels are accepted.")


def decoded(image: Image.Image) -> Image.Image:
    """image reduced and decoded, or a SketchError saying why the file cannot be used."""
    check_size(image.width, image.height)
    try:
        ImageOps.exif_transpose(image, in_place=True)  # a photo stored sideways, as its EXIF says to turn it
        image = _reduce(image)
        image.load()
    except (OSError, SyntaxError, ValueError) as e:  # a truncated or corrupt body shows only when decoded
        raise SketchError(f"Could not read the image file ({e}).") from None
    return image


def _to_array(image) -> np.ndarray:
    """PIL image or array -> float32 H x W x C (C in 1, 3, 4) scaled to [0, 1]."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim in (2, 3) \
            and max(image.shape[:2]) > MAX_SIDE and (image.ndim == 2 or image.shape[2] in (3, 4)):
        image = Image.fromarray(image)
    if isinstance(image, Image.Image):
        image = decoded(image)
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(image, dtype=np.float64)
            top = 65535.0 if image.mode.startswith("I;16") or arr.max() > 255 else 255.0
            return (arr / top).astype(np.float32)[..., None]
        if image.mode not in ("L", "LA", "RGB", "RGBA", "F"):  # "F": 32-bit floats, read as they are
            image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
        arr = np.asarray(image)
    elif isinstance(image, np.ndarray):
        if image.ndim >= 2:
            check_size(image.shape[1], image.shape[0])
        arr = image
    else:
        raise SketchError(f"Expected an image (PIL image or array), got {type(image).__name__}.")
    if arr.dtype == bool:
        arr = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.integer):
        top = 65535.0 if arr.dtype in (np.uint16, np.int32, np.int64) and arr.max() > 255 else 255.0
        arr = arr.astype(np.float32) / top
    elif np.issubdtype(arr.dtype, np.floating):
        arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        if arr.max(initial=0.0) > 1.0:
            arr = arr / 255.0
    else:
        raise SketchError(f"Unsupported pixel type {arr.dtype}.")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise SketchError(f"Expected a 2-D image with 1-4 channels, got an array of shape {arr.shape}.")
    return np.clip(arr, 0.0, 1.0)


def _downscale(arr: np.ndarray) -> np.ndarray:
    """Area-average huge inputs down to MAX_SIDE on the longer side (bounded cost per request)."""
    h, w = arr.shape[:2]
    factor = int(np.ceil(max(h, w) / MAX_SIDE))
    if factor <= 1:
        return arr
    ph, pw = (-h) % factor, (-w) % factor
    arr = np.pad(arr, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return arr.reshape(arr.shape[0] // factor, factor, arr.shape[1] // factor, factor, -1).mean((1, 3))


def _is_card(opaque: np.ndarray, lum: np.ndarray) -> bool:
    """Whether the opaque pixels are a card (paper with the digit on it) rather than the strokes themselves.

    A card fills its bounding box, is mostly one colour with a contrasting minority (the digit), and
    its edge is that colour (paper). Strokes, of one colour, leave most of their box empty or have no
    such minority; an outlined stroke (a sticker-style thick "1") has the minority on its edge.
    """
    rows, cols = np.flatnonzero(opaque.any(1)), np.flatnonzero(opaque.any(0))
    if rows.size == 0:
        return False
    box = opaque[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    if box.mean() < CARD_FILL:
        return False
    paper = np.median(lum[opaque])
    contrast = np.abs(lum - paper) > 0.5
    if not CARD_INK[0] <= contrast[opaque].mean() <= CARD_INK[1]:
        return False
    # The opaque pixels next to a see-through one (or the image's border): mostly paper on a card.
    see_through = np.pad(~opaque, 1, constant_values=True)
    near = see_through[:-2, 1:-1] | see_through[2:, 1:-1] | see_through[1:-1, :-2] | see_through[1:-1, 2:]
    edge = opaque & near
    return bool(edge.any()) and contrast[edge].mean() <= 1.0 - CARD_FILL


def ink_map(image) -> np.ndarray:
    """H x W float32 ink level in [0, 1], whatever the input's polarity and alpha."""
    arr = _downscale(_to_array(image))
    channels = arr.shape[2]
    has_alpha = channels in (2, 4)
    colour = arr[..., :-1] if has_alpha else arr
    lum = colour[..., 0] if colour.shape[2] == 1 else colour[..., :3] @ np.float32([0.299, 0.587, 0.114])
    border = np.concatenate([lum[0], lum[-1], lum[:, 0], lum[:, -1]])
    if has_alpha:
        alpha = arr[..., -1]
        border_alpha = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
        opaque = alpha >= 0.5
        transparent_background = np.median(border_alpha) < 0.5 or (~opaque).mean() >= SEE_THROUGH
        if transparent_background and not _is_card(opaque, lum):
            # Strokes on a transparent layer (also when, cropped tight, they fill most of the border):
            # the opaque strokes are the ink, dark or light alike.
            return np.clip(alpha, 0.0, 1.0).astype(np.float32)
        # Opaque paper: the whole image with a few see-through pixels (a screenshot's rounded corners),
        # or a card on a transparent margin. See-through pixels are paper too.
        paper_lum = lum[opaque] if transparent_background else border[border_alpha >= 0.5]
        background = float(np.median(paper_lum))
        lum = alpha * lum + (1.0 - alpha) * background
    else:
        background = float(np.median(border))
    ink = 1.0 - lum if background > 0.5 else lum
    paper = 1.0 - background if background > 0.5 else background
    # Grey paper (a photo, a scan) is not ink: stretch so the paper level maps to 0.
    return np.clip((ink - paper) / max(1.0 - paper, 1e-3), 0.0, 1.0).astype(np.float32)


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a boolean ink mask, in its pixels: area over half the outline (2 x area / edge pixels)."""
    padded = np.pad(mask, 1)
    inner = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return 2.0 * float(mask.sum()) / max(int((mask & ~inner).sum()), 1)


def _scaled(ink: np.ndarray, side: float) -> np.ndarray:
    """ink resized so that its longer side is `side` px. PIL's resize filters the whole footprint when shrinking, i.e.
    it anti-aliases like MNIST's pipeline."""
    scale = side / max(ink.shape)
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR
    return np.array(Image.fromarray(ink).resize(size, resample), dtype=np.float32)


def _thicken_thin(crop: np.ndarray) -> tuple[np.ndarray, float]:
    """The cropped ink as it is, or, if its strokes are thinner than STROKE_FLOOR (at the 28x28 scale), the strokes
    alone, fully inked as MNIST's are, and widened to at least the floor; and the strokes' width as drawn."""
    peak = float(np.percentile(crop[crop > INK_THRESHOLD], 95))  # the ink's level: one dark speck is not it
    strokes = crop > 0.5 * peak
    scale = BOX / max(crop.shape)
    width = stroke_width(strokes) * scale
    if width >= STROKE_FLOOR:
        return crop, width
    ink = np.where(strokes, np.minimum(crop / peak, 1.0), 0.0).astype(np.float32)  # paper's shading is not widened
    work = torch.from_numpy(_scaled(ink, WORK * BOX))
    grow = 2 * math.ceil((STROKE_FLOOR - width) * WORK / 2) + 1  # an odd max filter widens strokes by grow - 1 px
    work = F.pad(work, [grow // 2] * 4)  # room for the outermost strokes to widen
    return F.max_pool2d(work[None], grow, stride=1, padding=grow // 2)[0].numpy(), width


def preprocess(image) -> Sketch | None:
    """MNIST-style 28x28 input for any sketch or image; None when there is no ink (blank canvas)."""
    if image is None:
        return None
    ink = ink_map(image)
    mask = ink > INK_THRESHOLD
    if ink.max(initial=0.0) < 0.3 or not mask.any():
        return None
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    crop, stroke = _thicken_thin(ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    small = np.clip(_scaled(crop, BOX), 0.0, 1.0)
    new_h, new_w = small.shape
    total = small.sum()
    if total <= 0:
        return None
    ys, xs = np.arange(new_h, dtype=np.float32), np.arange(new_w, dtype=np.float32)
    com_y, com_x = (small.sum(1) @ ys) / total, (small.sum(0) @ xs) / total
    top = int(np.clip(round(CENTRE - com_y), 0, SIZE - new_h))
    left = int(np.clip(round(CENTRE - com_x), 0, SIZE - new_w))
    pixels = np.zeros((SIZE, SIZE), dtype=np.float32)
    pixels[top:top + new_h, left:left + new_w] = small
    tensor = torch.from_numpy((pixels - MNIST_MEAN) / MNIST_STD).view(1, 1, SIZE, SIZE)
    return Sketch(pixels=pixels, tensor=tensor, stroke=stroke)


def from_mnist(digit: np.ndarray) -> Sketch:
    """A 28x28 MNIST digit (uint8, white on black) exactly as the test set feeds it: no crop, no re-centring.

    Going through `preprocess` would crop and rescale it again, and for a borderline digit that can
    change the answer: the app would then not show the mistake the evaluation recorded.
    """
    digit = np.asarray(digit)
    if digit.shape != (SIZE, SIZE) or digit.dtype != np.uint8:
        raise SketchError(f"Expected a {SIZE}x{SIZE} uint8 MNIST digit, got {digit.shape} {digit.dtype}.")
    tensor = normalize_uint8(torch.from_numpy(digit.copy())[None])  # 1 x 1 x 28 x 28, as in evaluation
    return Sketch(pixels=digit.astype(np.float32) / 255.0, tensor=tensor)
