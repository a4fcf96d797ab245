"""Feature maps as labelled, colour-mapped image grids (numpy + PIL, no per-pixel Python loops)."""
from __future__ import annotations

import base64
import io
import struct
import zlib
from collections import OrderedDict
from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .model import Net

TARGET_CELL = 72  # each map is enlarged (nearest neighbour) to about this many pixels
LABEL_H = 14
PAD = 4
BG = (255, 255, 255)


@lru_cache(maxsize=None)
def colormap_lut(name: str = "viridis") -> np.ndarray:
    """256 x 3 uint8 lookup table of a matplotlib colour map."""
    import matplotlib

    return (matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


@lru_cache(maxsize=None)
def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


@lru_cache(maxsize=64)
def _glyph(ch: str) -> np.ndarray:
    font = _font()
    width = max(1, int(np.ceil(font.getlength(ch))))
    img = Image.new("RGB", (width, LABEL_H), BG)
    ImageDraw.Draw(img).text((0, 0), ch, fill=(30, 30, 30), font=font)
    return np.asarray(img)


def text_image(text: str) -> np.ndarray:
    """Dark text on white, LABEL_H high, from cached glyphs (PIL text drawing costs ~0.5 ms a call)."""
    return np.concatenate([_glyph(ch) for ch in text], axis=1)


def colorize(values: np.ndarray, lo: float, hi: float, cmap: str = "viridis") -> np.ndarray:
    """Map values to RGB with a fixed scale lo..hi (same scale for every map it is called with)."""
    span = hi - lo if hi > lo else 1.0
    idx = np.clip((values - lo) / span * 255.0, 0, 255).astype(np.uint8)
    return colormap_lut(cmap)[idx]


def enlarge(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement so every pixel stays a visible square."""
    return rgb.repeat(factor, axis=0).repeat(factor, axis=1)


def paste_grid(canvas: np.ndarray, cells: np.ndarray, origin: tuple[int, int], step: tuple[int, int],
               columns: int, factor: int) -> None:
    """Write C maps (C x h x w x 3) into canvas, row by row `columns` wide, each pixel a factor x factor square.

    One strided copy for the whole grid: pasting map by map was a third of `analyze`'s time.
    `step` is the distance between the top-left corners of neighbouring cells, in rows and columns.
    """
    c, h, w = cells.shape[:3]
    rows = -(-c // columns)
    if rows * columns > c:  # the last row's empty cells stay white, as the frame has them
        cells = np.concatenate([cells, np.full((rows * columns - c, h, w, 3), 255, np.uint8)])
    (y, x), (dy, dx) = origin, step
    if y + (rows - 1) * dy + h * factor > canvas.shape[0] or x + (columns - 1) * dx + w * factor > canvas.shape[1]:
        raise ValueError("grid does not fit the canvas")  # as_strided would write past the array
    if not canvas.flags.c_contiguous:
        raise ValueError("the canvas must be C-contiguous")
    # Widened first, so that each copied run is a whole row of a cell (w * factor pixels) rather than one pixel.
    wide = cells.repeat(factor, axis=2).reshape(rows, columns, h, 1, w * factor * 3)
    sy, sx, sc = canvas.strides
    view = np.lib.stride_tricks.as_strided(canvas[y:, x:], shape=(rows, columns, h, factor, w * factor * 3),
                                           strides=(sy * dy, sx * dx, sy * factor, sy, sc))
    view[...] = wide


def block_scale(acts: np.ndarray) -> tuple[float, float]:
    """One colour scale per block: from min(0, lowest) to the highest activation."""
    lo, hi = float(min(0.0, acts.min())), float(acts.max())
    return lo, (hi if hi > lo else lo + 1.0)


@lru_cache(maxsize=256)
def _frame(c: int, h: int, w: int, labels: tuple[str, ...], columns: int, highlight: int | None, cmap: str,
           cell: int = TARGET_CELL):
    """The parts of a grid that do not depend on the values: white canvas, labels, colour bar, positions.

    Cached, so a live drawing only pays for colouring and pasting the maps (the demo renders every stroke).
    """
    rows = -(-c // columns)
    factor = max(1, cell // max(h, w))
    cell_h, cell_w = h * factor, w * factor
    bar_h = 10
    width = columns * (cell_w + PAD) + PAD
    height = rows * (cell_h + LABEL_H + PAD) + PAD + bar_h + LABEL_H + PAD
    canvas = np.full((height, width, 3), 255, np.uint8)
    step = (cell_h + LABEL_H + PAD, cell_w + PAD)
    positions = []
    for i in range(c):
        r, col = divmod(i, columns)
        y, x = PAD + r * step[0] + LABEL_H, PAD + col * step[1]
        positions.append((y, x))
        if highlight == i:
            canvas[y - 2:y, x:x + cell_w] = (220, 30, 30)
    # Colour bar across the bottom so the scale is stated on the image itself.
    bar_y = height - bar_h - LABEL_H - PAD
    ramp = np.linspace(0, 255, width - 2 * PAD).astype(np.uint8)
    canvas[bar_y:bar_y + bar_h, PAD:width - PAD] = colormap_lut(cmap)[ramp][None]
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(labels):
        y, x = positions[i]
        draw.text((x, y - LABEL_H), text, fill=(200, 20, 20) if highlight == i else (30, 30, 30), font=_font())
    canvas = np.asarray(img)
    canvas.flags.writeable = False
    return canvas, positions[0], step, factor, bar_y + bar_h + 1


def grid_columns(c: int, max_columns: int | None = None) -> int:
    """Columns for c maps: one row up to 10, else two rows; at most max_columns, with rows as full as can be."""
    columns = c if c <= 10 else -(-c // 2)
    if max_columns and columns > max_columns:
        rows = -(-c // max_columns)
        columns = -(-c // rows)  # 16 maps at most 5 wide: 4 rows of 4, not 5, 5, 5 and 1
    return columns


def render_grid(acts: torch.Tensor | np.ndarray, labels: list[str] | None = None, columns: int | None = None,
                cmap: str = "viridis", scale: tuple[float, float] | None = None,
                highlight: int | None = None, cell: int = TARGET_CELL,
                max_columns: int | None = None) -> np.ndarray:
    """C x H x W maps -> an RGB grid image, each map labelled, with a colour bar giving the scale."""
    acts = acts.detach().float().cpu().numpy() if isinstance(acts, torch.Tensor) else np.asarray(acts, np.float32)
    c, h, w = acts.shape
    labels = tuple(labels or [f"ch {i}" for i in range(c)])
    columns = columns or grid_columns(c, max_columns)
    template, origin, step, factor, text_y = _frame(c, h, w, labels, columns, highlight, cmap, cell)
    lo, hi = scale or block_scale(acts)
    coloured = colorize(acts, lo, hi, cmap)  # C x h x w x 3
    canvas = template.copy()
    paste_grid(canvas, coloured, origin, step, columns, factor)
    lo_img, hi_img = text_image(f"{lo:.2f}"), text_image(f"{hi:.2f}")
    canvas[text_y:text_y + LABEL_H, PAD:PAD + lo_img.shape[1]] = lo_img
    right = canvas.shape[1] - PAD
    canvas[text_y:text_y + LABEL_H, right - hi_img.shape[1]:right] = hi_img
    return canvas


def stack_titled(parts: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Stack RGB images vertically, each under a title line, left-aligned on a white canvas."""
    width = max(img.shape[1] for _, img in parts)
    height = sum(img.shape[0] + LABEL_H + PAD for _, img in parts)
    canvas = np.full((height, width, 3), 255, np.uint8)
    y = 0
    for title, img in parts:
        # Cached glyphs, not PIL's text drawing: every layer's title, every stroke, cost ~10 ms in all.
        text = text_image(title)[:LABEL_H - 1, :width - PAD]
        canvas[y + 1:y + LABEL_H, PAD:PAD + text.shape[1]] = text
        canvas[y + LABEL_H:y + LABEL_H + img.shape[0], :img.shape[1]] = img
        y += img.shape[0] + LABEL_H + PAD
    return canvas


def png_bytes(pixels: np.ndarray, compress_level: int = 3) -> bytes:
    """An H x W x 3 (RGB) or H x W (grey) uint8 array as PNG bytes, every row unfiltered.

    Not Pillow's writer: it tries all five PNG row filters on every row and has no option to skip
    that, which was over half of encoding a stroke's images (5.2-8.2 ms against 2.2-3.4 ms here, for
    the same ~38 KB: these images are runs of flat colour, which zlib packs without filtering).
    """
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"expected an H x W x 3 or H x W uint8 array, got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"a PNG needs at least one pixel, got an array of shape {pixels.shape}")
    rows = np.zeros((height, 1 + pixels[0].size), np.uint8)  # each row: filter type 0 (None), then its bytes
    rows[:, 1:] = pixels.reshape(height, -1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    colour_type = 2 if pixels.ndim == 3 else 0  # truecolour or greyscale, 8 bits a sample
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), compress_level)) + chunk(b"IEND", b""))


def png_data_url(rgb: np.ndarray | None) -> str | None:
    """An RGB image as a `data:image/png;base64,...` URL (None stays None), for sending images inline."""
    if rgb is None:
        return None
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgb)).decode("ascii")


def decode_data_url(url: str) -> np.ndarray:
    """The pixels of a `data:image/...;base64,` URL, as a numpy array (for API clients and tests)."""
    header, _, payload = url.partition(",")
    if not header.startswith("data:image/") or not header.endswith(";base64"):
        raise ValueError(f"not a base64 image data URL: {url[:40]!r}")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))


def input_image(pixels: np.ndarray, size: int = 224) -> np.ndarray:
    """The 28x28 input, greyscale, enlarged without smoothing (what the network sees)."""
    grey = (np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    return enlarge(np.repeat(grey[..., None], 3, axis=2), max(1, size // grey.shape[0]))


@torch.inference_mode()
def layer_outputs(model: Net, x: torch.Tensor) -> "OrderedDict[str, OrderedDict[str, torch.Tensor]]":
    """{block: {layer: output}} for one input, walking each named block's layers in order."""
    out: OrderedDict = OrderedDict()
    for block_name in model.block_names:
        layers = OrderedDict()
        for name, layer in getattr(model, block_name).named_children():
            x = layer(x)
            if isinstance(layer, torch.nn.Dropout):
                continue  # identity at inference: it would repeat the previous map
            # Clone: the next in-place ReLU would overwrite this tensor.
            layers[name] = x[0].clone()
        out[block_name] = layers
    return out
