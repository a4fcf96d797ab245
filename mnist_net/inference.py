"""One drawing in, everything the demo shows out: probabilities, the 28x28 input, block and layer maps."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .explain import saliency, saliency_overlay
from .model import Net
from .render import TARGET_CELL, input_image, layer_outputs, render_grid, stack_titled
from .sketch import MAX_PIXELS, Sketch, SketchError, check_size, preprocess

# Block grids are drawn with ~48 px maps so that they fit a half-width column (~430 px) at their own
# size: with 72 px maps (600-760 px wide) the browser only shrank them, labels included, and encoding
# the larger PNGs cost ~3.5 ms of every stroke.
BLOCK_CELL = 48
# compact: for a phone, where the page is one ~310 px column: a block's 10 maps in one row (524 px) were
# shrunk to 59%, their labels to 5-6 px. Five maps a row (264 px; 16 maps as 4 x 4, 212 px) show at their
# own size, and so do the layer stacks at four maps a row (at most ~250 px).
COMPACT_COLUMNS = 5
COMPACT_LAYER_COLUMNS = 4
COMPACT_LAYER_CELL = 56

BLOCK_TITLES = {
    "block1": "Block 1: conv 3x3 (12) > conv 3x3 (20) > conv 1x1 (10) > max-pool, 10 x 12 x 12",
    "block2": "Block 2: conv 3x3 (16) > conv 3x3 (16), 16 x 8 x 8",
    "block3": "Block 3: conv 3x3 (16) > conv 3x3 (16), 16 x 4 x 4",
    "block4": "Block 4: conv 3x3 (16) > conv 2x2 (10), the 10 class scores (before softmax)",
}


@dataclass
class Analysis:
    """What the demo shows for one drawing."""

    probabilities: np.ndarray                 # 10, sums to 1
    input_view: np.ndarray                    # RGB, the 28x28 input enlarged
    blocks: dict[str, np.ndarray]             # block name -> RGB grid of its channels
    scales: dict[str, tuple[float, float]]    # block name -> colour scale (lo, hi)
    layers: dict[str, np.ndarray] = field(default_factory=dict)  # block name -> RGB grid of every layer
    sketch: Sketch | None = None

    @property
    def prediction(self) -> int:
        """The predicted digit."""
        return int(self.probabilities.argmax())

    def top(self, k: int = 2) -> list[tuple[int, float]]:
        """(digit, probability) for the k most likely digits."""
        order = np.argsort(-self.probabilities)[:k]
        return [(int(d), float(self.probabilities[d])) for d in order]


def configure_for_serving() -> None:
    """One intra-op thread per request: a 1x28x28 forward pass is ~0.8 ms on one thread and ~10x slower
    when two threads must synchronise on every tiny conv; concurrent requests use the other cores."""
    torch.set_num_threads(1)


def image_from_editor(value) -> Image.Image | np.ndarray | None:
    """The drawing inside an ImageEditor/Sketchpad value ({background, layers, composite}) or a plain image."""
    if value is None or isinstance(value, (Image.Image, np.ndarray)):
        return value
    if isinstance(value, (str, bytes)) or hasattr(value, "__fspath__"):
        try:
            return Image.open(value)  # reads the header only; decoding is checked in preprocess
        except Image.DecompressionBombError:
            raise SketchError(f"The image is too large; images up to {MAX_PIXELS // 1_000_000} million "
                              f"pixels are accepted.") from None
        except (OSError, ValueError, SyntaxError) as e:
            # The file's name, not its path: for an upload, that would tell the world where the server keeps it.
            reason = str(e).replace(str(value), Path(str(value)).name) if isinstance(value, str) else str(e)
            raise SketchError(f"Could not open the image file: {reason}") from None
    if not isinstance(value, dict):
        raise SketchError(f"Expected a sketchpad value or an image, got {type(value).__name__}.")
    if value.get("error"):  # the UI's canvas component refused the upload before decoding it
        raise SketchError(str(value["error"]))
    composite = value.get("composite")
    if composite is not None:
        return image_from_editor(composite)
    parts = [image_from_editor(p) for p in [value.get("background"), *(value.get("layers") or [])]]
    parts = [Image.fromarray(p) if isinstance(p, np.ndarray) else p for p in parts if p is not None]
    if not parts:
        return None
    base = parts[0].convert("RGBA")
    for layer in parts[1:]:
        layer = layer.convert("RGBA")
        if layer.size != base.size:
            layer = layer.resize(base.size)
        base = Image.alpha_composite(base, layer)
    return base


def check_image_file(path) -> None:
    """SketchError unless the file's header reads as an image of at most MAX_PIXELS; nothing is decoded."""
    with image_from_editor(str(path)) as image:  # Image.open keeps the file open until closed
        check_size(image.width, image.height)


def as_sketch(image) -> Sketch | None:
    """A `Sketch` as it is; anything else (sketchpad value, image, path) preprocessed. None: no ink."""
    return image if isinstance(image, Sketch) else preprocess(image_from_editor(image))


def label_names(num_classes: int = 10) -> list[str]:
    """'0'..'9'."""
    return [str(i) for i in range(num_classes)]


@torch.inference_mode()
def analyze(model: Net, image, with_layers: bool = False, compact: bool = False) -> Analysis | None:
    """Run one image (or an already made `Sketch`) through preprocessing, the model and the renderers.

    None for a blank canvas. compact: grids laid out for a phone's width (see COMPACT_COLUMNS).
    """
    sketch = as_sketch(image)
    if sketch is None:
        return None
    blocks = model.forward_blocks(sketch.tensor)
    logits = blocks["block4"].flatten(1)
    probabilities = torch.softmax(logits, dim=1)[0].numpy()
    pred = int(probabilities.argmax())
    rendered, scales = {}, {}
    for name, act in blocks.items():
        labels = label_names(act.shape[1]) if name == "block4" else None
        highlight = pred if name == "block4" else None
        rendered[name], scales[name] = render_grid(act[0], labels=labels, highlight=highlight, cell=BLOCK_CELL,
                                                   max_columns=COMPACT_COLUMNS if compact else None)
    layers = {}
    if with_layers:
        columns, base_cell = (COMPACT_LAYER_COLUMNS, COMPACT_LAYER_CELL) if compact else (None, TARGET_CELL)
        for block_name, outs in layer_outputs(model, sketch.tensor).items():
            last = next(reversed(outs))
            # One enlargement for the whole block, so that a map drawn smaller is smaller: sized per layer,
            # conv1's 26x26 maps came out at 52 px and conv2's 24x24 ones at 72.
            factor = max(1, base_cell // max(max(t.shape[1:]) for t in outs.values()))
            # Each layer gets its own colour scale: conv outputs and BN outputs live on different ranges.
            # The last one of block 4 is the class scores: labelled by digit, the prediction marked, as above.
            layers[block_name] = stack_titled([
                (f"{name}: {' x '.join(map(str, t.shape))}",
                 render_grid(t, max_columns=columns, cell=factor * max(t.shape[1:]),
                             **({"labels": label_names(t.shape[0]), "highlight": pred}
                                if block_name == "block4" and name == last else {}))[0])
                for name, t in outs.items()])
    return Analysis(probabilities, input_image(sketch.pixels), rendered, scales, layers, sketch)


def saliency_view(model: Net, image) -> tuple[np.ndarray, float] | None:
    """(SmoothGrad overlay for the predicted class, its scale) for one drawing; None for a blank canvas.

    Separate from `analyze` so the app can show the prediction first and the saliency right after.
    `image` may also be the `Sketch` that `analyze` already made, which skips preprocessing.
    """
    sketch = as_sketch(image)
    if sketch is None:
        return None
    grad, _ = saliency(model, sketch.tensor)
    return saliency_overlay(sketch.pixels, grad)
