"""The app: predict function on drawn MNIST digits, a real Gradio server, a real browser."""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import missing
from mnist_net.data import MNIST_MEAN, MNIST_STD
from mnist_net.training import evaluate
from mnist_net.data import MNISTTensors
from mnist_net.render import decode_data_url


def draw_like_a_user(digit: np.ndarray, rng: np.random.Generator, style: str) -> np.ndarray:
    """A 28x28 MNIST digit (0..1, white on black) enlarged onto a big canvas at a random size and place."""
    size = int(rng.integers(120, 400))
    big = np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR))
    h, w = 480, 640
    y, x = int(rng.integers(0, h - size)), int(rng.integers(0, w - size))
    ink = np.zeros((h, w), np.uint8)
    ink[y:y + size, x:x + size] = big
    if style == "dark-on-light":
        return np.dstack([255 - ink] * 3)
    return np.dstack([np.full_like(ink, 255)] * 3 + [ink])  # light ink on a transparent canvas


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
            value = {"background": None, "layers": [], "composite": draw_like_a_user(digit, rng, style)}
            out = app_module.predict(value)
            correct += int(max(out[0], key=out[0].get)) == label
        results[style] = 100.0 * correct / n
    print(f"\n28x28 accuracy {direct:.2f}%, drawn pipeline accuracy {results}")
    for style, acc in results.items():  # at most one miss more than the 28x28 tensors (measured: 0 and 0)
        assert acc >= direct - 100.0 / n - 1e-9, (style, acc, direct)


def test_the_brush_draws_strokes_as_thick_as_mnist_strokes(app_module, test_set):
    from mnist_net.sketch import preprocess

    # Measured in Chromium: the sketchpad's stroke is 2 x BRUSH_RADIUS px wide (18 px at radius 9, 28 at 14).
    width = 2 * app_module.BRUSH_RADIUS
    canvas = np.full((app_module.CANVAS, app_module.CANVAS), 255, np.uint8)
    canvas[45:235, 140 - width // 2:140 + width // 2] = 0  # a "1" drawn 190 px tall
    drawn = (preprocess(canvas).pixels > 0.5).sum()
    ones = test_set.images[test_set.labels == 1, 0] * MNIST_STD + MNIST_MEAN
    mnist = float((ones > 0.5).sum((1, 2)).float().median())  # 59 px; radius 9 gave 40, i.e. 2 px wide, not 3
    assert abs(drawn / mnist - 1) < 0.2, (drawn, mnist)


def test_predict_outputs_everything_for_a_digit(app_module, test_set):
    digit = (test_set.images[0, 0].numpy() * MNIST_STD + MNIST_MEAN).clip(0, 1)
    canvas = draw_like_a_user(digit, np.random.default_rng(1), "dark-on-light")
    label, *urls, status = app_module.predict(canvas, True)
    # Images come back as PNG data URLs, shown inline by the page.
    seen, b1, b2, b3, b4, l1, l2, l3, l4 = (decode_data_url(u) for u in urls)
    why = decode_data_url(app_module.explain(canvas))
    assert why.ndim == 3 and why.shape[1] >= 28 * 7 and why.std() > 0
    assert max(label, key=label.get) == str(int(test_set.labels[0]))
    assert abs(sum(label.values()) - 1.0) < 1e-4
    assert seen.shape[0] == seen.shape[1] and seen.shape[0] >= 28 * 7
    for img in (b1, b2, b3, b4, l1, l2, l3, l4):
        assert img.ndim == 3 and img.shape[2] == 3 and img.std() > 0
    assert "Prediction" in status and "runner-up" in status and "scale" in status


def test_the_ui_explains_the_drawing_predict_kept(app_module, test_set):
    digit = (test_set.images[3, 0].numpy() * MNIST_STD + MNIST_MEAN).clip(0, 1)
    canvas = draw_like_a_user(digit, np.random.default_rng(2), "light-on-transparent")
    *outs, drawn, note = app_module.predict_and_remember(canvas)
    assert outs == list(app_module.predict(canvas)) and note == ""
    assert drawn is not None and drawn.pixels.shape == (28, 28)
    assert app_module.explain_remembered(drawn) == app_module.explain(canvas)
    blank = {"background": None, "layers": [], "composite": np.zeros((280, 280, 4), np.uint8)}
    assert app_module.predict_and_remember(blank)[-2] is None
    assert app_module.explain_remembered(None) is None


def test_misclassified_digits_show_the_mistake_the_evaluation_recorded(app_module):
    import gradio as gr
    from mnist_net.inference import analyze

    wrong = app_module.REPORT.misclassified
    assert len(wrong) >= 10
    for digit in wrong:  # fed exactly as the evaluation fed them (through the canvas, some answer otherwise)
        result = analyze(app_module.MODEL, digit.as_sketch())
        assert result.prediction == digit.predicted, digit.caption
        assert abs(result.probabilities[digit.predicted] - digit.confidence) < 1e-3, digit.caption
    first = wrong[0]
    label, *images, status, why, tabs, canvas, drawn, note = app_module.analyze_misclassified(
        False, False, gr.SelectData(None, {"index": 0, "value": None}))
    assert max(label, key=label.get) == str(first.predicted) and why is not None
    # The canvas shows the digit on show, not the visitor's last drawing.
    np.testing.assert_array_equal(canvas["composite"], first.as_drawing(app_module.CANVAS))
    assert first.caption in note and status.startswith(note)
    np.testing.assert_array_equal(drawn.pixels, first.pixels / np.float32(255))
    # The "every layer" box redoes the digit on show (not the canvas), keeps its note, opens the layers.
    label2, *images2, status2, accordion = app_module.redo_remembered(drawn, note, True)
    assert label2 == label and images2[:5] == images[:5] and status2 == status
    assert all(img is not None for img in images2[5:]) and all(img is None for img in images[5:])
    assert accordion.open is True
    assert app_module.redo_remembered(drawn, note, False)[-1].open is False
    assert app_module.redo_remembered(None, "", True)[-2] == app_module.EMPTY_MESSAGE


def test_narrow_windows_get_grids_at_most_five_maps_wide(app_module):
    from mnist_net.inference import as_sketch
    from mnist_net.render import grid_columns

    assert [grid_columns(c) for c in (10, 12, 16, 20)] == [10, 6, 8, 10]
    assert [grid_columns(c, 5) for c in (1, 5, 10, 12, 16, 20)] == [1, 5, 5, 4, 4, 5]  # rows as full as can be
    assert app_module.compact_layout(390) is True
    assert [app_module.compact_layout(w) for w in (1400, 600, 0, None, "wide", float("nan"))] == [False] * 6
    example = str(app_module.EXAMPLES[0])
    wide, compact = (app_module._predict(example, True, compact=c)[0] for c in (False, True))
    assert wide[0] == compact[0] and wide[-1] == compact[-1]  # same answer, same status
    for i, (a, b) in enumerate(zip(wide[2:10], compact[2:10])):  # block grids, then the layer stacks
        a, b = decode_data_url(a), decode_data_url(b)
        assert a.shape[1] > 330 and b.shape[1] <= 270, (i, a.shape, b.shape)  # fits a phone at its own size
    # A phone's session keeps its layout for every event: strokes, the box, examples, the gallery.
    assert app_module.redo_remembered(as_sketch(example), "", False, True)[2] == compact[2]
    # A window that crosses the phone width redraws the subject on show in the other layout, note kept.
    relaid = app_module.relayout_remembered(as_sketch(example), "Showing test digit #1. ", True, True)
    assert relaid[2] == compact[2] and relaid[-1].startswith("Showing test digit #1. ")


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


def test_examples_follow_the_every_layer_box(app_module):
    example = str(app_module.EXAMPLES[0])
    *outs, why, drawn, note = app_module.predict_and_explain(example, True)
    assert outs == list(app_module.predict(example, True)) and note == ""
    assert all(img is not None for img in outs[6:10]) and why is not None and drawn is not None


def test_api_explain_takes_the_drawing_itself(app_module, server, tmp_path, test_set):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    value = {"background": None, "layers": [], "composite": handle_file(
        digit_file(tmp_path, test_set, 4, "black-on-white"))}
    # /predict answers exactly what the UI's event computes, without the session-only state.
    assert len(client.predict(value, api_name="/predict")) == 1 + app_module.N_IMAGES + 1
    img = decode_data_url(client.predict(value, api_name="/explain"))
    assert img.ndim == 3 and img.shape[1] >= 28 * 7 and img.std() > 0
    # "Use via API" names every output and describes both endpoints for callers, not with our docstrings.
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    names = [r["label"] for r in api["/predict"]["returns"]]
    assert all(names) and len(set(names)) == len(names) and names[-1] == "Status", names
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
    assert out[0] is None and "Draw a digit" in out[-1]
    assert app_module.predict(None)[-1] == app_module.EMPTY_MESSAGE


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


def test_browser_draws_a_digit_and_sees_feature_maps(app_module, server, tmp_path):
    path = chromium_path()
    if not path:
        missing("Chromium not installed (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        # Not "networkidle": the app keeps session state, so Gradio holds a heartbeat stream open.
        page.goto(server, wait_until="load")
        canvas = page.locator("#sketchpad canvas").first
        expect(canvas).to_be_visible(timeout=20_000)
        # The button the page's own script clicks when the window crosses the phone width is in the page,
        # but not in the accessibility tree: a screen reader must not offer it.
        expect(page.locator("#relayout")).to_be_attached()
        expect(page.get_by_role("button", name="Lay out for this window")).to_have_count(0)
        expect(page.get_by_role("button", name="Lay out for this window", include_hidden=True)).to_have_count(1)
        # No clicking on any tool: a visitor draws the moment the page opens.
        expect(page.locator('#sketchpad button[aria-label="Brush"]')).to_have_class(
            __import__("re").compile("highlight"), timeout=10_000)
        # Before any drawing, each frame says what will appear in it (empty frames looked broken).
        expect(page.locator("#block1-maps")).to_contain_text("Draw a digit to see this block's feature maps.")
        expect(page.locator("#seen")).to_contain_text("The 28x28 input appears here.")
        box = canvas.bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        # A "7": a top bar, then a long diagonal down to the left.
        page.mouse.move(cx - 60, cy - 80)
        page.mouse.down()
        for i in range(1, 11):
            page.mouse.move(cx - 60 + 12 * i, cy - 80)
        for i in range(1, 16):
            page.mouse.move(cx + 60 - 5 * i, cy - 80 + 11 * i)
        page.mouse.up()
        expect(page.locator("#status")).to_contain_text("Prediction: 7", timeout=20_000)
        for name in ("block1", "block2", "block3", "block4"):
            img = page.locator(f"#{name}-maps img")
            expect(img).to_be_visible(timeout=10_000)
            assert img.evaluate("el => el.naturalWidth") > 100
        # The blocks read in order: 1 | 2 in a row, 3 | 4 under them (as two columns they read 1, 3, 2, 4).
        b1, b2, b3, b4 = (page.locator(f"#block{i}-maps").bounding_box() for i in (1, 2, 3, 4))
        assert b2["x"] > b1["x"] + b1["width"] / 2 and abs(b2["y"] - b1["y"]) < 5, (b1, b2)
        assert b3["y"] > max(b1["y"] + b1["height"], b2["y"] + b2["height"]) and b4["x"] > b3["x"], (b3, b4)
        expect(page.locator("#seen img")).to_be_visible()
        expect(page.locator("#saliency img")).to_be_visible(timeout=20_000)
        shot = tmp_path / "app-drawn-7.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        save_screenshot(shot, "draw-tab.png")

        # A window narrowed to a phone's width (a phone turned upright) gets the phone's grids, on the
        # drawing already there, and widened again the wide ones (the layout used to be fixed at page load).
        natural_width = "() => document.querySelector('#block1-maps img').naturalWidth"
        wide_width = page.evaluate(natural_width)
        page.set_viewport_size({"width": 400, "height": 1300})
        page.wait_for_function(f"() => ({natural_width})() < {wide_width}", timeout=20_000)
        expect(page.locator("#status")).to_contain_text("Prediction: 7")
        page.set_viewport_size({"width": 1400, "height": 1300})
        page.wait_for_function(f"() => ({natural_width})() === {wide_width}", timeout=20_000)

        # Clear, then draw again straight away: a "1".
        page.locator('#sketchpad button[aria-label="Clear canvas"]').click()
        expect(page.locator("#status")).to_contain_text("Draw a digit", timeout=20_000)
        page.mouse.move(cx, cy - 90)
        page.mouse.down()
        for i in range(1, 19):
            page.mouse.move(cx, cy - 90 + 10 * i)
        page.mouse.up()
        expect(page.locator("#status")).to_contain_text("Prediction: 1", timeout=20_000)

        # A real MNIST example (the first is a 7) loads into the canvas and is read at once.
        page.locator("#examples button").first.click()
        expect(page.locator("#status")).to_contain_text("Prediction: 7", timeout=20_000)
        expect(page.locator("#saliency img")).to_be_visible(timeout=20_000)

        # The Model tab: curves, architecture, kernels, confusion matrix, misclassified gallery.
        page.get_by_role("tab", name="Model").click()
        for sel in ("#accuracy-plot", "#loss-plot", "#architecture", "#kernels img", "#confusion"):
            expect(page.locator(sel).first).to_be_visible(timeout=20_000)
        gallery = page.locator("#misclassified img")
        expect(gallery.first).to_be_visible(timeout=20_000)
        assert gallery.count() >= 10
        expect(page.locator("#accuracy-plot canvas, #accuracy-plot svg").first).to_be_visible(timeout=20_000)
        shot = tmp_path / "app-model-tab.png"
        page.screenshot(path=str(shot), full_page=True)
        save_screenshot(shot, "model-tab.png")

        # Try the hard ones: a misclassified digit goes through the same pipeline on the Draw tab.
        # The last digit sits lowest on the page; the Draw tab then opens scrolled to the prediction.
        first = app_module.REPORT.misclassified[-1]
        gallery.last.click()
        expect(page.locator("#status")).to_contain_text(
            f"misclassified test digit {first.caption} (not your drawing). Prediction: {first.predicted}",
            timeout=20_000)
        expect(page.locator("#prediction")).to_be_in_viewport(timeout=10_000)
        expect(page.locator("#block1-maps img")).to_be_visible()
        # The "every layer" box redoes what is on show (the test digit, not the canvas) and opens the layers.
        page.get_by_label(__import__("re").compile("Also show every layer")).check()
        expect(page.locator("#block1-layers img")).to_be_visible(timeout=20_000)
        expect(page.locator("#status")).to_contain_text(f"{first.caption} (not your drawing). Prediction: "
                                                        f"{first.predicted}")
        # The canvas shows that digit (it kept the visitor's last drawing, the example 7, beside the answer) ...
        shown = canvas_digit(canvas.screenshot())
        assert correlation(shown, first.as_sketch().pixels) > 0.9
        # ... and drawing on it reads the canvas again, now as the visitor's drawing.
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2 - 100, box["y"] + box["height"] / 2 + 100)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 - 95, box["y"] + box["height"] / 2 + 105)
        page.mouse.up()
        expect(page.locator("#status")).not_to_contain_text("not your drawing", timeout=20_000)
        expect(page.locator("#status")).to_contain_text("Prediction: ")
        # Every image says what it shows (they had alt="").
        expect(page.locator("#block1-maps img")).to_have_attribute("alt", __import__("re").compile("^Block 1: conv"))
        expect(page.locator("#examples img").first).to_have_attribute("alt", "MNIST test digit 7 (example)")

        # On a phone-sized screen the curves stack and the gallery wraps instead of overflowing.
        phone = browser.new_page(viewport={"width": 400, "height": 900})
        phone.goto(server, wait_until="load")
        # The block grids show at their own size there, labels readable (one row of 10 maps was shrunk to
        # 59%, its labels to 5-6 px; the accordion's padding leaves 98%), also after the every-layer box asked for the layers.
        # The examples, between the canvas and the answer there, are one row of small digits (as 4 rows of
        # large ones they pushed the answer 380 px down).
        expect(phone.locator("#examples img").last).to_have_js_property("complete", True, timeout=20_000)
        assert phone.locator("#examples").bounding_box()["height"] < 100
        phone.locator("#examples button").first.click()
        expect(phone.locator("#status")).to_contain_text("Prediction: 7", timeout=20_000)
        # The answer is on screen after the tap (the examples sat under the feature maps, the answer ~1000 px
        # above the screen), and the input and saliency views are not shrunk side by side (105 px each).
        expect(phone.locator("#prediction")).to_be_in_viewport(timeout=10_000)
        expect(phone.locator("#saliency img")).to_be_visible(timeout=20_000)
        phone.get_by_label(__import__("re").compile("Also show every layer")).check()
        expect(phone.locator("#block1-layers img")).to_be_visible(timeout=20_000)
        for name in ("seen", "saliency", "block1-maps", "block2-maps", "block3-maps", "block4-maps", "block1-layers",
                     "block4-layers"):
            natural, shown_width = phone.locator(f"#{name} img").evaluate(
                "e => [e.naturalWidth, e.getBoundingClientRect().width]")
            assert shown_width >= 0.95 * natural, (name, natural, shown_width)
        phone.get_by_role("tab", name="Model").click()
        expect(phone.locator("#misclassified img").first).to_be_visible(timeout=20_000)
        grid = phone.locator("#misclassified .grid-container")
        assert grid.evaluate("e => e.scrollWidth <= e.clientWidth")
        # Every digit shows whole: no scrolling inside the gallery, each caption below its digit.
        wrap = phone.locator("#misclassified .grid-wrap")
        assert wrap.evaluate("e => e.scrollHeight <= e.clientHeight + 1")
        assert phone.locator("#misclassified .thumbnail-item").first.evaluate(
            "e => e.querySelector('.caption-label').getBoundingClientRect().top"
            " >= e.querySelector('img').getBoundingClientRect().bottom - 1")
        assert phone.locator("#accuracy-plot").evaluate("e => e.getBoundingClientRect().width") >= 300
        browser.close()


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


def save_screenshot(shot: Path, name: str) -> None:
    """With MNIST_NET_SCREENSHOT_DIR=docs, keep a small copy for the README (256 colours, <= 1000 px wide)."""
    target = os.environ.get("MNIST_NET_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        img = Image.open(shot).convert("RGB")
        if img.width > 1000:
            img = img.resize((1000, round(img.height * 1000 / img.width)), Image.LANCZOS)
        img.quantize(256).save(Path(target) / name, optimize=True)


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
    # Gradio gives each handler its own concurrency group unless told otherwise, which would let
    # strokes, saliency, examples, the checkbox and the gallery each run CONCURRENCY requests at once.
    model_fns = {"redo_remembered", "predict_and_remember", "explain_remembered", "explain", "predict_and_explain",
                 "analyze_misclassified"}
    groups = {(f.concurrency_id, f.concurrency_limit) for f in app_module.demo.fns.values()
              if getattr(f.fn, "__name__", None) in model_fns}
    named = {f.fn.__name__ for f in app_module.demo.fns.values() if getattr(f.fn, "__name__", None) in model_fns}
    assert named == model_fns
    assert groups == {("model", app_module.CONCURRENCY)}
