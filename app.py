"""Draw a digit, watch the 14,120-parameter CNN read it: prediction, saliency and every block's feature maps.
The API (/predict, /explain, /classify): mnist_net.inference's PREDICT_API, EXPLAIN_API and CLASSIFY_API describe it."""
import os
import sys
from html import escape
from pathlib import Path

# Gradio parses GRADIO_SERVER_PORT while it is imported, with a bare int(): check it first.
_PORT = os.environ.get("GRADIO_SERVER_PORT", "7860")
if not (_PORT.isdigit() and 0 < int(_PORT) < 65536):
    sys.exit(f"error: GRADIO_SERVER_PORT must be a port number from 1 to 65535, got {_PORT!r}")

import gradio as gr  # noqa: E402

from mnist_net.checkpoint import WeightsError, load_model, served_weights  # noqa: E402
from mnist_net.explain import conv1_kernels, one_by_one_mixing  # noqa: E402
from mnist_net import novelty  # noqa: E402
from mnist_net.drawings import BRUSH, CANVAS  # noqa: E402
from mnist_net.inference import (BLOCK_TITLES, CLASSIFY_API, EXPLAIN_API, PREDICT_API, analyze,  # noqa: E402
                                 checked_before_decoding, classify_image, configure_for_serving, saliency_view,
                                 uploaded_drawing)
from mnist_net.render import png_data_url  # noqa: E402
from mnist_net.report import Misclassified, architecture_rows, curve_frames, load_report, training_summary  # noqa: E402
from mnist_net.sketch import SketchError  # noqa: E402

EXAMPLES = sorted((Path(__file__).resolve().parent / "examples").glob("*.png"))
WEIGHTS = served_weights()
# MNIST's proportions at 10x, black ink, no layers or transforms; bench/browser_latency.py times this pad alone too.
SKETCHPAD = dict(label="Draw here", elem_id="sketchpad", type="numpy", image_mode="RGBA", height=300,
                 canvas_size=(CANVAS, CANVAS), fixed_canvas=True, layers=False, transforms=(),
                 brush=gr.Brush(default_size=BRUSH // 2, colors=["#000000"], color_mode="fixed"))
# A prediction is a few ms of CPU: one limit shared by every model event (not one each), no more than the cores.
CONCURRENCY = max(1, min(4, os.cpu_count() or 1))
MODEL_QUEUE = {"concurrency_limit": CONCURRENCY, "concurrency_id": "model", "show_progress": "hidden"}
QUEUE_SIZE = 256
DELETE_CACHE = (15 * 60, 60 * 60)  # every 15 minutes, the files of requests over an hour old (each stroke's upload)
EMPTY_MESSAGE = "Draw a digit (0-9) on the canvas: the prediction updates after every stroke."
# Phones: the gallery's 8 columns overflowed, its captions hid the digits, the rates table broke words mid-word.
CSS = """
#misclassified .grid-container { grid-template-columns: repeat(auto-fill, minmax(100px, 1fr)) !important; }
#misclassified .grid-wrap { height: auto !important; max-height: none !important; }
#misclassified .thumbnail-item { aspect-ratio: auto !important; height: auto !important; }
#misclassified .caption-label { position: static !important; display: block; max-width: none; border: none;
  border-radius: 0; text-align: center; }
@media (max-width: 599px) {
  #examples .gallery { flex-wrap: nowrap !important; overflow-x: auto; }
  #examples .gallery-item { flex: 0 0 auto; width: 50px !important; height: 50px !important; }
  #examples .gallery-item .container { width: 48px !important; height: 48px !important; }
  #examples .gallery-item img { width: 44px !important; height: 44px !important; }
  #novelty table { display: block; overflow-x: auto; word-break: normal; overflow-wrap: normal; } }
"""
# Gradio 6.31's sketchpad opens (and clears) with no tool selected and its paper white on white; examples have alt="".
ON_LOAD_JS = """() => {
  const fix = () => {
    const px = globalThis.__PIXI_APP__;  // the light theme's canvas: grey off the paper, where strokes draw nothing
    if (px?.renderer && !px.grey) { px.renderer.background.color = '#e5e7eb'; px.render(); px.grey = 1; }
    const brush = document.querySelector('#sketchpad button[aria-label="Brush"]');
    if (brush && !document.querySelector(['Brush', 'Erase', 'Pan'].map(
        t => `#sketchpad button[aria-label="${t}"].highlight`).join(','))) brush.click();
    for (const img of document.querySelectorAll('#examples img[alt=""]')) {
      const d = img.src.match(/digit(\\d)/); if (d) img.alt = `MNIST test digit ${d[1]} (example)`;
    }
  };
  new MutationObserver(fix).observe(document.body, {subtree: true, childList: true, attributeFilter: ['class']}); fix();
  addEventListener('pointerdown', ({target: t}) => window.cleared = t.closest('#sketchpad [aria-label="Clear canvas"]')
    ? true : t.closest('#sketchpad canvas, #examples, #misclassified') ? false : window.cleared, true);
}"""
# Under load a stroke's canvas can reach the server after a later Clear (Gradio exports it slowly): cleared is blank.
BLANK_IF_CLEARED_JS = "(d, s) => [window.cleared ? {background: null, layers: [], composite: null} : d, s]"
# After a click far from the answer (an example on a phone, the gallery), bring it into view (scroll_to_output did not).
SHOW_PREDICTION_JS = """() => {
  const answer = document.querySelector('#status'), top = answer ? answer.getBoundingClientRect().top : 0;
  if (answer && (top < 0 || top > window.innerHeight - 120)) answer.scrollIntoView({block: 'start'});
}"""

configure_for_serving()
try:
    MODEL, MODEL_ERROR = load_model(WEIGHTS), None
except WeightsError as e:  # the app still starts, and says why it cannot predict
    MODEL, MODEL_ERROR = None, str(e)
DETECTOR = novelty.load(WEIGHTS)  # None: digits are read without the check
RATES = novelty.read_rates(WEIGHTS)
REPORT = load_report(WEIGHTS)
GALLERY = REPORT.misclassified  # all of the mistakes, or the 100 most confident (evaluate.GALLERY_SIZE)


def predict(drawing, show_layers: bool = False):
    """Everything the Draw tab shows for one drawing: the subject the session keeps, then the API's 11 outputs. drawing:
    a sketchpad value, an image, or what an earlier call kept: a `Sketch`, or a misclassified test digit, as is."""
    try:
        result = None if MODEL is None else analyze(MODEL, drawing, bool(show_layers), DETECTOR)
        status = EMPTY_MESSAGE if MODEL is not None else f"**The model could not be loaded.** {MODEL_ERROR}"
    except SketchError as e:
        result, status = None, f"**Could not read this image.** {e}"
    if result is None:  # nothing kept, no label, no images: just the status line
        return (None,) + (None,) * (len(outputs) - 1) + (status,)  # no subject, and every output but the status
    test_digit = isinstance(drawing, Misclassified)
    note = f"Showing misclassified test digit {drawing.caption} (not your drawing). " if test_digit else ""
    return (drawing if test_digit else result.sketch, result.confidences(),
            *(png_data_url(img) for img in result.images()), note + result.status())


def saliency(subject) -> str | None:
    """The saliency image of what `predict` kept, or of any drawing (None: nothing to explain)."""
    try:
        view = None if subject is None or MODEL is None else saliency_view(MODEL, subject)
    except SketchError:  # predict says why
        return None
    return None if view is None else png_data_url(view[0])


def explain(drawing: dict) -> str | None:
    """/explain: the saliency of an API client's drawing."""
    return saliency(uploaded_drawing(drawing))


def classify(image: dict) -> dict:
    """/classify: one plain image (an upload) -> the digit, the probabilities, and whether it looks like a digit."""
    return classify_image(MODEL, DETECTOR, uploaded_drawing({"composite": image})["composite"], WEIGHTS, MODEL_ERROR)


def pick_misclassified(evt: gr.SelectData):
    """A gallery click: that test digit becomes the subject and goes on the canvas (to draw on); the Draw tab opens."""
    canvas = GALLERY[evt.index].as_drawing(CANVAS)
    return GALLERY[evt.index], {"background": canvas, "layers": [], "composite": canvas}, gr.Tabs(selected="draw")


def image_view(label: str, elem_id: str, placeholder="", title=None, min_width=280, value=None) -> gr.HTML:
    """A PNG data URL as an <img> (alt: the label), else the placeholder (gr.Image cached each: ~66 ms a stroke)."""
    with gr.Column(min_width=min_width):
        if title:  # as Markdown above the image: as the HTML's label it hid the maps' labels
            gr.Markdown(f"**{title}**")
        return gr.HTML(value, label=label, show_label=not title, container=True, padding=not title, elem_id=elem_id,
                       js_on_load=None, html_template=(
                           f'${{value ? `<img src="${{value}}" alt="{escape(label)}" style="max-width:100%;'
                           f'height:auto;display:block;margin:0 auto">` : `<p style="opacity:0.6;text-align:center;'
                           f'margin:1.5em 0.5em">{escape(placeholder)}</p>`}}'))


with gr.Blocks(title="mnist_net: how a 14k-parameter CNN reads your digit", delete_cache=DELETE_CACHE) as demo:
    gr.Markdown("# How a 14,120-parameter CNN reads your digit\nDraw a digit. It is cropped, scaled to 20 px and "
                "centred in 28x28 the way MNIST was made (thin lines thickened), then run through four blocks of 3x3 "
                "convolutions with no fully connected layer (the assignment's network, >= 99.4% on MNIST's test set).")
    if MODEL_ERROR:
        gr.Markdown(f"> **The model could not be loaded.** {MODEL_ERROR}", elem_id="model-error")
    with gr.Tabs() as tabs:
        with gr.Tab("Draw", id="draw"):
            with gr.Row():  # the canvas, then the answer in words: where a phone stacks the columns, it is in view
                with gr.Column(min_width=300):
                    sketch = gr.Sketchpad(**SKETCHPAD)
                    sketch.preprocess = checked_before_decoding(sketch.preprocess)  # uploads checked before decoding
                with gr.Column(min_width=300):
                    status = gr.Markdown(EMPTY_MESSAGE, elem_id="status", label="Status", show_label=False)
                    label = gr.Label(num_top_classes=3, label="Softmax: top 3", elem_id="prediction")
            with gr.Row():
                with gr.Column(min_width=300):
                    show_layers = gr.Checkbox(label="Also show every layer inside each block (conv, ReLU, BN, pool)")
                    if EXAMPLES:  # near the canvas: under the maps, a tap on a phone left the answer far above
                        examples = gr.Examples([[str(p)] for p in EXAMPLES], inputs=[sketch], api_name=False,
                                               label="Real MNIST test digits (click one)", elem_id="examples")
                with gr.Column(min_width=300):
                    with gr.Row():  # side by side where both fit at their own size (224 px), else stacked
                        seen = image_view("What the network sees (28x28)", "seen", "The 28x28 input appears here.",
                                          min_width=240)
                        why = image_view("Why (saliency of the prediction)", "saliency",
                                         "What raised and lowered the score appears here.", min_width=240)
            gr.Markdown("**Why:** the gradient of the predicted class's score with respect to each input pixel "
                        "(SmoothGrad: averaged over 16 noisy copies); red pixels raise the score, blue lower it, "
                        "the bar under it gives the scale. **Feature maps:** each grid shows one block's channels "
                        "on one colour scale (dark = low, yellow = high; the bar under each grid gives the numbers).")
            with gr.Row():  # in order, left to right, as many to a row as fit at their own size
                block_images = [image_view(f"{title} (feature maps)", f"{name}-maps",
                                           "Draw a digit to see this block's feature maps.", title)
                                for name, title in BLOCK_TITLES.items()]
            with gr.Accordion("Every layer of every block (tick the box under the canvas)", open=False) as every_layer:
                with gr.Row():
                    layer_images = [image_view(f"{name}, layer by layer", f"{name}-layers",
                                               "Draw with the box under the canvas ticked to see each layer.")
                                    for name in BLOCK_TITLES]
        outputs = [label, seen, *block_images, *layer_images, status]
        with gr.Tab("Model", id="model", elem_id="model-tab"):
            for problem in REPORT.problems:
                gr.Markdown(f"> {problem}")
            if ev := REPORT.evaluation:
                gr.Markdown(f"### `{WEIGHTS.name}` on the 10,000 MNIST test digits\n`{ev['line']}`")
            if m := REPORT.metrics:
                gr.Markdown(f"### {training_summary(m)}")
                accuracy, loss = curve_frames(m["history"])
                with gr.Row():  # min_width: side by side on a phone, the accuracy plot had no room left to draw in
                    gr.LinePlot(accuracy, x="epoch", y="accuracy", color="series", y_lim=[97.5, 100], min_width=320,
                                title="Test accuracy per epoch", elem_id="accuracy-plot")
                    gr.LinePlot(loss, x="epoch", y="loss", color="series", title="Loss per epoch", elem_id="loss-plot",
                                min_width=320)
            gr.Markdown(f"### When it is not a digit\n{novelty.summary(WEIGHTS, DETECTOR, RATES)}", elem_id="novelty")
            if DETECTOR is not None and RATES:  # a short title: a plot's title does not wrap on a phone
                gr.LinePlot(novelty.histogram_frame(RATES, float(DETECTOR.threshold)), x="novelty", y="share",
                            color="set", min_width=320, elem_id="novelty-plot", color_map=novelty.PLOT_COLOURS,
                            colors_in_legend=list(novelty.PLOT_COLOURS)[:-1], x_title="novelty (beyond ±30: at ±30)",
                            title="% of each set by novelty; orange: threshold")
            if MODEL is not None:
                rows = architecture_rows(MODEL)
                gr.Markdown(f"### Architecture: {sum(r[4] for r in rows):,} trainable parameters (the assignment's "
                            "table, whose model applied ReLU as a function: no ReLU rows)")
                gr.Dataframe(rows, headers=["block", "layer", "type", "output", "params"], interactive=False,
                             elem_id="architecture", max_height=400)
                gr.Markdown("### What the first layers learned")
                with gr.Row():
                    image_view("conv1's 12 learned 3x3 kernels", "kernels", value=png_data_url(conv1_kernels(MODEL)),
                               title="conv1: the 12 learned 3x3 kernels (blue < 0 < red, one symmetric scale)")
                    image_view("How block1's 1x1 conv mixes conv2's 20 channels into 10", "mixing",
                               value=png_data_url(one_by_one_mixing(MODEL)),
                               title="block1's 1x1 conv: how each of its 10 outputs mixes conv2's 20 channels")
            if ev:
                gr.Markdown("### Confusion matrix (rows: true digit, columns: predicted)")
                gr.Dataframe([[str(d), *row] for d, row in enumerate(ev["confusion_matrix"])], interactive=False,
                             headers=["true \\ predicted", *map(str, range(10))], elem_id="confusion")
                n, total = len(GALLERY), ev["total"] - ev["correct"]
                gr.Markdown(f"### The {n}{'' if n == total else f' most confident of the {total:,}'} misclassified "
                            "test digits (true \u2192 predicted, confidence; click one to analyse it on the Draw tab)")
                gallery = gr.Gallery([(d.as_drawing(112), d.short_caption) for d in GALLERY], columns=8,
                                     height="auto", allow_preview=False, elem_id="misclassified",
                                     label="Misclassified test digits", show_label=False)

    # The subject on show, as predict kept it: the checkbox and saliency redo it without re-uploading the canvas.
    subject = gr.State(None)
    shown = {"fn": predict, "outputs": [subject, *outputs], "api_name": False, **MODEL_QUEUE}
    explained = {"fn": saliency, "inputs": subject, "outputs": why, "api_name": False, **MODEL_QUEUE}  # after: no delay

    demo.load(None, js=ON_LOAD_JS)
    sketch.change(inputs=[sketch, show_layers], **{**shown, "api_name": "predict"}, api_description=PREDICT_API,
                  trigger_mode="always_last", js=BLANK_IF_CLEARED_JS).then(**explained)
    show_layers.change(inputs=[subject, show_layers], **shown)
    show_layers.change(lambda on: gr.Accordion(open=on), show_layers, every_layer, api_name=False,
                       show_progress="hidden")
    if EXAMPLES:  # loading an example into the canvas does not fire its change event
        examples.load_input_event.then(inputs=[sketch, show_layers], **shown).then(**explained).then(
            None, js=SHOW_PREDICTION_JS)
    if ev:
        gallery.select(pick_misclassified, None, [subject, sketch, tabs], api_name=False, show_progress="hidden").then(
            inputs=[subject, show_layers], **shown).then(**explained).then(None, js=SHOW_PREDICTION_JS)
    for fn, name, about in ((explain, "explain", EXPLAIN_API), (classify, "classify", CLASSIFY_API)):
        gr.api(fn, api_name=name, api_description=about, concurrency_limit=CONCURRENCY, concurrency_id="model")

demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)

if __name__ == "__main__":
    try:  # GRADIO_SERVER_NAME/PORT as Gradio reads them; a taken port moves on to the next free one
        demo.launch(css=CSS, show_error=True)  # show_error: a client's malformed input is named, not a bare error
    except OSError as e:  # no free port, or an address this machine does not have
        sys.exit(f"error: could not start the server: {e}")
