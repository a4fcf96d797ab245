"""Draw a digit, watch the 14,120-parameter CNN read it: prediction, input and every block's feature maps."""
from __future__ import annotations

import os
from pathlib import Path

import gradio as gr
import numpy as np

from mnist_net.checkpoint import DEFAULT_WEIGHTS, WeightsError, load_model
from mnist_net.inference import BLOCK_TITLES, analyze
from mnist_net.model import Net
from mnist_net.sketch import SketchError

HERE = Path(__file__).resolve().parent
EXAMPLES = sorted((HERE / "examples").glob("*.png"))
WEIGHTS = Path(os.environ.get("MNIST_NET_WEIGHTS", DEFAULT_WEIGHTS))
CANVAS = 280       # 10x MNIST's 28 px
BRUSH_RADIUS = 9   # ~1/10 of a digit's height, like MNIST's strokes after downscaling


def _load() -> tuple[Net | None, str | None]:
    try:
        return load_model(WEIGHTS), None
    except WeightsError as e:
        return None, str(e)


MODEL, MODEL_ERROR = _load()
EMPTY_MESSAGE = "Draw a digit (0-9) on the canvas: the prediction updates after every stroke."
BLOCKS = list(BLOCK_TITLES)


def predict(sketch, show_layers: bool = False):
    """Sketchpad value (or image) -> label, network input, 4 block grids, 4 layer stacks, status text."""
    n_out = 1 + 1 + len(BLOCKS) + len(BLOCKS)
    if MODEL is None:
        return (None,) * n_out + (f"**The model could not be loaded.** {MODEL_ERROR}",)
    try:
        result = analyze(MODEL, sketch, with_layers=bool(show_layers))
    except SketchError as e:
        return (None,) * n_out + (f"**Could not read this image.** {e}",)
    if result is None:
        return (None,) * n_out + (EMPTY_MESSAGE,)
    label = {str(d): float(p) for d, p in enumerate(result.probabilities)}
    (best, p1), (second, p2) = result.top(2)
    blocks = [result.blocks[b] for b in BLOCKS]
    layers = [result.layers.get(b) if show_layers else None for b in BLOCKS]
    status = (f"Prediction: **{best}** ({p1:.1%}); runner-up: {second} ({p2:.1%}). "
              + " ".join(f"{b} scale {lo:.2f} to {hi:.2f}." for b, (lo, hi) in result.scales.items()))
    return (label, result.input_view, *blocks, *layers, status)


# Gradio 6's sketchpad opens with no tool selected ("select the draw tool to start") and, in our
# tests, also after "Clear canvas". Whenever no tool is active, select the brush so people can draw at once.
SELECT_BRUSH_JS = """
() => {
  const ensureBrush = () => {
    const root = document.querySelector('#sketchpad');
    if (!root) return;
    const tools = [...root.querySelectorAll('button[aria-label="Brush"], button[aria-label="Erase"], button[aria-label="Pan"]')];
    const brush = root.querySelector('button[aria-label="Brush"]');
    if (brush && !tools.some(b => b.classList.contains('highlight'))) brush.click();
  };
  ensureBrush();
  setInterval(ensureBrush, 300);
}
"""

with gr.Blocks(title="mnist_net: how a 14k-parameter CNN reads your digit") as demo:
    gr.Markdown(
        "# How a 14,120-parameter CNN reads your digit\n"
        "Draw a digit. The drawing is cropped, scaled to 20 px and centred in 28x28 the way MNIST was made, "
        "then run through four blocks of 3x3 convolutions (no fully connected layer). "
        "Each grid shows one block's channels on one colour scale (dark = low, yellow = high; the bar under "
        "each grid gives the numbers)."
    )
    if MODEL_ERROR:
        gr.Markdown(f"> **The model could not be loaded.** {MODEL_ERROR}")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            sketch = gr.Sketchpad(
                label="Draw here", elem_id="sketchpad", type="numpy", image_mode="RGBA",
                canvas_size=(CANVAS, CANVAS), fixed_canvas=True, layers=False, transforms=(),
                brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"),
            )
            show_layers = gr.Checkbox(label="Also show every layer inside each block (conv, ReLU, BN, pool)",
                                      value=False)
        with gr.Column(scale=1, min_width=300):
            label = gr.Label(num_top_classes=3, label="Prediction", elem_id="prediction")
            seen = gr.Image(label="What the network sees (28x28, normalised as in training)", height=224,
                            width=224, interactive=False, elem_id="seen", buttons=[])
    status = gr.Markdown(EMPTY_MESSAGE, elem_id="status")
    block_images, layer_images = [], []
    with gr.Row():
        for pair in (BLOCKS[:2], BLOCKS[2:]):
            with gr.Column():
                for name in pair:
                    # Title as Markdown, not as the image label, which would cover the first channels' labels.
                    gr.Markdown(f"**{BLOCK_TITLES[name]}**")
                    block_images.append(gr.Image(show_label=False, interactive=False,
                                                 elem_id=f"{name}-maps", buttons=[], height="auto"))
    with gr.Accordion("Every layer of every block", open=False):
        for name in BLOCKS:
            layer_images.append(gr.Image(label=f"{name}: layer by layer (tick the box above)", interactive=False,
                                         elem_id=f"{name}-layers", buttons=[]))
    if EXAMPLES:
        gr.Examples(examples=[[str(p)] for p in EXAMPLES], inputs=[sketch], label="Real MNIST test digits")

    demo.load(None, js=SELECT_BRUSH_JS)

    outputs = [label, seen, *block_images, *layer_images, status]
    sketch.change(predict, inputs=[sketch, show_layers], outputs=outputs, api_name="predict",
                  show_progress="hidden", trigger_mode="always_last")
    show_layers.change(predict, inputs=[sketch, show_layers], outputs=outputs, api_name=False,
                       show_progress="hidden")


if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), share=False)
