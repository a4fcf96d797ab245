"""Every kind of bad input gets a prediction or a clear message, in bounded time, and the server keeps going."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

PREDICTION, MESSAGE = "prediction", "message"


def digit_one(size=(280, 280)):
    img = Image.new("L", size, 255)
    w, h = size
    ImageDraw.Draw(img).line([(w // 2, h // 8), (w // 2, h * 7 // 8)], fill=0, width=max(1, w // 14))
    return img


def scribbles():
    rng = np.random.default_rng(0)
    img = Image.new("RGB", (280, 280), "white")
    d = ImageDraw.Draw(img)
    for _ in range(60):
        d.line([tuple(rng.integers(0, 280, 2)) for _ in range(4)], fill="black", width=9)
    return img


def photo_like():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((640, 480), Image.BICUBIC)


def sixteen_bit():
    arr = np.zeros((200, 200), np.uint16)
    arr[30:170, 92:108] = 65000
    return Image.fromarray(arr)


def huge():
    return digit_one((6000, 6000))


def huge_one_bit():
    return digit_one((6000, 6000)).convert("1")


def huge_palette():
    return digit_one((6000, 6000)).convert("P")


def too_many_pixels():
    return Image.new("L", (8200, 8000), 255)


def single_dot():
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse([136, 136, 146, 146], fill=(0, 0, 0, 255))
    return img


# name -> (image factory or None, expected outcome, what the message must say)
CASES = {
    "none": (lambda: None, MESSAGE, "Draw a digit"),
    "blank white canvas": (lambda: Image.new("RGB", (280, 280), "white"), MESSAGE, "Draw a digit"),
    "all-black canvas": (lambda: Image.new("RGB", (280, 280), "black"), MESSAGE, "Draw a digit"),
    "fully transparent RGBA": (lambda: Image.new("RGBA", (280, 280), (0, 0, 0, 0)), MESSAGE, "Draw a digit"),
    "1x1 image": (lambda: Image.new("L", (1, 1), 0), MESSAGE, "Draw a digit"),
    "6000x6000 image": (huge, PREDICTION, "Prediction: **1**"),
    "colour photo-like RGB": (photo_like, PREDICTION, "This doesn't look like a digit."),  # colour blotches
    "6000x6000 1-bit image": (huge_one_bit, PREDICTION, "Prediction: **1**"),
    "6000x6000 palette image": (huge_palette, PREDICTION, "Prediction: **1**"),
    "8200x8000 image (over 64 million pixels)": (too_many_pixels, MESSAGE, "images up to 64 million pixels"),
    # 45 KB as a PNG, over Pillow's own bomb limit: the server used to fail inside Gradio's decoding.
    "20000x10000 1-bit image (200 million pixels)": (lambda: Image.new("1", (20000, 10000), 1), MESSAGE,
                                                     "images up to 64 million pixels"),
    "16-bit greyscale PNG": (sixteen_bit, PREDICTION, "Prediction: **1**"),
    "single dot": (single_dot, PREDICTION, "This doesn't look like a digit."),  # a tap: read, and flagged
    "canvas covered in scribbles": (scribbles, PREDICTION, "This doesn't look like a digit."),
}


@pytest.mark.parametrize("name", list(CASES))
def test_predict_function(app_module, name):
    factory, outcome, text = CASES[name]
    img = factory()
    value = {"background": None, "layers": [], "composite": img}
    t0 = time.perf_counter()
    out = app_module.predict(value)
    seconds = time.perf_counter() - t0
    label, status = out[1], out[-1]
    assert text in status, status
    assert (label is not None) == (outcome == PREDICTION)
    assert seconds < 5.0, f"{name}: {seconds:.2f} s"


def test_empty_sketchpad_value(app_module):
    out = app_module.predict({"background": None, "layers": [], "composite": None})
    assert out[1] is None and out[-1] == app_module.EMPTY_MESSAGE


def test_unreadable_value_gives_a_message(app_module):
    out = app_module.predict({"background": None, "layers": [], "composite": "/no/such/file.png"})
    assert out[1] is None and "Could not read this image" in out[-1]


def test_truncated_or_oversized_files_give_a_message(app_module, tmp_path):
    # Image.open reads only the header: a broken body used to fail later, inside preprocessing.
    good = tmp_path / "one.png"
    digit_one((600, 600)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:400])
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 10000), 1).save(bomb)  # 45 KB on disk, 200 million pixels
    for path, text in ((cut, "image file is truncated"), (bomb, "images up to 64 million pixels")):
        # as a plain file, and as a sketchpad's background or layer (/explain takes those from API clients)
        for value in (str(path), {"background": str(path), "layers": [], "composite": None},
                      {"background": None, "layers": [str(path)], "composite": None}):
            out = app_module.predict(value)
            assert out[1] is None and "Could not read this image" in out[-1] and text in out[-1], out[-1]
            assert app_module.saliency(value) is None


def test_an_oversized_layer_is_refused_before_it_is_decoded(tmp_path):
    from mnist_net.inference import image_from_editor
    from mnist_net.sketch import SketchError

    big = tmp_path / "big.png"
    Image.new("L", (8200, 8200), 255).save(big)  # 84 KB, 67 million pixels: under Pillow's limit, over ours
    layer = Image.open(big)
    with pytest.raises(SketchError, match="images up to 64 million pixels"):
        image_from_editor({"background": None, "layers": [layer], "composite": None})
    assert layer.tile  # its pixels were never decoded (composited, they took 5 s and 0.9 GB)


@pytest.mark.parametrize("name", list(CASES))
def test_through_the_real_server(server, tmp_path, name):
    from gradio_client import Client, handle_file

    factory, outcome, text = CASES[name]
    img = factory()
    client = Client(server, verbose=False)
    composite = None
    if img is not None:
        path = tmp_path / "input.png"
        img.save(path)
        composite = handle_file(str(path))
    t0 = time.perf_counter()
    result = client.predict({"background": None, "layers": [], "composite": composite}, api_name="/predict")
    seconds = time.perf_counter() - t0
    status = result[-1]
    assert text in status, status
    assert ("label" in (result[0] or {})) == (outcome == PREDICTION), result[0]
    assert seconds < 20.0, f"{name}: {seconds:.2f} s"
    # The server keeps answering correctly after each bad input.
    good = tmp_path / "one.png"
    digit_one().save(good)
    after = client.predict({"background": None, "layers": [], "composite": handle_file(str(good))}, api_name="/predict")
    assert after[0]["label"] == "1"


def test_a_truncated_or_huge_upload_through_the_real_server_gets_a_message(server, tmp_path):
    # Gradio decodes an upload before the app sees it: without the app's check first, each gave a traceback on the
    # server and a bare "error" to the client.
    from gradio_client import Client, handle_file

    good = tmp_path / "one.png"
    digit_one((600, 600)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:400])  # the header reads; decoding the body fails inside Gradio
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 10000), 1).save(bomb)  # 45 KB, over Pillow's own bomb limit
    client = Client(server, verbose=False)
    for path, text in ((cut, "truncated"), (bomb, "images up to 64 million pixels")):
        value = {"background": None, "layers": [], "composite": handle_file(str(path))}
        result = client.predict(value, api_name="/predict")
        assert result[0] is None or "label" not in result[0]
        assert "Could not read this image" in result[-1] and text in result[-1], result[-1]
        assert client.predict(value, api_name="/explain") is None
    # Each under the limit, together over it: 8 such layers took 12 s and 3.7 GB of the server's memory.
    layer = tmp_path / "layer.png"
    Image.new("L", (6000, 6000), 255).save(layer)  # 36 million pixels
    value = {"background": handle_file(str(layer)), "layers": [handle_file(str(layer))], "composite": None}
    result = client.predict(value, api_name="/predict")
    assert "72,000,000 pixels together; up to 64 million" in result[-1], result[-1]
    assert client.predict(value, api_name="/explain") is None
    value = {"background": None, "layers": [], "composite": handle_file(str(good))}
    assert client.predict(value, api_name="/predict")[0]["label"] == "1"


def test_a_file_that_is_no_image_gets_a_message_without_the_servers_paths(server, tmp_path):
    import os

    from gradio_client import Client, handle_file

    fake = tmp_path / "notimg.png"
    fake.write_text("just text")
    result = Client(server, verbose=False).predict(
        {"background": None, "layers": [], "composite": handle_file(str(fake))}, api_name="/predict")
    status = result[-1]
    assert "Could not read this image" in status and "notimg.png" in status, status
    assert os.environ["GRADIO_TEMP_DIR"] not in status and str(tmp_path) not in status, status


def test_the_upload_header_check_closes_the_file(tmp_path):
    import gc
    import warnings

    from mnist_net.inference import check_image_file
    from mnist_net.sketch import SketchError

    small, huge = tmp_path / "digit.png", tmp_path / "huge.png"
    digit_one().save(small)
    Image.new("1", (20000, 10000)).save(huge)
    gc.collect()  # what earlier tests left unclosed (the server's sockets, say) is reported now, not below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_image_file(small)
        with pytest.raises(SketchError, match="million pixels|64"):
            check_image_file(huge)
        gc.collect()
    # Only our two files count: another test's garbage can still be collected here.
    ours = [w for w in caught if issubclass(w.category, ResourceWarning) and str(tmp_path) in str(w.message)]
    assert not ours, [str(w.message) for w in ours]
