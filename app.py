"""Draw a digit, watch the 14,120-parameter CNN read it: prediction, saliency and every block's feature maps."""
from __future__ import annotations

import html
import os
import sys
from pathlib import Path

# Gradio parses GRADIO_SERVER_PORT while it is imported, with a bare int(): check it first.
_PORT = os.environ.get("GRADIO_SERVER_PORT", "7860")
if not (_PORT.isdigit() and 0 < int(_PORT) < 65536):
    sys.exit(f"error: GRADIO_SERVER_PORT must be a port number from 1 to 65535, got {_PORT!r}")

import gradio as gr  # noqa: E402
import pandas as pd

from mnist_net.checkpoint import DEFAULT_WEIGHTS, WeightsError, load_model
from mnist_net.explain import conv1_kernels, one_by_one_mixing
from mnist_net.inference import (BLOCK_TITLES, analyze, check_image_file, configure_for_serving,
                                 saliency_view)
from mnist_net.model import Net
from mnist_net.render import png_data_url
from mnist_net.report import architecture_rows, curve_rows, load_report
from mnist_net.sketch import SketchError

HERE = Path(__file__).resolve().parent
EXAMPLES = sorted((HERE / "examples").glob("*.png"))
WEIGHTS = Path(os.environ.get("MNIST_NET_WEIGHTS") or DEFAULT_WEIGHTS)
CANVAS = 280       # 10x MNIST's 28 px
BRUSH_RADIUS = 14  # a 28 px stroke: ~3 px once a ~190 px digit is scaled to MNIST's 20 px box, as MNIST's strokes
# Each predict takes a few ms of CPU; more parallel workers than cores only adds contention,
# and a bounded queue turns a flood of visitors into a clear "queue full" instead of ever-growing waits.
CONCURRENCY = max(1, min(4, os.cpu_count() or 1))
# Every event that runs the model shares one limit: Gradio otherwise gives each handler its own group,
# so strokes, saliency, the checkbox, examples and the gallery could each run CONCURRENCY at once.
MODEL_QUEUE = {"concurrency_limit": CONCURRENCY, "concurrency_id": "model"}
QUEUE_SIZE = 256
# The images of every stroke travel inside the answer as PNG data URLs shown by gr.HTML. As gr.Image
# outputs, Gradio wrote each to its file cache and checked each path (~5 ms an image here, on top of
# encoding) and the page then fetched each file: the server took ~66 ms per stroke instead of ~36.
# The alt text is the output's name, so that a screen reader says what each image is. Without an image the
# frame says what will appear there: empty frames looked like a page that had failed to load.
IMAGE_TEMPLATE = ('${value ? `<img src="${value}" alt="ALT" style="max-width:100%;height:auto;display:block;margin:0 auto">`'
                  ' : `<p style="opacity:0.6;text-align:center;margin:1.5em 0.5em">PLACEHOLDER</p>`}')
# Every prediction still leaves the uploaded drawing in Gradio's cache, which Gradio keeps until the
# server stops unless told otherwise: a busy Space would fill its disk. Every 15 minutes, files a request
# made more than an hour ago are deleted (the Model tab's and the examples' files are kept).
DELETE_CACHE = (15 * 60, 60 * 60)
# What "Use via API" says of the two endpoints (Gradio would show the handlers' docstrings, written for us).
PREDICT_API = ("Read a drawn digit: the top-3 label, what the network sees (28x28), the feature maps of blocks 1-4, "
               "each block layer by layer when the second input is true, and the status line. Images are PNG data URLs. "
               "Send the image inside the sketchpad's dict, as its composite or its background: a bare image file is "
               "read as an empty canvas.")
EXPLAIN_API = "Saliency of the predicted digit over the input (SmoothGrad), as a PNG data URL."
# Below this width the two curves stack instead of sharing a row: side by side on a phone, the accuracy
# plot's long title left it no room to draw in.
PLOT_MIN_WIDTH = 320
# Windows narrower than this get the compact grids (at most 5 maps wide): there the page is one column,
# too narrow for block 1's 524 px row, which the browser shrank, labels and all.
COMPACT_BELOW = 600
# The misclassified gallery's fixed 8 columns overflowed a phone's screen: as many ~100 px columns as fit.
# Its captions sat on the digits (bottom right, often the stroke that decided the mistake): put them below,
# and let the gallery grow to show every digit (it kept a fixed height and scrolled inside, on phones too).
CSS = ("#misclassified .grid-container { grid-template-columns: repeat(auto-fill, minmax(100px, 1fr)) !important; }\n"
       "#misclassified .grid-wrap { height: auto !important; max-height: none !important; }\n"
       "#misclassified .thumbnail-item { aspect-ratio: auto !important; height: auto !important; }\n"
       "#misclassified .caption-label { position: static !important; display: block; max-width: none; border: none;"
       " border-radius: 0; text-align: center; }\n"
       # On a phone the examples sit between the canvas and the answer: as 4 rows of 82 px thumbnails they
       # pushed the answer 380 px down, so there they are one row of small ones that scrolls sideways.
       f"@media (max-width: {COMPACT_BELOW - 1}px) {{"  # where the grids are compact (compact_layout)
       " #examples .gallery { flex-wrap: nowrap !important; overflow-x: auto; }"
       " #examples .gallery-item { flex: 0 0 auto; width: 50px !important; height: 50px !important; }"
       " #examples .gallery-item .container { width: 48px !important; height: 48px !important; }"
       " #examples .gallery-item img { width: 44px !important; height: 44px !important; } }")


def _load() -> tuple[Net | None, str | None]:
    try:
        return load_model(WEIGHTS), None
    except WeightsError as e:
        return None, str(e)


configure_for_serving()
MODEL, MODEL_ERROR = _load()
REPORT = load_report(WEIGHTS)
# Weights from a quick try (say 10% accurate) miss thousands of digits: all 9,023 of one such run made the
# app take 25 s to start and 1.2 GB. The gallery shows the most confident mistakes, the worst ones.
GALLERY_MAX = 100
GALLERY = (REPORT.misclassified if len(REPORT.misclassified) <= GALLERY_MAX else
           sorted(REPORT.misclassified, key=lambda d: -d.confidence)[:GALLERY_MAX])
EMPTY_MESSAGE = "Draw a digit (0-9) on the canvas: the prediction updates after every stroke."
BLOCKS = list(BLOCK_TITLES)
N_IMAGES = 1 + 2 * len(BLOCKS)  # input view, block grids, layer stacks


def _predict(subject, show_layers: bool, note: str = "", compact: bool = False):
    """predict's outputs, plus the preprocessed drawing (None when there is nothing to explain).

    subject: a sketchpad value or image, or a `Sketch` (a drawing already preprocessed, a test digit);
    note: said before the status line, for subjects that are not the visitor's drawing;
    compact: grids laid out for a phone (the session's screen, see `compact_layout`).
    """
    def only_status(text: str):  # no label and no images, just the status line
        return (None,) * (1 + N_IMAGES) + (text,), None

    if MODEL is None:
        return only_status(f"**The model could not be loaded.** {MODEL_ERROR}")
    try:
        result = analyze(MODEL, subject, with_layers=bool(show_layers), compact=bool(compact))
    except SketchError as e:
        return only_status(f"**Could not read this image.** {e}")
    if result is None:
        return only_status(EMPTY_MESSAGE)
    label = {str(d): float(p) for d, p in enumerate(result.probabilities)}
    (best, p1), (second, p2) = result.top(2)
    blocks = [result.blocks[b] for b in BLOCKS]
    layers = [result.layers.get(b) for b in BLOCKS]
    status = (f"{note}Prediction: **{best}** ({p1:.1%}); runner-up: **{second}** ({p2:.1%}). Colour scales: "
              + " ".join(f"{b} {lo:.2f} to {hi:.2f}." for b, (lo, hi) in result.scales.items()))
    images = [png_data_url(img) for img in (result.input_view, *blocks, *layers)]
    return (label, *images, status), result.sketch


def predict(sketch, show_layers: bool = False):
    """Sketchpad value (or image) -> label, input view, 4 block grids, 4 layer stacks (PNG data URLs), status."""
    return _predict(sketch, show_layers)[0]


# The Draw tab's outputs always show one subject: the last drawing, example or misclassified test digit.
# The UI keeps it in session state as the preprocessed `Sketch` (plus a note for a test digit), so the
# saliency and the "every layer" box redo exactly what is shown, without a second upload of the canvas.
def predict_and_remember(sketch, show_layers: bool = False, compact: bool = False):
    """predict, also keeping the 28x28 drawing in the session (the canvas is now the subject)."""
    outs, drawn = _predict(sketch, show_layers, compact=compact)
    return (*outs, drawn, "")


def explain(sketch):
    """Saliency of the predicted class over the input (a separate event, so the prediction is not delayed)."""
    if MODEL is None:
        return None
    try:
        view = saliency_view(MODEL, sketch)
    except SketchError:
        return None  # predict, which runs first, has already shown the message
    return None if view is None else png_data_url(view[0])


def explain_remembered(drawn):
    """explain for the drawing predict_and_remember kept (None: nothing drawn, nothing to explain)."""
    return None if drawn is None or MODEL is None else png_data_url(saliency_view(MODEL, drawn)[0])


def redo_remembered(drawn, note: str, show_layers: bool, compact: bool = False):
    """The "every layer" box: the subject on show again, with or without every layer, that section opened."""
    return (*relayout_remembered(drawn, note, show_layers, compact), gr.Accordion(open=bool(show_layers)))


def predict_and_explain(sketch, show_layers: bool = False, compact: bool = False):
    """predict, then explain: for clicks on examples, which do not fire the canvas' change event."""
    outs, drawn = _predict(sketch, show_layers, compact=compact)
    return (*outs, explain_remembered(drawn), drawn, "")


def analyze_misclassified(show_layers: bool, compact: bool, evt: gr.SelectData):
    """Show a misclassified test digit on the Draw tab, fed to the network exactly as the evaluation fed it."""
    digit = GALLERY[evt.index]
    note = f"Showing misclassified test digit {digit.caption} (not your drawing). "
    # Not through the canvas: preprocessing would crop and re-centre the digit, and some would then get
    # another answer (the README counts them for the shipped weights): the gallery would not show the mistake.
    outs, drawn = _predict(digit.as_sketch(), show_layers, note, compact)
    # The canvas shows the digit on show (the visitor's old drawing beside another digit's answer misled),
    # ready to be drawn on: a stroke then sends the canvas, preprocessed like any drawing.
    canvas = digit.as_drawing(CANVAS)
    shown = {"background": canvas, "layers": [], "composite": canvas}
    return (*outs, explain_remembered(drawn), gr.Tabs(selected="draw"), shown, drawn, note)


def relayout_remembered(drawn, note: str, show_layers: bool, compact: bool = False):
    """The subject on show drawn again, as it is (note kept): for a window that crossed the phone width."""
    return _predict(drawn, show_layers, note, compact)[0]


def compact_layout(width) -> bool:
    """Whether a browser window this wide (CSS pixels) gets the grids laid out for a phone."""
    try:
        return 0 < float(width) < COMPACT_BELOW
    except (TypeError, ValueError):
        return False


def checked_before_decoding(preprocess):
    """A sketchpad's preprocess that first checks each uploaded image's header (nothing decoded yet).

    Gradio decodes the canvas (or an API client's file) before predict runs: a file over Pillow's bomb
    limit (a 45 KB 1-bit PNG of 20000x10000 px) gave a bare server error instead of our message, and
    one under it (up to 179 Mpx) was decoded in full before our 64 Mpx check could refuse it. (Wrapped,
    not subclassed: Gradio writes a .pyi stub beside any module that subclasses a component.)
    """
    def checked(payload):
        try:
            for file in ((payload.background, payload.composite, *(payload.layers or [])) if payload else ()):
                if getattr(file, "path", None):
                    check_image_file(file.path)
            return preprocess(payload)
        except SketchError as e:
            error = str(e)
        except (OSError, SyntaxError, ValueError) as e:  # what Pillow raises for a file it cannot decode
            error = f"Could not read the image ({e})."
        return {"background": None, "layers": [], "composite": None, "error": error}
    return checked


def sketchpad() -> gr.Sketchpad:
    """The drawing canvas: MNIST's proportions at 10x, black ink, no layers or transforms."""
    pad = gr.Sketchpad(
        label="Draw here", elem_id="sketchpad", type="numpy", image_mode="RGBA",
        canvas_size=(CANVAS, CANVAS), fixed_canvas=True, layers=False, transforms=(),
        brush=gr.Brush(default_size=BRUSH_RADIUS, colors=["#000000"], color_mode="fixed"),
    )
    pad.preprocess = checked_before_decoding(pad.preprocess)
    return pad


def _template_text(text: str) -> str:
    """text for IMAGE_TEMPLATE: HTML-escaped, and inert inside its JavaScript template literal."""
    return html.escape(text).replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")


def image_view(label: str, elem_id: str, placeholder: str, show_label: bool = True) -> gr.HTML:
    """An output that shows one PNG data URL (or the placeholder), framed like gr.Image; the label names it in the API."""
    template = IMAGE_TEMPLATE.replace("ALT", _template_text(label)).replace("PLACEHOLDER", _template_text(placeholder))
    return gr.HTML(label=label, show_label=show_label, container=True, padding=show_label,
                   elem_id=elem_id, html_template=template, js_on_load=None)


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
  // Gradio gives the example digits alt="": name each by the digit in its file name.
  const nameExamples = () => {
    for (const img of document.querySelectorAll('#examples img:not([alt*="digit"])')) {
      const digit = (img.getAttribute('src') || '').match(/digit(\\d)/);
      if (digit) img.alt = `MNIST test digit ${digit[1]} (example)`;
    }
  };
  const tick = () => { ensureBrush(); nameExamples(); };
  tick();
  setInterval(tick, 300);
}
"""

# The layout is chosen for the window's width when the page opens; a phone turned sideways (or a window
# resized) across COMPACT_BELOW gets the other one: the hidden #relayout button re-measures and redraws.
RELAYOUT_JS = """
() => {
  const isCompact = () => window.innerWidth > 0 && window.innerWidth < COMPACT_BELOW;
  let compact = isCompact(), timer = null;
  window.addEventListener('resize', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (isCompact() === compact) return;
      compact = isCompact();
      const button = document.querySelector('#relayout');
      if (button) button.click();
    }, 250);
  });
}
""".replace("COMPACT_BELOW", str(COMPACT_BELOW))

# After a click far from the answer (an example on a phone, the gallery on the Model tab), bring it into view.
SHOW_PREDICTION_JS = """
() => {
  const answer = document.querySelector('#prediction');
  const top = answer ? answer.getBoundingClientRect().top : 0;
  if (answer && (top < 0 || top > window.innerHeight - 120)) answer.scrollIntoView({block: 'start'});
}
"""

with gr.Blocks(title="mnist_net: how a 14k-parameter CNN reads your digit", delete_cache=DELETE_CACHE) as demo:
    gr.Markdown(
        "# How a 14,120-parameter CNN reads your digit\n"
        "Draw a digit. It is cropped, scaled to 20 px and centred in 28x28 the way MNIST was made, then run "
        "through four blocks of 3x3 convolutions with no fully connected layer (the assignment's network, "
        "trained to >= 99.4% on MNIST's test set)."
    )
    if MODEL_ERROR:
        gr.Markdown(f"> **The model could not be loaded.** {MODEL_ERROR}", elem_id="model-error")
    with gr.Tabs() as tabs:
        with gr.Tab("Draw", id="draw"):
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    sketch = sketchpad()
                    show_layers = gr.Checkbox(label="Also show every layer inside each block (conv, ReLU, BN, pool)",
                                              value=False)
                    # Beside the canvas, not under the feature maps: on a phone, a tap there left the canvas and
                    # the answer ~1000 px above the screen.
                    if EXAMPLES:
                        examples = gr.Examples(examples=[[str(p)] for p in EXAMPLES], inputs=[sketch],
                                               cache_examples=False, api_name=False,
                                               label="Real MNIST test digits (click one)", elem_id="examples")
                with gr.Column(scale=1, min_width=300):
                    label = gr.Label(num_top_classes=3, label="Prediction (top 3)", elem_id="prediction")
                    # Side by side where both fit at their own size (224 px), else one above the other: on a
                    # phone, side by side shrank each to 105 px and the saliency scale to ~4 px text.
                    with gr.Row():
                        with gr.Column(min_width=240):
                            seen = image_view("What the network sees (28x28)", "seen", "The 28x28 input appears here.")
                        with gr.Column(min_width=240):
                            why = image_view("Why (saliency of the prediction)", "saliency",
                                             "What raised and lowered the score appears here.")
            status = gr.Markdown(EMPTY_MESSAGE, elem_id="status", label="Status", show_label=False)
            gr.Markdown("**Why:** the gradient of the predicted class's score with respect to each input pixel "
                        "(SmoothGrad: averaged over 16 noisy copies); red pixels raise the score, blue lower it, "
                        "the bar under it gives the scale. **Feature maps:** each grid shows one block's channels "
                        "on one colour scale (dark = low, yellow = high; the bar under each grid gives the numbers).")
            block_images, layer_images = [], []
            # Rows of two, so that the blocks read in order, left to right (as columns they read 1, 3, 2, 4).
            for pair in (BLOCKS[:2], BLOCKS[2:]):
                with gr.Row():
                    for name in pair:
                        with gr.Column():
                            # Title as Markdown: an image label would cover the first channels' labels.
                            gr.Markdown(f"**{BLOCK_TITLES[name]}**")
                            block_images.append(image_view(f"{BLOCK_TITLES[name]} (feature maps)", f"{name}-maps",
                                                           "Draw a digit to see this block's feature maps.",
                                                           show_label=False))
            with gr.Accordion("Every layer of every block (tick the box under the canvas)", open=False) as every_layer:
                for name in BLOCKS:
                    layer_images.append(image_view(f"{name}, layer by layer", f"{name}-layers",
                                                   "Tick the box under the canvas to see each layer of this block."))

        outputs = [label, seen, *block_images, *layer_images, status]

        with gr.Tab("Model", id="model", elem_id="model-tab"):
            for problem in REPORT.problems:
                gr.Markdown(f"> {problem}")
            ev = REPORT.evaluation
            if ev:
                gr.Markdown(f"### Shipped weights on the 10,000 MNIST test digits\n`{ev['line']}`")
            if REPORT.metrics:
                m = REPORT.metrics
                acc_rows, loss_rows = curve_rows(m["history"])
                gr.Markdown(f"### Training run (recipe `{m['recipe']['name']}`, seed {m['args']['seed']}, "
                            f"{m['device']}): first epoch >= 99.4%: {m.get('first_epoch_at_99_4')}, "
                            f"best {m.get('best_accuracy')}% at epoch {m.get('best_epoch')}")
                with gr.Row():
                    gr.LinePlot(pd.DataFrame(acc_rows, columns=["epoch", "accuracy", "series"]), x="epoch",
                                y="accuracy", color="series", title="Test accuracy per epoch (99.4% line marked)",
                                elem_id="accuracy-plot", y_lim=[97.5, 100], min_width=PLOT_MIN_WIDTH)
                    gr.LinePlot(pd.DataFrame(loss_rows, columns=["epoch", "loss", "series"]), x="epoch", y="loss",
                                color="series", title="Loss per epoch", elem_id="loss-plot",
                                min_width=PLOT_MIN_WIDTH)
            gr.Markdown("### Architecture (the assignment's table; ReLUs are parameter-free and not listed)")
            if MODEL is not None:
                gr.Dataframe(pd.DataFrame(architecture_rows(MODEL),
                                          columns=["block", "layer", "type", "output", "params"]),
                             interactive=False, elem_id="architecture", max_height=400)
                gr.Markdown(f"Total trainable parameters: **{sum(r[4] for r in architecture_rows(MODEL)):,}**")
                gr.Markdown("### What the first layers learned")
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("conv1: the 12 learned 3x3 kernels (blue < 0 < red, one symmetric scale)")
                        gr.Image(conv1_kernels(MODEL), show_label=False, interactive=False, buttons=[],
                                 elem_id="kernels", height="auto", alt_text="conv1's 12 learned 3x3 kernels")
                    with gr.Column():
                        gr.Markdown("block1's 1x1 conv: how each of its 10 outputs mixes conv2's 20 channels")
                        gr.Image(one_by_one_mixing(MODEL), show_label=False, interactive=False, buttons=[],
                                 elem_id="mixing", height="auto",
                                 alt_text="How block1's 1x1 conv mixes conv2's 20 channels into 10")
            if ev:
                gr.Markdown("### Confusion matrix (rows: true digit, columns: predicted)")
                gr.Dataframe(pd.DataFrame([[str(d), *row] for d, row in enumerate(ev["confusion_matrix"])],
                                          columns=["true \\ predicted", *[str(d) for d in range(10)]]),
                             interactive=False, elem_id="confusion")
                shown = (f"The {len(GALLERY)}" if len(GALLERY) == len(REPORT.misclassified) else
                         f"The {len(GALLERY)} most confident of the {len(REPORT.misclassified):,}")
                gr.Markdown(f"### {shown} misclassified test digits "
                            "(true \u2192 predicted, confidence; click one to analyse it on the Draw tab)")
                gallery = gr.Gallery([(d.as_drawing(112), d.short_caption) for d in GALLERY],
                                     columns=8, height="auto", allow_preview=False, elem_id="misclassified",
                                     label="Misclassified test digits", show_label=False)
    demo.load(None, js=SELECT_BRUSH_JS)

    # The subject on show, as predict preprocessed it, and the note said before its status line. Explain
    # and the checkbox take it from here: sending the canvas again would make the browser export and
    # upload it a second time, and after a gallery click the canvas is not what is on show.
    drawn, note = gr.State(None), gr.State("")
    remembered = [drawn, note]
    # Set when the page has loaded, from the window's width, and again when the window crosses COMPACT_BELOW:
    # API clients keep the default (one row a block).
    compact, window_width = gr.State(False), gr.Number(visible=False)
    demo.load(compact_layout, inputs=[window_width], outputs=[compact], js="() => window.innerWidth",
              api_name=False, show_progress="hidden")
    demo.load(None, js=RELAYOUT_JS)
    relayout = gr.Button("Lay out for this window", visible="hidden", elem_id="relayout")
    relayout.click(compact_layout, inputs=[window_width], outputs=[compact], js="() => window.innerWidth",
                   api_name=False, show_progress="hidden", trigger_mode="always_last").then(
        relayout_remembered, inputs=[drawn, note, show_layers, compact], outputs=outputs, api_name=False,
        show_progress="hidden", **MODEL_QUEUE)
    sketch.change(predict_and_remember, inputs=[sketch, show_layers, compact], outputs=[*outputs, *remembered],
                  api_name="predict", api_description=PREDICT_API, show_progress="hidden", trigger_mode="always_last",
                  **MODEL_QUEUE).then(
        explain_remembered, inputs=[drawn], outputs=[why], api_name=False, show_progress="hidden", **MODEL_QUEUE)
    show_layers.change(redo_remembered, inputs=[drawn, note, show_layers, compact], outputs=[*outputs, every_layer],
                       api_name=False, show_progress="hidden", **MODEL_QUEUE)
    if EXAMPLES:
        # Loading an example into the canvas does not fire its change event, so run predict after it.
        examples.load_input_event.then(predict_and_explain, inputs=[sketch, show_layers, compact],
                                       outputs=[*outputs, why, *remembered], api_name=False,
                                       show_progress="hidden", **MODEL_QUEUE).then(None, js=SHOW_PREDICTION_JS)
    if ev:
        # Scrolled to the prediction: the gallery is far down the Model tab, and the Draw tab opened at that
        # height showed only the feature maps, with the prediction and its note above the window.
        gallery.select(analyze_misclassified, inputs=[show_layers, compact], outputs=[*outputs, why, tabs, sketch, *remembered],
                       api_name=False, show_progress="hidden", **MODEL_QUEUE).then(
            None, js=SHOW_PREDICTION_JS)
    # API clients send the drawing itself: they have no session state to point at.
    gr.Button(visible=False).click(explain, inputs=[sketch], outputs=[why], api_name="explain",
                                   api_description=EXPLAIN_API, **MODEL_QUEUE)

demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)


if __name__ == "__main__":
    try:
        # Gradio reads GRADIO_SERVER_NAME (default 127.0.0.1) and GRADIO_SERVER_PORT (default 7860; the next
        # free port of the 100 after it when that one is taken, so a second copy of the app still starts).
        demo.launch(share=False, css=CSS)
    except OSError as e:  # no free port, or an address this machine does not have
        sys.exit(f"error: could not start the server: {e}")
