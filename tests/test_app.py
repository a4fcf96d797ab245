"""The app: predict function on drawn MNIST digits, a real Gradio server, a real browser."""
from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import missing
from mnist_net.data import MNIST_MEAN, MNIST_STD
from mnist_net.drawings import mnist_drawn
from mnist_net.training import evaluate
from mnist_net.data import MNISTTensors
from mnist_net.render import decode_data_url


def test_pipeline_accuracy_on_drawn_mnist_digits(app_module, test_set):
    n = 300
    digits = (test_set.images[:n, 0].numpy() * MNIST_STD + MNIST_MEAN).clip(0, 1)
    labels = test_set.labels[:n].numpy()
    direct = evaluate(app_module.MODEL, MNISTTensors(test_set.images[:n], test_set.labels[:n])).accuracy
    rng = np.random.default_rng(0)
    results = {}
    for style in ("dark-on-light", "light-on-transparent"):
        correct = 0
        for digit, label in zip(digits, labels):
            value = {"background": None, "layers": [], "composite": mnist_drawn(digit, rng, style)}
            label_out = app_module.predict(value)[1]
            correct += int(max(label_out, key=label_out.get)) == label
        results[style] = 100.0 * correct / n
    print(f"\n28x28 accuracy {direct:.2f}%, drawn pipeline accuracy {results}")
    for style, acc in results.items():  # at most one miss more than the 28x28 tensors (measured: 0 and 0)
        assert acc >= direct - 100.0 / n - 1e-9, (style, acc, direct)


def test_the_brush_draws_strokes_as_thick_as_mnist_strokes(app_module, test_set):
    from mnist_net.sketch import preprocess

    # Measured in Chromium: the sketchpad's stroke is twice its brush size wide (18 px at size 9, 28 at 14).
    width = 2 * app_module.SKETCHPAD["brush"].default_size
    canvas = np.full((app_module.CANVAS, app_module.CANVAS), 255, np.uint8)
    canvas[45:235, 140 - width // 2:140 + width // 2] = 0  # a "1" drawn 190 px tall
    drawn = (preprocess(canvas).pixels > 0.5).sum()
    ones = test_set.images[test_set.labels == 1, 0] * MNIST_STD + MNIST_MEAN
    mnist = float((ones > 0.5).sum((1, 2)).float().median())  # 59 px; radius 9 gave 40, i.e. 2 px wide, not 3
    assert abs(drawn / mnist - 1) < 0.2, (drawn, mnist)


def test_predict_outputs_everything_for_a_digit(app_module, test_set):
    digit = (test_set.images[0, 0].numpy() * MNIST_STD + MNIST_MEAN).clip(0, 1)
    canvas = mnist_drawn(digit, np.random.default_rng(1), "dark-on-light")
    kept, label, *urls, status = app_module.predict(canvas, True)
    assert len(urls) + 2 == len(app_module.outputs)
    # Images come back as PNG data URLs, shown inline by the page.
    seen, b1, b2, b3, b4, l1, l2, l3, l4 = (decode_data_url(u) for u in urls)
    assert max(label, key=label.get) == str(int(test_set.labels[0]))
    assert abs(sum(label.values()) - 1.0) < 1e-4
    assert seen.shape[0] == seen.shape[1] and seen.shape[0] >= 28 * 7
    for img in (b1, b2, b3, b4, l1, l2, l3, l4):
        assert img.ndim == 3 and img.shape[2] == 3 and img.std() > 0
    assert status.startswith(f"Prediction: **{int(test_set.labels[0])}**") and "runner-up" in status
    # The session keeps the preprocessed drawing: the saliency and the "every layer" box redo it, not the canvas.
    assert kept.pixels.shape == (28, 28)
    why = decode_data_url(app_module.saliency(kept))
    assert why.ndim == 3 and why.shape[1] >= 28 * 7 and why.std() > 0
    assert app_module.saliency(kept) == app_module.saliency(canvas)
    assert app_module.predict(kept, True)[1:] == (label, *urls, status)
    assert app_module.predict(canvas)[7:11] == (None,) * 4  # the layers only when asked for


def test_one_layout_shows_every_grid_at_its_own_size_on_a_phone(app_module):
    # A phone's column is ~340 px: one row of 10 maps (524 px) was shrunk to 59%, its labels to 5-6 px.
    from mnist_net.render import grid_columns

    assert [grid_columns(c, 5) for c in (1, 5, 10, 12, 16, 20)] == [1, 5, 5, 4, 4, 5]  # rows as full as can be
    _, _, *urls, _ = app_module.predict(str(app_module.EXAMPLES[0]), True)
    widths = [decode_data_url(u).shape[1] for u in urls]
    assert all(w <= 270 for w in widths), widths  # the input view, the block grids and the layer stacks


def test_misclassified_digits_show_the_mistake_the_evaluation_recorded(app_module):
    import gradio as gr
    from mnist_net.inference import analyze

    wrong = app_module.REPORT.misclassified
    assert len(wrong) >= 10
    for digit in wrong:  # fed exactly as the evaluation fed them (through the canvas, some answer otherwise)
        result = analyze(app_module.MODEL, digit.as_sketch())
        assert result.prediction == digit.predicted, digit.caption
        assert abs(result.probabilities[digit.predicted] - digit.confidence) < 1e-3, digit.caption
    first = app_module.GALLERY[0]
    subject, canvas, tabs = app_module.pick_misclassified(gr.SelectData(None, {"index": 0, "value": None}))
    assert subject is first and tabs.selected == "draw"
    # The canvas shows the digit on show, not the visitor's last drawing.
    np.testing.assert_array_equal(canvas["composite"], first.as_drawing(app_module.CANVAS))
    kept, label, *images, status = app_module.predict(subject)
    assert kept is first and max(label, key=label.get) == str(first.predicted)
    assert status.startswith(f"Showing misclassified test digit {first.caption} (not your drawing). ")
    assert decode_data_url(app_module.saliency(kept)).std() > 0
    # The "every layer" box redoes the digit on show (not the canvas) and keeps its note.
    kept2, label2, *images2, status2 = app_module.predict(kept, True)
    assert kept2 is first and label2 == label and images2[:5] == images[:5] and status2 == status
    assert all(img is not None for img in images2[5:]) and all(img is None for img in images[5:])


def test_every_layer_of_a_block_is_drawn_at_one_scale(app_module):
    from mnist_net.inference import analyze

    result = analyze(app_module.MODEL, str(app_module.EXAMPLES[0]), with_layers=True)
    stack = result.layers["block1"]
    # The first map of each layer, found as the first non-white run under each title: conv1, relu, bn (26x26),
    # conv2, relu, bn (24x24), conv 1x1 (24x24), pool (12x12): one enlargement, 2x, for all of them.
    column = stack[:, 4 + 5]  # a pixel column inside every layer's first map (each grid starts at x = 4)
    coloured = (np.abs(column.astype(int) - 255).sum(axis=1) > 0) & (column.std(axis=1) > 0)
    edges = np.flatnonzero(np.diff(np.r_[0, coloured.astype(int), 0]))
    heights = sorted(set((edges[1::2] - edges[::2]).tolist()))
    assert {52, 48, 24} <= set(heights), heights


def test_api_explain_takes_the_drawing_itself(app_module, server, tmp_path, test_set):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    path = digit_file(tmp_path, test_set, 4, "black-on-white")
    value = {"background": None, "layers": [], "composite": handle_file(path)}
    # By the parameter names the README gives; the session's state is not among the outputs.
    assert len(client.predict(drawing=value, show_layers=False, api_name="/predict")) == len(app_module.outputs)
    img = client.predict(value, api_name="/explain")
    assert img == app_module.saliency(path)  # the saliency of the drawing it was sent
    # A path the caller names (not an upload) is never read.
    assert client.predict({"background": None, "layers": [], "composite": {"path": path}}, api_name="/explain") is None
    # "Use via API" names every output and describes both endpoints for callers, not with our docstrings.
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert sorted(api) == ["/classify", "/explain", "/predict"]
    assert [p["parameter_name"] for p in api["/predict"]["parameters"]] == ["drawing", "show_layers"]
    names = [r["label"] for r in api["/predict"]["returns"]]
    assert all(names) and len(set(names)) == len(names) == 11 and names[-1] == "Status", names
    assert [n for n in names if n.startswith("Block 1")] and "session" not in api["/predict"]["description"]
    assert api["/explain"]["description"].startswith("Saliency")


def file_paths(value) -> list[str]:
    """Every server-side file path inside a Gradio config or API result."""
    if isinstance(value, dict):
        own = [value["path"]] if isinstance(value.get("path"), str) and value.get("meta") else []
        return own + [p for v in value.values() for p in file_paths(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in file_paths(v)]
    return []


def test_cache_sweep_removes_stroke_files_and_keeps_the_page_whole(app_module, server, tmp_path, test_set):
    import httpx
    from gradio import route_utils
    from gradio_client import Client, handle_file

    assert app_module.demo.delete_cache == (15 * 60, 60 * 60)  # the README's: every 15 min, files over 1 h old
    client = Client(server, verbose=False, download_files=False)
    drawing = digit_file(tmp_path, test_set, 5, "black-on-white")
    value = {"background": None, "layers": [], "composite": handle_file(drawing)}
    result = client.predict(value, api_name="/predict")
    assert file_paths(result) == []  # the images come inline, as data URLs: nothing for the cache to keep
    # What a stroke still leaves: the drawing the client uploaded.
    uploaded = Path(drawing).read_bytes()
    stroke_files = [p for p in Path(app_module.demo.GRADIO_CACHE).rglob("*.png") if p.read_bytes() == uploaded]
    assert len(stroke_files) == 1
    # The sweep Gradio runs on DELETE_CACHE's schedule, with every file counted as old enough.
    route_utils.delete_files_created_by_app(app_module.demo, age=0)
    assert not any(Path(p).exists() for p in stroke_files)
    config = httpx.get(server + "config").json()
    static = [p for p in file_paths(config["components"]) if not p.startswith(("http://", "https://"))]
    assert len(static) >= 10  # examples, kernels, mixing matrix, misclassified gallery
    for path in static:
        assert httpx.get(f"{server}gradio_api/file={path}").status_code == 200, path
    after = client.predict(value, api_name="/predict")
    assert after[0]["label"] == str(int(test_set.labels[5]))


def test_empty_canvas_is_a_friendly_state(app_module):
    blank = {"background": None, "layers": [], "composite": np.full((280, 280, 4), 0, np.uint8)}
    out = app_module.predict(blank)
    assert out[:2] == (None, None) and "Draw a digit" in out[-1]  # nothing kept, no label
    assert app_module.predict(None)[-1] == app_module.EMPTY_MESSAGE
    assert app_module.saliency(None) is None


def brushed(strokes: list[list[tuple[float, float]]], scale: float) -> np.ndarray:
    """Strokes (points about the centre, for a digit ~175 px tall) drawn with the app's ~28 px brush at `scale`."""
    from PIL import ImageDraw

    image = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        points = [(140 + x * scale, 140 + y * scale) for x, y in stroke]
        draw.line(points, fill=0, width=28, joint="curve")
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - 14, y - 14, x + 14, y + 14), fill=0)
    return np.asarray(image)


def test_a_digit_drawn_small_is_told_to_be_drawn_larger(app_module):
    """With the ~28 px brush, an 8 some 100 px tall is mostly stroke: its loops fill, and it is flagged. Its strokes
    are thicker for its size than all but MNIST's thickest twentieth, so the answer says to draw it larger. Drawn full
    size it is read; a letter drawn full size is flagged with no such hint."""
    hint = "Its strokes are thick for its size, which fills a digit's loops: if it is one, try drawing it larger."
    small = app_module.predict(brushed(EIGHT, 0.45))[-1]
    assert "doesn't look like a digit" in small and hint in small, small
    assert app_module.predict(brushed(EIGHT, 1.0))[-1].startswith("Prediction: **8**")
    letter = app_module.predict(brushed(LETTER_H, 1.0))[-1]
    assert "doesn't look like a digit" in letter and hint not in letter, letter


def digit_file(tmp_path, test_set, index, style) -> str:
    digit = (test_set.images[index, 0].numpy() * MNIST_STD + MNIST_MEAN).clip(0, 1)
    ink = (digit * 255).astype(np.uint8)
    ink = np.asarray(Image.fromarray(ink).resize((200, 200), Image.BILINEAR))
    if style == "black-on-white":
        img = Image.fromarray(255 - ink)
    elif style == "white-on-transparent":
        img = Image.fromarray(np.dstack([np.full_like(ink, 255)] * 3 + [ink]), "RGBA")
    else:
        img = Image.fromarray(np.dstack([np.zeros_like(ink)] * 3 + [ink]), "RGBA")
    path = tmp_path / f"{index}-{style}.png"
    img.save(path)
    return str(path)


@pytest.mark.parametrize("style", ["black-on-white", "white-on-transparent", "black-on-transparent"])
def test_api_predict_through_a_real_server(server, tmp_path, test_set, style):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    for index in (0, 1, 2):
        result = client.predict({"background": None, "layers": [], "composite": handle_file(
            digit_file(tmp_path, test_set, index, style))}, api_name="/predict")
        assert result[0]["label"] == str(int(test_set.labels[index])), (style, index, result[0])


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if not path:
        missing("Chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-background-networking"])
        yield chromium
        chromium.close()


def open_app(browser, server, width: int, height: int = 1000):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": width, "height": height})
    # Not "networkidle": the app keeps session state, so Gradio holds a heartbeat stream open.
    page.goto(server, wait_until="load")
    canvas = page.locator("#sketchpad canvas").first
    expect(canvas).to_be_visible(timeout=20_000)
    # No clicking on any tool: a visitor draws the moment the page opens.
    expect(page.locator('#sketchpad button[aria-label="Brush"]')).to_have_class(re.compile("highlight"), timeout=10_000)
    return page, canvas


def draw(page, canvas, strokes: list[list[tuple[float, float]]]) -> None:
    """Mouse strokes on the canvas; points relative to its centre, in CSS pixels."""
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for stroke in strokes:
        page.mouse.move(cx + stroke[0][0], cy + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(cx + x, cy + y)
        page.mouse.up()


# A "7": a top bar, then a long diagonal down to the left; a "1": one vertical stroke. Corner points only: the
# sketchpad joins a stroke's points with straight lines, and each mouse move takes ~0.2 s in headless Chromium.
SEVEN = [[(-60, -80), (60, -80), (-15, 85)]]
ONE = [[(0, -90), (0, 90)]]
LETTER_H = [[(-55, -80), (-55, 80)], [(55, -80), (55, 80)], [(-55, 0), (55, 0)]]
FOUR = [[(20, -90), (-50, 30), (50, 30)], [(25, -40), (25, 90)]]
EIGHT = [[(0, 0), (-40, -40), (0, -85), (40, -40), (0, 0), (-45, 45), (0, 88), (45, 45), (0, 0)]]


def test_browser_draws_a_digit_and_sees_feature_maps(browser, server, tmp_path):
    from playwright.sync_api import expect

    page, canvas = open_app(browser, server, 1280)
    # The white paper stands out from the canvas around it, where a stroke draws nothing (it was white on white).
    page.wait_for_function("() => globalThis.__PIXI_APP__?.grey", timeout=10_000)
    pad = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("L"))
    h, w = pad.shape
    assert pad[h // 2, w // 2] == 255 and pad[8, w // 2] < 240 and pad[h // 2, w - 8] < 240, (pad[8, w // 2], w, h)
    # Before any drawing, each frame says what will appear in it (empty frames looked broken).
    expect(page.locator("#block1-maps")).to_contain_text("Draw a digit to see this block's feature maps.")
    expect(page.locator("#seen")).to_contain_text("The 28x28 input appears here.")
    draw(page, canvas, SEVEN)
    expect(page.locator("#status")).to_contain_text("Prediction: 7", timeout=20_000)
    expect(page.locator("#status")).not_to_contain_text("look like a digit")
    for name in ("block1", "block2", "block3", "block4"):
        img = page.locator(f"#{name}-maps img")
        expect(img).to_be_visible(timeout=10_000)
        assert img.evaluate("el => el.naturalWidth") > 100
    # The blocks read in order, left to right (as two columns they read 1, 3, 2, 4).
    boxes = [page.locator(f"#block{i}-maps").bounding_box() for i in (1, 2, 3, 4)]
    assert [b["x"] for b in boxes] == sorted(b["x"] for b in boxes) and max(b["y"] for b in boxes) < min(
        b["y"] + b["height"] for b in boxes), boxes  # at 1280 px, all four side by side
    expect(page.locator("#seen img")).to_be_visible()
    expect(page.locator("#saliency img")).to_be_visible(timeout=20_000)
    # Every image says what it shows (they had alt="").
    expect(page.locator("#block1-maps img")).to_have_attribute("alt", re.compile("^Block 1: conv"))
    expect(page.locator("#examples img").first).to_have_attribute("alt", "MNIST test digit 7 (example)")
    save_screenshot(page, tmp_path, "draw-tab.png")

    # Clear, then draw again straight away (Gradio leaves no tool selected after a clear): a "1".
    page.locator('#sketchpad button[aria-label="Clear canvas"]').click()
    expect(page.locator("#status")).to_contain_text("Draw a digit", timeout=20_000)
    expect(page.locator('#sketchpad button[aria-label="Brush"]')).to_have_class(re.compile("highlight"), timeout=10_000)
    draw(page, canvas, ONE)
    expect(page.locator("#status")).to_contain_text("Prediction: 1", timeout=20_000)

    # A letter: the answer says plainly that it is not a digit, and still shows what each block computed.
    page.locator('#sketchpad button[aria-label="Clear canvas"]').click()
    expect(page.locator("#status")).to_contain_text("Draw a digit", timeout=20_000)
    draw(page, canvas, LETTER_H)
    expect(page.locator("#status")).to_contain_text("This doesn't look like a digit. Closest:", timeout=20_000)
    expect(page.locator("#block4-maps img")).to_be_visible()
    save_screenshot(page, tmp_path, "draw-tab-not-a-digit.png")

    # Gradio exports a stroke's canvas slowly (a second or more on a busy machine): a Clear before that upload ended
    # showed the old drawing's answer again, over a blank canvas. Each upload the next stroke starts is held till then.
    held, holding = [], [True]
    page.route("**/upload*", lambda route: held.append(route) if holding[0] else route.continue_())
    draw(page, canvas, [[(-30, 60), (30, 60)]])
    page.wait_for_timeout(1000)
    assert held, "the stroke's canvas was never uploaded"
    holding[0] = False
    page.locator('#sketchpad button[aria-label="Clear canvas"]').click()
    expect(page.locator("#status")).to_contain_text("Draw a digit", timeout=20_000)
    for route in held:
        route.continue_()
    page.wait_for_timeout(3000)  # the stroke's answer, were it shown, came within a second of its upload ending
    expect(page.locator("#status")).to_contain_text("Draw a digit", timeout=1)

    # A tap, often a visitor's first stroke: a blob, not a confident 0.
    page.locator('#sketchpad button[aria-label="Clear canvas"]').click()
    expect(page.locator("#status")).to_contain_text("Draw a digit", timeout=20_000)
    expect(page.locator('#sketchpad button[aria-label="Brush"]')).to_have_class(re.compile("highlight"), timeout=10_000)
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#status")).to_contain_text("This doesn't look like a digit. Closest:", timeout=20_000)
    page.close()


def test_browser_digits_drawn_with_the_thinnest_brush_are_read(browser, server):
    """The sketchpad's brush size goes down to 1 px: a hairline, which the network read as a 1 (a 7 at 98%, a 4 at
    80%) until thin strokes were thickened to MNIST's."""
    from playwright.sync_api import expect

    page, canvas = open_app(browser, server, 1280)
    size = page.locator('#sketchpad button[aria-label="Brush Size"]')
    size.click()
    page.locator("#sketchpad input[type=range]").fill("1")
    size.click()
    for digit, strokes in (("7", SEVEN), ("4", FOUR)):
        page.locator('#sketchpad button[aria-label="Clear canvas"]').click()
        expect(page.locator("#status")).to_contain_text("Draw a digit", timeout=20_000)
        expect(page.locator('#sketchpad button[aria-label="Brush"]')).to_have_class(re.compile("highlight"))
        draw(page, canvas, strokes)
        expect(page.locator("#status")).to_contain_text(f"Prediction: {digit}", timeout=20_000)
    page.close()


def test_browser_examples_and_the_misclassified_gallery(app_module, browser, server, tmp_path):
    from playwright.sync_api import expect

    page, canvas = open_app(browser, server, 1280)
    # A real MNIST example (the first is a 7) loads into the canvas and is read at once.
    page.locator("#examples button").first.click()
    expect(page.locator("#status")).to_contain_text("Prediction: 7", timeout=20_000)
    expect(page.locator("#saliency img")).to_be_visible(timeout=20_000)

    # The Model tab: curves, architecture, kernels, confusion matrix, misclassified gallery.
    page.get_by_role("tab", name="Model").click()
    for sel in ("#accuracy-plot", "#loss-plot", "#architecture", "#kernels img", "#mixing img", "#confusion"):
        expect(page.locator(sel).first).to_be_visible(timeout=20_000)
    # The detector's section: method, threshold, measured rates, and its plot.
    expect(page.locator("#novelty")).to_contain_text("Threshold:", timeout=20_000)
    expect(page.locator("#novelty")).to_contain_text("letters, shapes, scribbles")
    expect(page.locator("#novelty-plot canvas, #novelty-plot svg").first).to_be_visible(timeout=20_000)
    gallery = page.locator("#misclassified img")
    gallery.first.scroll_into_view_if_needed()  # loaded lazily, below the fold
    expect(gallery.first).to_be_visible(timeout=20_000)
    assert gallery.count() == len(app_module.GALLERY) >= 10
    expect(page.locator("#accuracy-plot canvas, #accuracy-plot svg").first).to_be_visible(timeout=20_000)
    save_screenshot(page, tmp_path, "model-tab.png")

    # A misclassified digit is analysed on the Draw tab as the evaluation fed it. The last one sits lowest on
    # the page; the Draw tab then opens scrolled to the prediction.
    digit = app_module.GALLERY[-1]
    gallery.last.click()
    shown = f"misclassified test digit {digit.caption} (not your drawing). Prediction: {digit.predicted}"
    expect(page.locator("#status")).to_contain_text(shown, timeout=20_000)
    expect(page.locator("#status")).to_be_in_viewport(timeout=10_000)
    expect(page.locator("#saliency img")).to_be_visible()
    # The "every layer" box redoes what is on show (the test digit, not the canvas) and opens the layers.
    page.get_by_label(re.compile("Also show every layer")).check()
    expect(page.locator("#block1-layers img")).to_be_visible(timeout=20_000)
    expect(page.locator("#status")).to_contain_text(shown)
    # The canvas shows that digit (it kept the visitor's last drawing, the example 7, beside the answer) ...
    assert correlation(canvas_digit(canvas.screenshot()), digit.as_sketch().pixels) > 0.9
    # ... and drawing on it reads the canvas again, now as the visitor's drawing.
    draw(page, canvas, [[(-100, 100), (-95, 105)]])
    expect(page.locator("#status")).not_to_contain_text("not your drawing", timeout=20_000)
    expect(page.locator("#status")).to_contain_text("Prediction: ")
    page.close()


def test_browser_phone_shows_every_view_at_its_own_size(browser, server, tmp_path):
    from playwright.sync_api import expect

    page, canvas = open_app(browser, server, 390, 844)
    draw(page, canvas, SEVEN)
    expect(page.locator("#status")).to_contain_text("Prediction: 7", timeout=20_000)
    # The answer in words sits right under the canvas: on screen after a stroke, with no scrolling (under the
    # examples, it was below the screen's edge), its first line even where a browser's bars leave 664 px.
    expect(page.locator("#status")).to_be_in_viewport(ratio=1)
    assert page.locator("#status").bounding_box()["y"] + 24 < 664
    expect(page.locator("#saliency img")).to_be_visible(timeout=20_000)
    save_screenshot(page, tmp_path, "draw-tab-phone.png")
    page.get_by_label(re.compile("Also show every layer")).check()
    expect(page.locator("#block4-layers img")).to_be_visible(timeout=20_000)
    # Every view at its own size (not shrunk), and nothing wider than the screen.
    for name in ("seen", "saliency", *(f"block{i}-{kind}" for kind in ("maps", "layers") for i in (1, 2, 3, 4))):
        natural, shown, right = page.locator(f"#{name} img").evaluate(
            "e => [e.naturalWidth, e.getBoundingClientRect().width, e.getBoundingClientRect().right]")
        assert shown >= natural - 0.5 and right <= 390, (name, natural, shown, right)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The examples, under the answer on a phone, are one row of small digits (4 rows of large ones were 380 px) ...
    assert page.locator("#examples").bounding_box()["height"] < 100
    page.locator("#examples").scroll_into_view_if_needed()
    page.locator("#examples button").nth(1).click()  # a 2
    expect(page.locator("#status")).to_contain_text("Prediction: 2", timeout=20_000)
    # ... and the answer is on screen after a tap (under the feature maps, it was ~1000 px above the screen).
    expect(page.locator("#status")).to_be_in_viewport(timeout=10_000)
    # The Model tab: the curves stack and the gallery wraps instead of overflowing.
    page.get_by_role("tab", name="Model").click()
    page.locator("#misclassified").scroll_into_view_if_needed()  # its images load lazily, when in view
    expect(page.locator("#misclassified img").first).to_be_visible(timeout=20_000)
    assert page.locator("#misclassified .grid-container").evaluate("e => e.scrollWidth <= e.clientWidth")
    # Every digit shows whole: no scrolling inside the gallery, each caption below its digit.
    assert page.locator("#misclassified .grid-wrap").evaluate("e => e.scrollHeight <= e.clientHeight + 1")
    assert page.locator("#misclassified .thumbnail-item").first.evaluate(
        "e => e.querySelector('.caption-label').getBoundingClientRect().top"
        " >= e.querySelector('img').getBoundingClientRect().bottom - 1")
    assert page.locator("#accuracy-plot").evaluate("e => e.getBoundingClientRect().width") >= 300
    page.close()


def canvas_digit(shot: bytes) -> np.ndarray:
    """The 28x28 digit on a screenshot of the sketchpad's canvas: its centre, without the tool buttons."""
    from mnist_net.sketch import preprocess

    img = Image.open(io.BytesIO(shot)).convert("RGB")
    w, h = img.size
    side = int(h * 0.8)  # the drawing square is ~0.83 of the editor's height, the toolbar above it
    return preprocess(img.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))).pixels


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images' pixels (1: the same picture up to brightness and contrast)."""
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def save_screenshot(page, tmp_path: Path, name: str) -> None:
    """A full-page screenshot; with MNIST_NET_SCREENSHOT_DIR=docs, a small copy for the README (256 colours,
    at most 1000 px wide)."""
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    target = os.environ.get("MNIST_NET_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        img = Image.open(shot).convert("RGB")
        if img.width > 1000:
            img = img.resize((1000, round(img.height * 1000 / img.width)), Image.LANCZOS)
        # Octree keeps the colour bars' hues; median cut (the default) turned the saliency's blue-white-red purple.
        img.quantize(256, method=Image.Quantize.FASTOCTREE).save(Path(target) / name, optimize=True)


def test_png_data_urls_round_trip_exactly():
    from mnist_net.render import png_bytes, png_data_url

    rng = np.random.default_rng(0)
    for pixels in (rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8),   # RGB
                   rng.integers(0, 256, size=(17, 5), dtype=np.uint8),       # grey
                   np.zeros((1, 1, 3), np.uint8)):
        url = png_data_url(pixels)
        assert url.startswith("data:image/png;base64,")
        np.testing.assert_array_equal(decode_data_url(url), pixels)
        # Pillow checks every chunk's CRC when asked to verify the file.
        Image.open(io.BytesIO(png_bytes(pixels))).verify()
    flat = np.full((500, 500, 3), 200, np.uint8)
    assert len(png_bytes(flat)) < 10_000  # compressed: 750,000 bytes raw
    assert png_data_url(None) is None
    for bad in (np.zeros((4, 4), np.float32), np.zeros((4, 4, 4), np.uint8)):
        with pytest.raises(ValueError, match="uint8 array"):
            png_bytes(bad)
    with pytest.raises(ValueError, match="at least one pixel"):
        png_bytes(np.zeros((0, 5, 3), np.uint8))
    # A strided view (every other column) is written as the pixels it shows.
    view = rng.integers(0, 256, size=(6, 10, 3), dtype=np.uint8)[:, ::2]
    np.testing.assert_array_equal(decode_data_url(png_data_url(view)), view)
    with pytest.raises(ValueError, match="not a base64 image data URL"):
        decode_data_url("/tmp/gradio/image.png")


def test_every_event_that_runs_the_model_shares_one_concurrency_limit(app_module):
    # Gradio gives each handler its own concurrency group unless told otherwise, which would let strokes,
    # saliency, examples, the checkbox, the gallery and the API each run CONCURRENCY requests at once.
    names = ("predict", "saliency", "explain")
    model_fns = [f for f in app_module.demo.fns.values() if getattr(f.fn, "__name__", None) in names]
    assert {f.fn.__name__ for f in model_fns} == set(names)
    assert len(model_fns) >= 7  # stroke, checkbox, example and gallery predictions; 3 saliency; the API's explain
    assert {(f.concurrency_id, f.concurrency_limit) for f in model_fns} == {("model", app_module.CONCURRENCY)}
    assert app_module.demo._queue.max_size == app_module.QUEUE_SIZE
