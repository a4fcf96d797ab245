"""One drawing in, everything the demo shows out: probabilities, the 28x28 input, block and layer maps, saliency."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .explain import saliency, saliency_overlay
from .model import Net
from .novelty import Detector, novelty
from .render import input_image, layer_outputs, render_grid, stack_titled
from .sketch import MAX_PIXELS, Sketch, SketchError, check_size, decoded, preprocess

# One layout for every window: at most 5 maps a row (block 1 as 2 x 5, blocks 2-3 as 4 x 4, block 4 as
# 2 x 5) at ~48 px a map, at most 264 px wide, so a phone's ~340 px column shows every grid at its own
# size (one row of 10 maps, 524 px, was shrunk to 59% there, its labels to 5-6 px). The layer stacks are
# 4 maps wide (at most ~250 px).
BLOCK_CELL = 48
BLOCK_COLUMNS = 5
LAYER_CELL = 56
LAYER_COLUMNS = 4

BLOCK_TITLES = {
    "block1": "Block 1: conv 3x3 (12) > conv 3x3 (20) > conv 1x1 (10) > max-pool, 10 x 12 x 12",
    "block2": "Block 2: conv 3x3 (16) > conv 3x3 (16), 16 x 8 x 8",
    "block3": "Block 3: conv 3x3 (16) > conv 3x3 (16), 16 x 4 x 4",
    "block4": "Block 4: conv 3x3 (16) > conv 2x2 (10), the 10 class scores (before softmax)",
}
DIGITS = [str(d) for d in range(10)]
# The app's API, as "Use via API" describes it (the outputs are those of `Analysis.images`, in order).
PREDICT_API = ("Read one drawn digit. Inputs: the drawing, as the sketchpad's dict {'background': image or None, "
               "'layers': [images], 'composite': image or None}, each image sent with gradio_client.handle_file (dark "
               "on light, or light or dark on transparent, up to 64 million pixels; a bare image is read as an empty "
               "canvas); and show_layers (default false). Returns 11 values: the label ({'label': '7', 'confidences': "
               "the top 3}; no 'label' for a blank or unreadable drawing), what the network sees (the 28x28 input, "
               "enlarged), the feature maps of blocks 1 to 4, each block layer by layer (null unless show_layers), and "
               "the status line (Markdown: the prediction and the runner-up, or why there is none). Images are PNG "
               "data URLs (data:image/png;base64,...).")
EXPLAIN_API = ("Saliency of the predicted digit over what the network sees (SmoothGrad; red raises the score, blue "
               "lowers it), as a PNG data URL; null for a blank or unreadable drawing. Input: the drawing, as /predict "
               "takes it.")

CLASSIFY_API = ("Read one plain image: is it a digit, and which? Input: the image, sent with gradio_client.handle_file (as "
                "/predict takes a drawing: dark on light, or light or dark on transparent, any size up to 64 million "
                "pixels). Returns JSON: {'digit': 0-9, 'confidence': its probability, 'probabilities': [10 floats], "
                "'is_digit': novelty <= threshold, 'novelty': the detector's score (higher: less like a digit), "
                "'threshold'}; for a blank or unreadable image 'digit' is null, 'is_digit' false, and 'message' says why; "
                "weights without a fitted detector give 'is_digit', 'novelty' and 'threshold' null, and a 'message'.")


def _score(value) -> float | None:
    """A detector score as /classify gives it: 4 decimals, or None."""
    return None if value is None else round(float(value), 4)


@dataclass
class Analysis:
    """What the demo shows for one drawing."""

    probabilities: np.ndarray                 # 10, sums to 1
    input_view: np.ndarray                    # RGB, the 28x28 input enlarged
    blocks: dict[str, np.ndarray]             # block name -> RGB grid of its channels
    layers: dict[str, np.ndarray] = field(default_factory=dict)  # block name -> RGB grid of every layer
    sketch: Sketch | None = None
    novelty: float | None = None              # the detector's score (None: no detector); higher, less digit-like
    threshold: float | None = None

    @property
    def is_digit(self) -> bool | None:
        """Whether the drawing looks like a digit to the detector; None without one."""
        return None if self.novelty is None else self.novelty <= self.threshold

    @property
    def prediction(self) -> int:
        """The predicted digit."""
        return int(self.probabilities.argmax())

    def top(self, k: int = 2) -> list[tuple[int, float]]:
        """(digit, probability) for the k most likely digits."""
        order = np.argsort(-self.probabilities)[:k]
        return [(int(d), float(self.probabilities[d])) for d in order]

    def confidences(self) -> dict[str, float]:
        """{'0': p0, ..., '9': p9}, as a label component shows them."""
        return {d: float(p) for d, p in zip(DIGITS, self.probabilities)}

    def status(self) -> str:
        """The status line (Markdown): the prediction and the runner-up, or that it does not look like a digit."""
        (best, p1), (second, p2) = self.top(2)
        if self.is_digit is False:
            return (f"\u26a0\ufe0f **This doesn't look like a digit.** Closest: **{best}**, {p1:.2%}: the softmax "
                    f"still picks a digit, but the blocks' features are not those of a digit (novelty {self.novelty:.2f}, "
                    f"above the threshold {self.threshold:.2f}; see the Model tab)."
                    + (" Its strokes are thick for its size, which fills a digit's loops: if it is one, try drawing "
                       "it larger."
                       if self.sketch is not None and self.sketch.thick else ""))
        return f"Prediction: **{best}** ({p1:.1%}); runner-up: **{second}** ({p2:.1%})."

    def classification(self) -> dict:
        """/classify's answer: the digit, its probability, all 10, and the detector's verdict."""
        return {"digit": self.prediction, "confidence": round(float(self.probabilities.max()), 6),
                "probabilities": [round(float(p), 6) for p in self.probabilities], "is_digit": self.is_digit,
                "novelty": _score(self.novelty), "threshold": _score(self.threshold)}

    def images(self) -> list[np.ndarray | None]:
        """The input view, the 4 block grids and the 4 layer stacks (None when not rendered), in BLOCK_TITLES' order."""
        return [self.input_view, *(self.blocks[b] for b in BLOCK_TITLES), *(self.layers.get(b) for b in BLOCK_TITLES)]


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
    if value.get("error"):  # the app's canvas refused the upload before decoding it
        raise SketchError(str(value["error"]))
    composite = value.get("composite")
    if composite is not None:
        return image_from_editor(composite)
    parts = [image_from_editor(p) for p in [value.get("background"), *(value.get("layers") or [])]]
    parts = [Image.fromarray(p) if isinstance(p, np.ndarray) else p for p in parts if p is not None]
    if not parts:
        return None
    for part in parts:  # before any is decoded: a layer can be as large as a whole image
        check_size(part.width, part.height)
    check_total(sum(part.width * part.height for part in parts))
    base = decoded(parts[0]).convert("RGBA")
    for layer in parts[1:]:
        layer = decoded(layer).convert("RGBA")
        if layer.size != base.size:
            layer = layer.resize(base.size)
        base = Image.alpha_composite(base, layer)
    return base


def check_total(pixels: int) -> None:
    """SketchError for a drawing whose images, each within MAX_PIXELS, are too large together (many layers)."""
    if pixels > MAX_PIXELS:
        raise SketchError(f"The drawing's images have {pixels:,} pixels together; up to "
                          f"{MAX_PIXELS // 1_000_000} million are accepted.")


def check_image_file(path) -> int:
    """The file's pixel count; SketchError unless its header reads as an image of at most MAX_PIXELS (not decoded)."""
    with image_from_editor(str(path)) as image:  # Image.open keeps the file open until closed
        check_size(image.width, image.height)
        return image.width * image.height


def uploaded_drawing(value) -> dict:
    """A sketchpad dict as Gradio passes it to an API-only endpoint (files as dicts): each file by its path.

    Only files Gradio checked as uploads and moved to its cache (marked as its FileData): never a path a caller names.
    """
    def path(file):
        checked = isinstance(file, dict) and (file.get("meta") or {}).get("_type") == "gradio.FileData"
        return file.get("path") if checked else None
    value = value if isinstance(value, dict) else {}
    return {"background": path(value.get("background")), "composite": path(value.get("composite")),
            "layers": [path(f) for f in value.get("layers") or []]}


def checked_before_decoding(decode):
    """A sketchpad's preprocess (`decode`) that first checks each uploaded file's header, and turns what Pillow
    raises into a value that `image_from_editor` reports: Gradio decodes the upload before the app sees it, and a
    bomb (a 45 KB PNG of 20000x10000 px) or a truncated PNG gave a traceback and a bare "Error" instead."""
    def checked(payload):
        try:
            files = (payload.background, payload.composite, *payload.layers) if payload else ()
            check_total(sum(check_image_file(f.path) for f in files if getattr(f, "path", None)))
            return decode(payload)
        except (OSError, SyntaxError, ValueError) as e:  # SketchError is a ValueError
            return {"background": None, "layers": [], "composite": None, "error": str(e)}
    return checked


def as_sketch(subject) -> Sketch | None:
    """A `Sketch` as it is; anything with `as_sketch()` (a test digit) as it says; anything else (sketchpad
    value, image, path) preprocessed like a drawing. None: no ink."""
    if isinstance(subject, Sketch):
        return subject
    if hasattr(subject, "as_sketch"):
        return subject.as_sketch()
    return preprocess(image_from_editor(subject))


@torch.inference_mode()
def analyze(model: Net, subject, with_layers: bool = False, detector: Detector | None = None,
            render: bool = True) -> Analysis | None:
    """One drawing, image or `Sketch` through preprocessing, the model, the detector (if given) and the renderers
    (unless not `render`: /classify shows no maps); None for a blank canvas."""
    sketch = as_sketch(subject)
    if sketch is None:
        return None
    blocks = model.forward_blocks(sketch.tensor)
    score = None if detector is None else novelty(model, detector, blocks)
    threshold = None if detector is None else float(detector.threshold)
    probabilities = torch.softmax(blocks["block4"].flatten(1), dim=1)[0].numpy()
    pred = int(probabilities.argmax())
    scores = {"labels": DIGITS, "highlight": pred}  # the class scores: labelled by digit, the prediction marked
    rendered = {}
    for name, act in blocks.items() if render else ():
        rendered[name] = render_grid(act[0], cell=BLOCK_CELL, max_columns=BLOCK_COLUMNS,
                                     **(scores if name == "block4" else {}))
    layers = {}
    if with_layers:
        for block_name, outs in layer_outputs(model, sketch.tensor).items():
            last = next(reversed(outs))
            # One enlargement for the whole block, so that a map drawn smaller is smaller: sized per layer,
            # conv1's 26x26 maps came out at 52 px and conv2's 24x24 ones at 72.
            factor = max(1, LAYER_CELL // max(max(t.shape[1:]) for t in outs.values()))
            # Each layer gets its own colour scale: conv outputs and BN outputs live on different ranges.
            layers[block_name] = stack_titled([
                (f"{name}: {' x '.join(map(str, t.shape))}",
                 render_grid(t, max_columns=LAYER_COLUMNS, cell=factor * max(t.shape[1:]),
                             **(scores if block_name == "block4" and name == last else {})))
                for name, t in outs.items()])
    return Analysis(probabilities, input_image(sketch.pixels) if render else None, rendered, layers, sketch,
                    score, threshold)


def classify_image(model: Net | None, detector: Detector | None, path, weights, model_error: str | None = None) -> dict:
    """/classify's JSON for one image file (`path` None: nothing was sent; `model` None: it could not be loaded from
    `weights`)."""
    try:
        result = None if model is None or path is None else analyze(model, path, detector=detector, render=False)
        message = (f"The model could not be loaded. {model_error}" if model is None else
                   "No image file received: send one with gradio_client.handle_file(path) (sketchpad dicts go to "
                   "/predict)." if path is None else
                   "No ink found: the image is blank, or its ink too faint to read.")
    except SketchError as e:
        result, message = None, f"Could not read this image. {e}"
    if result is None:
        return {"digit": None, "confidence": None, "probabilities": None, "is_digit": False, "novelty": None,
                "threshold": _score(None if detector is None else detector.threshold), "message": message}
    if detector is None:
        return {**result.classification(), "message": f"No not-a-digit detector beside {Path(weights).name}: "
                f"is_digit is not checked (`python -m mnist_net.novelty` fits one)."}  # the name: not where it is kept
    return result.classification()


def saliency_view(model: Net, subject) -> tuple[np.ndarray, float] | None:
    """(SmoothGrad overlay for the predicted class, its scale) for one drawing; None for a blank canvas.

    Separate from `analyze` so the app can show the prediction first and the saliency right after.
    `subject` may also be the `Sketch` that `analyze` already made, which skips preprocessing.
    """
    sketch = as_sketch(subject)
    if sketch is None:
        return None
    grad, _ = saliency(model, sketch.tensor)
    return saliency_overlay(sketch.pixels, grad)
