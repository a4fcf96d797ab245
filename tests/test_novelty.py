"""The not-a-digit detector: its file, its verdicts on drawings it was not fitted on, /classify through a real server."""
from __future__ import annotations

import contextlib
import io
import tarfile
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, missing
from mnist_net import drawings, novelty
from mnist_net.checkpoint import DEFAULT_WEIGHTS
from mnist_net.data import MNIST_MEAN, MNIST_STD

CLASSIFY_KEYS = {"digit", "confidence", "probabilities", "is_digit", "novelty", "threshold"}


def held_out_fonts() -> list:
    try:
        return drawings.fonts(1)
    except FileNotFoundError as e:
        missing(str(e))


def test_the_shipped_detector_loads_safely_and_a_bad_file_is_no_detector(tmp_path):
    detector = novelty.load(DEFAULT_WEIGHTS)
    assert detector is not None and np.isfinite(float(detector.threshold))
    weights = tmp_path / "w.pt"
    for junk in (b"not a detector", b"junk\n"):  # the second fails in the safe unpickler with a KeyError
        novelty.detector_path(weights).write_bytes(junk)
        assert novelty.load(weights) is None
    for bad in ({"format": "other/1", "heads": 5}, {"format": novelty.FORMAT, "heads": 0}):
        torch.save({"state_dict": detector.state_dict(), "hidden": 64, **bad}, novelty.detector_path(weights))
        assert novelty.load(weights) is None, bad
    novelty.save(detector, weights)  # written atomically, read back with weights_only=True
    assert torch.equal(novelty.load(weights).threshold, detector.threshold)


def test_the_threshold_is_set_on_digits_alone():
    gen = torch.Generator().manual_seed(0)
    digits = torch.randn(2000, novelty.N_FEATURES, generator=gen)
    others = torch.randn(500, novelty.N_FEATURES, generator=gen) + 0.5
    calibration = torch.randn(1000, novelty.N_FEATURES, generator=gen)
    detector = novelty.fit_head(digits, others, calibration, epochs=3, log=lambda *_: None)
    with torch.inference_mode():
        above = (detector(calibration) > detector.threshold).float().mean().item()
        caught = (detector(others) > detector.threshold).float().mean().item()
    assert above == pytest.approx(1 - novelty.DIGIT_QUANTILE, abs=0.002) and caught > 0.9


def test_a_character_a_font_lacks_is_not_drawn_as_an_empty_box():
    navilu = next(f for f in held_out_fonts() if f.stem == "Navilu")  # a Kannada font with Latin digits only
    assert "7" in drawings.font_chars(navilu) and "A" not in drawings.font_chars(navilu)
    with pytest.raises(ValueError, match="no glyph for 'A'"):
        drawings.font_glyph("A", navilu, np.random.default_rng(0))
    drawn = {(font, ch) for _, ch, font in drawings.glyphs("7A", 1, np.random.default_rng(0), group=1)}
    assert ("Navilu", "7") in drawn and ("Navilu", "A") not in drawn and ("Kristi", "A") in drawn


def test_a_tall_glyph_is_drawn_whole():
    try:
        dkg = next(f for f in drawings.fonts(0) if f.stem == "dkg")  # its f and p overflowed a 300 px square
    except FileNotFoundError as e:
        missing(str(e))
    for ch in "fp7":
        mask = drawings.glyph_mask(ch, dkg)
        assert mask.any() and not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()), ch


def test_drawn_digits_pass_and_held_out_letters_and_shapes_are_flagged(app_module, test_set):
    """Guards with a margin under bench/novelty.py's full measurement (README), on drawings never used in fitting."""
    rng = np.random.default_rng(7)
    digits = (test_set.images[:200, 0].numpy() * MNIST_STD + MNIST_MEAN).clip(0, 1)
    flagged = [not app_module.analyze(app_module.MODEL, drawings.mnist_drawn(x, rng), detector=app_module.DETECTOR,
                                      render=False).is_digit for x in digits]
    fonts = held_out_fonts()[::4]
    letters = [drawings.font_glyph(c, f, rng) for f in fonts for c in drawings.LETTERS[::3] if c in drawings.font_chars(f)]
    shapes = [drawings.shape(k, rng) for k in drawings.SHAPES[1] for _ in range(4)]
    caught = [not app_module.analyze(app_module.MODEL, x, detector=app_module.DETECTOR, render=False).is_digit
              for x in letters + shapes]
    print(f"\n{sum(flagged)} of {len(flagged)} digits flagged; {sum(caught)} of {len(caught)} letters and shapes")
    assert sum(flagged) <= 4 and np.mean(caught) >= 0.7


def write(tmp_path, name, image: np.ndarray) -> str:
    path = tmp_path / name
    Image.fromarray(image).save(path)
    return str(path)


def test_classify_through_a_real_server(server, tmp_path, test_set):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    rng = np.random.default_rng(3)
    letter = client.predict(handle_file(write(tmp_path, "h.png", drawings.font_glyph("H", held_out_fonts()[0], rng))),
                            api_name="/classify")
    assert set(letter) == CLASSIFY_KEYS, letter
    assert letter["is_digit"] is False and letter["novelty"] > letter["threshold"]
    assert letter["digit"] in range(10) and len(letter["probabilities"]) == 10
    assert sum(letter["probabilities"]) == pytest.approx(1, abs=1e-3)
    assert letter["confidence"] == max(letter["probabilities"])
    digit = (test_set.images[0, 0].numpy() * MNIST_STD + MNIST_MEAN).clip(0, 1)
    ink = (np.asarray(Image.fromarray((digit * 255).astype(np.uint8)).resize((200, 200), Image.BILINEAR)))
    for name, image in (("dark-on-light.png", 255 - ink),
                        ("light-on-transparent.png", np.dstack([np.full_like(ink, 255)] * 3 + [ink]))):
        seven = client.predict(handle_file(write(tmp_path, name, image)), api_name="/classify")
        assert (seven["digit"], seven["is_digit"]) == (int(test_set.labels[0]), True), (name, seven)
        assert seven["novelty"] <= seven["threshold"]
    blank = client.predict(handle_file(write(tmp_path, "blank.png", np.full((50, 80), 255, np.uint8))),
                           api_name="/classify")
    assert blank["digit"] is None and blank["is_digit"] is False and "blank" in blank["message"]
    assert blank["threshold"] == letter["threshold"]  # rounded alike
    drawing = {"background": None, "layers": [], "composite": handle_file(str(tmp_path / "blank.png"))}
    sent_a_dict = client.predict(drawing, api_name="/classify")  # /predict's input, sent to /classify
    assert sent_a_dict["digit"] is None and "handle_file(path)" in sent_a_dict["message"] and \
        "/predict" in sent_a_dict["message"], sent_a_dict
    # Only files uploaded to the app are read, never a path on the server that a caller names (gradio_client would
    # upload a local file, so the request is made by hand): Gradio refuses it before the handler runs.
    import httpx

    examples = sorted((ROOT / "examples").glob("*.png"))
    call = httpx.post(f"{server}gradio_api/call/classify", timeout=30,
                      json={"data": [{"path": str(examples[0]), "meta": {"_type": "gradio.FileData"}}]})
    answer = httpx.get(f"{server}gradio_api/call/classify/{call.json()['event_id']}", timeout=30).text
    assert answer.startswith("event: error") and "digit" not in answer, answer


def test_fitting_refuses_missing_weights_with_a_message(tmp_path, capsys):
    assert novelty.main(["--weights", str(tmp_path / "none.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    with pytest.raises(SystemExit) as stop:  # refused before MNIST is loaded
        novelty.main(["--weights", str(tmp_path / "none.pt"), "--seed", "-1"])
    assert stop.value.code == 2 and "--seed must be 0 or more" in capsys.readouterr().err


def test_fitting_into_a_folder_it_cannot_write_says_so(tmp_path, monkeypatch, capsys):
    # fitting itself (2 minutes) stands aside: what is under test is writing the fitted detector
    monkeypatch.setattr(novelty, "load_model", lambda path: None)
    monkeypatch.setattr(novelty, "fit", lambda *a, **k: novelty.Detector(hidden=4, heads=1))
    monkeypatch.setattr("mnist_net.data.load_mnist", lambda *a, **k: type("D", (), {"images": None}))
    (tmp_path / "taken").write_text("a file where the weights' folder would be")
    assert novelty.main(["--weights", str(tmp_path / "taken" / "w.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "w.detector.pt" in err and "Traceback" not in err


def test_weights_without_a_detector_say_so(app_module, tmp_path, monkeypatch):
    monkeypatch.setattr(app_module, "DETECTOR", None)
    path = write(tmp_path, "one.png", np.pad(np.full((120, 16), 0, np.uint8), 60, constant_values=255))
    answer = app_module.classify({"path": path, "meta": {"_type": "gradio.FileData"}})
    assert answer["digit"] == 1 and answer["is_digit"] is None and "python -m mnist_net.novelty" in answer["message"]
    assert str(app_module.WEIGHTS.parent) not in answer["message"]  # an API answer does not say where the server is
    assert "Prediction: **1**" in app_module.predict(path)[-1]  # read as before, without the check
    assert "`python -m mnist_net.novelty --weights" in novelty.summary(tmp_path / "w.pt", None, None)


def test_a_missing_font_is_named_so_a_set_is_never_measured_smaller(tmp_path, monkeypatch):
    fonts = held_out_fonts()
    for f in fonts:
        if f.stem != "Navilu":
            target = tmp_path / f.parent.relative_to(drawings.FONT_DIR) / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(f)
    monkeypatch.setattr(drawings, "FONT_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"Handwriting fonts Navilu not in .*apt-get install fonts-bwht"):
        drawings.fonts(1)


def test_npm_fonts_come_from_their_pinned_package_once_and_a_failed_fetch_names_the_font(tmp_path, monkeypatch):
    font = held_out_fonts()[0].read_bytes()  # stands in for the package's font file
    urls, members = [], ["package/files/julee-latin-400-normal.woff2",
                         "package/files/playwrite-at-fallback-wght-normal.woff2"]

    def urlopen(url, timeout):  # an npm package: a gzipped tarball
        urls.append(url)
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w:gz") as tar:
            for member in members:
                info = tarfile.TarInfo(member)
                info.size = len(font)
                tar.addfile(info, io.BytesIO(font))
        return contextlib.nullcontext(io.BytesIO(data.getvalue()))

    monkeypatch.setattr(drawings, "NPM_FONT_DIR", tmp_path)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    assert "julee@4.5.11" in drawings.HANDWRITING_FONTS and len(drawings.HANDWRITING_FONTS) == 104  # as the docs say
    path = drawings.npm_font("julee@4.5.11")
    assert path == tmp_path / "julee-4.5.11.woff2" and path.read_bytes() == font and "a" in drawings.font_chars(path)
    assert urls == ["https://registry.npmjs.org/@fontsource/julee/-/julee-4.5.11.tgz"]
    assert drawings.npm_font("julee@4.5.11") == path and len(urls) == 1  # downloaded once
    drawings.npm_font("playwrite-at")
    assert urls[-1] == "https://registry.npmjs.org/@fontsource-variable/playwrite-at/-/playwrite-at-5.3.0.tgz"
    with pytest.raises(FileNotFoundError, match="Font borel: could not fetch it from .*borel-5.3.0.tgz"):
        drawings.npm_font("borel")  # its file is not in the package
    assert not (tmp_path / "borel-5.3.0.woff2").exists()
