"""Every bench script refuses bad arguments plainly; on a GPU, bench/cuda_check.py runs at a tiny size.

The other benchmarks are not run here, to keep the suite within its 4-minute budget;
tests/test_load.py, the browser tests and the training tests cover what they drive.
"""
from __future__ import annotations

import os
import runpy
import subprocess
import sys

from conftest import ROOT


def run_bench(script: str, *args: str, data_dir: str, timeout: int = 240) -> str:
    env = {**os.environ, "MNIST_DATA_DIR": data_dir}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def run_in_process(script: str, args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """`python bench/SCRIPT ARGS`, run in this process (no interpreter start-up and imports, ~2.5 s a script):
    its exit code, standard error and standard output, as the shell would see them."""
    monkeypatch.setattr(sys, "argv", [str(ROOT / "bench" / script), *args])
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # as `python bench/SCRIPT` puts its folder first
    capsys.readouterr()
    try:
        runpy.run_path(str(ROOT / "bench" / script), run_name="__main__")
        code, message = 0, ""
    except SystemExit as e:  # sys.exit("message") prints the message and exits with 1
        code, message = (1, f"{e.code}\n") if isinstance(e.code, str) else (e.code or 0, "")
    captured = capsys.readouterr()
    return code, captured.err + message, captured.out


def test_bench_scripts_refuse_counts_that_make_no_sense_and_say_what_they_cannot_reach(data_dir, monkeypatch, capsys,
                                                                                     tmp_path):
    # (script, args, exit code, message); the scripts share bench_args.count.
    monkeypatch.setenv("MNIST_DATA_DIR", data_dir)
    (tmp_path / "3").mkdir()
    (tmp_path / "07").mkdir()
    (tmp_path / "3" / "x.png").write_bytes(b"")
    cases = [
        ("train_speed.py", ["--rounds", "0"], 2, "--rounds: must be at least 1, got 0"),
        ("load_test.py", ["--clients", "many"], 2, "--clients: expected a whole number, got 'many'"),
        ("load_test.py", ["--clients", "1", "--requests", "1", "--url", "http://127.0.0.1:1/"], 1,
         "error: no Gradio app answers at http://127.0.0.1:1/"),
        ("browser_latency.py", ["--chromium", "/nonexistent/chromium"], 1, "Chromium not found at /nonexistent/chromium"),
        ("novelty.py", ["--limit", "0"], 2, "--limit: must be at least 1, got 0"),
        ("novelty.py", ["--images", ".", "--write"], 2, "use it without --pen, --write and --data-dir"),
        ("novelty.py", ["--images", "/nonexistent/folder"], 1, "error: --images /nonexistent/folder: not a folder"),
        ("novelty.py", ["--images", str(tmp_path / "3")], 1, "no files in its folders (0 ... 9 for digits"),
        ("novelty.py", ["--images", str(tmp_path)], 1, "a folder named '07'; digits go in folders 0 ... 9"),
        ("optdigits.py", [str(tmp_path / "3" / "x.png")], 1, "x.png is a file, not a folder"),
        ("optdigits.py", [str(tmp_path / "3" / "x.png" / "out")], 1, "error: cannot write into "),
    ]
    for script, args, expected_code, expected in cases:
        code, err, _ = run_in_process(script, args, monkeypatch, capsys)
        assert code == expected_code and expected in err, (script, code, err[-2000:])


def test_cuda_check_runs_on_a_gpu_and_says_plainly_when_there_is_none(data_dir, tmp_path):
    """The GPU check of the CUDA-graph step: its figures on a GPU, one clear line (exit 2) without one."""
    import torch

    args = ["--steps", "3", "--rounds", "1", "--replays", "10", "--saves", "2", "--save-dir", str(tmp_path)]
    if torch.cuda.is_available():
        out = run_bench("cuda_check.py", *args, data_dir=data_dir)
        assert "eager vs graph: 3 steps" in out and "speed-up graph vs eager" in out
        return
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "cuda_check.py"), *args], cwd=ROOT,
                          env={**os.environ, "MNIST_DATA_DIR": data_dir}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: no CUDA GPU is visible"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_browser_latency_times_the_apps_own_sketchpad_on_its_floor_page(app_module, monkeypatch):
    import gradio as gr

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import browser_latency

    def sketchpad(demo):
        return next(b for b in demo.blocks.values() if isinstance(b, gr.Sketchpad))

    floor, shown = sketchpad(browser_latency.floor_demo()), sketchpad(app_module.demo)
    for setting in ("canvas_size", "fixed_canvas", "layers", "transforms", "type", "image_mode", "height"):
        assert getattr(floor, setting) == getattr(shown, setting), setting
    assert floor.brush.default_size == shown.brush.default_size == app_module.BRUSH // 2


def test_novelty_bench_measures_a_folder_of_your_own_images_through_the_running_app(server, test_set, tmp_path,
                                                                                    monkeypatch, capsys):
    """--images DIR: DIR/0 ... DIR/9 are digits, other folders non-digits, sent as they are to /classify."""
    import numpy as np
    from gradio_client import Client, handle_file
    from PIL import Image

    from mnist_net import drawings
    from mnist_net.data import MNIST_MEAN, MNIST_STD

    rng = np.random.default_rng(0)
    for i in range(20):  # MNIST test digits as the app's tests draw them; the 7s also filed under 1, wrongly
        image, label = (test_set.images[i, 0].numpy() * MNIST_STD + MNIST_MEAN).clip(0, 1), int(test_set.labels[i])
        canvas = drawings.mnist_drawn(image, rng)
        for folder in {str(label), "1" if label == 7 else str(label)}:
            (tmp_path / folder).mkdir(exist_ok=True)
            Image.fromarray(canvas).save(tmp_path / folder / f"{i}.png")
    (tmp_path / "shapes").mkdir()
    for kind in ("house", "arrow", "hash"):
        Image.fromarray(drawings.shape(kind, rng)).save(tmp_path / "shapes" / f"{kind}.png")
    Image.new("L", (60, 60), 255).save(tmp_path / "shapes" / "blank.png")
    (tmp_path / "README.txt").write_text("not in a folder: not sent")
    (tmp_path / "3" / ".DS_Store").write_bytes(b"hidden: not sent")

    client = Client(server, verbose=False)
    answers = {p: client.predict(handle_file(str(p)), api_name="/classify") for p in tmp_path.glob("[0-9]/[0-9]*")}
    kept = [int(p.parent.name) == a["digit"] for p, a in answers.items() if a["is_digit"]]
    assert 0 < len(kept) and not all(kept), "the 7s filed under 1 must count as misread"
    flagged = 1 - len(kept) / len(answers)

    code, err, out = run_in_process("novelty.py", ["--images", str(tmp_path), "--server", server], monkeypatch, capsys)
    assert code == 0, err[-2000:]
    assert f"digits: {len(answers):>6,} drawings, {flagged:6.1%} flagged, {np.mean(kept):6.2%} of the rest read right" \
        in out, out
    assert "non-digits:      3 drawings" in out and "left out, " in out and "blank.png: No ink found" in out, out
    assert "DS_Store" not in out and "README" not in out, out


def test_optdigits_writes_real_handwriting_and_mnist_in_the_same_8x8_form(data_dir, tmp_path, monkeypatch, capsys):
    """bench/optdigits.py: the 13 writers' digits, each in its digit's folder as it is; MNIST's in the same form."""
    import numpy as np
    from PIL import Image

    from conftest import missing
    from mnist_net.data import load_raw

    try:
        from sklearn.datasets import load_digits
    except ImportError:
        missing("scikit-learn (requirements-dev.txt) for bench/optdigits.py")
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from optdigits import to_8x8

    bar = np.zeros((28, 28), np.uint8)
    bar[4:24, 10:14], bar[4:24, 14] = 255, 63  # 20 x 5 px of ink: 32 x 8 in the box, columns 12 ... 19
    bar[3, 10:15] = bar[24, 10:15] = 62  # too faint to be ink
    assert to_8x8(bar).tolist() == [[0, 0, 0, 16, 16, 0, 0, 0]] * 8
    assert not to_8x8(np.zeros((28, 28), np.uint8)).any()

    code, err, out = run_in_process("optdigits.py", [str(tmp_path), "--data-dir", data_dir], monkeypatch, capsys)
    assert code == 0, err[-2000:]
    writers, (images, labels) = load_digits(), load_raw(data_dir, train=False)
    for name, counts, digits in (("writers", lambda i: writers.images[i], writers.target),
                                 ("mnist", lambda i: to_8x8(images[i].numpy()), labels.numpy())):
        files = list(tmp_path.glob(f"{name}/*/*.png"))
        per_digit = [sum(f.parent.name == str(k) for f in files) for k in range(10)]
        assert per_digit == np.bincount(digits).tolist(), (name, per_digit)
        for i in (0, 777, len(digits) - 1):
            written = np.array(Image.open(tmp_path / name / str(digits[i]) / f"{i}.png"), dtype=float)
            np.testing.assert_allclose(written, 255 - counts(i) * 255 / 16, atol=0.5)


UJI_SAMPLE = """//
// UJI: 100 units per millimetre
//
// ASCII char: x
WORD x trn_UJI_W03-01
  NUMSTROKES 2
  POINTS 2 # 0 0 800 1000
  POINTS 2 # 800 0 0 1000
// ASCII char: o
WORD o trn_UJI_W03-01
  NUMSTROKES 1
  POINTS 4 # 0 0 400 0 400 400 0 0
// Non-ASCII char: ntilde
WORD ñ trn_UJI_W03-01
  NUMSTROKES 1
  POINTS 2 # 0 0 400 400
// ASCII char: K
WORD K trn_UJI_W03-02
  NUMSTROKES 2
  POINTS 2 # 0 0 0 1000
  POINTS 3 # 600 0 0 500 600 1000
// ASCII char: 7
WORD 7 trn_UJI_W03-01
  NUMSTROKES 1
  POINTS 3 # 0 0 800 0 300 1200
WORD 7 tst_UPV_W41-02
  NUMSTROKES 2
  POINTS 3 # 0 0 800 0 300 1200
  POINTS 2 # 200 600 800 600
WORD 12 tst_UPV_W41-02
  NUMSTROKES 1
  POINTS 2 # 0 0 5 5
WORD 5 tst_UPV_W41-02
WORD ² tst_UPV_W41-02
  NUMSTROKES 1
  POINTS 2 # 0 0 5 5
// ASCII char: .
WORD . tst_UPV_W41-02
  NUMSTROKES 1
  POINTS 1 # 5 5
"""


def test_ujipen_draws_each_pen_sample_with_the_brush_into_its_digits_folder(tmp_path, monkeypatch, capsys):
    """bench/ujipen.py: real pen strokes drawn as on the canvas (y down); digits by folder, the letters that do not
    look like a digit in letters/; digit-like letters, accented ones, punctuation and the rest left out. A sample is
    drawn the same whatever else, in whatever order, the file holds."""
    import numpy as np
    from PIL import Image

    def write(text: str, out: str, *args: str) -> dict:
        (tmp_path / f"{out}.txt").write_text(text, encoding="utf-8")
        code, err, stdout = run_in_process("ujipen.py", [str(tmp_path / f"{out}.txt"), str(tmp_path / out), *args],
                                           monkeypatch, capsys)
        assert code == 0, err[-2000:]
        return {str(p.relative_to(tmp_path / out)): p.read_bytes() for p in (tmp_path / out).rglob("*.png")}, stdout

    written, out = write(UJI_SAMPLE, "out")
    assert "Wrote 2 digits to " in out and ", 2 letters to " in out, out
    assert sorted(written) == ["7/W03-1.png", "7/W41-2.png", "letters/W03-1-lower-x.png",
                               "letters/W03-2-upper-K.png"], sorted(written)
    head, *words = UJI_SAMPLE.split("\nWORD ")  # its samples in reverse order, the x made a y
    shuffled, _ = write("\nWORD ".join([head, *words[::-1]]).replace("WORD x", "WORD y"), "reversed")
    assert all(shuffled.get(k) == v for k, v in written.items() if "-x" not in k), "drawn as it was, in any order"
    other_seed, _ = write(UJI_SAMPLE, "seed1", "--seed", "1")
    assert other_seed.keys() == written.keys() and other_seed["7/W03-1.png"] != written["7/W03-1.png"]

    def ink(path):
        image = np.array(Image.open(tmp_path / "out" / path))
        assert image.shape == (280, 280) and image.dtype == np.uint8
        rows, cols = np.nonzero(image < 128)
        return image[rows.min():rows.max() + 1, cols.min():cols.max() + 1] < 128

    def width(band):  # the ink's horizontal extent in these rows, as a share of the drawing's width
        cols = np.nonzero(band.any(0))[0]
        return (cols.max() - cols.min() + 1) / band.shape[1] if cols.size else 0.0

    for path, bar in (("7/W03-1.png", False), ("7/W41-2.png", True)):
        seven = ink(path)
        h = seven.shape[0]
        assert width(seven[:h // 10]) > 0.9 and width(seven[-h // 10:]) < 0.4, path  # its top bar at the top
        assert (width(seven[h // 2 - 2:h // 2 + 2]) > 0.6) == bar, path  # the second one's crossbar, drawn
        assert 0.55 < seven.shape[1] / h < 0.8, path  # 800 x 1200 units plus the brush: its aspect kept
    x = ink("letters/W03-1-lower-x.png")
    assert x[:10, :10].any() and x[:10, -10:].any() and x[-10:, :10].any() and x[-10:, -10:].any()
    side = x.shape[1] // 4  # two crossing strokes, the pen lifted between them: nothing at the sides' middles
    assert not x[x.shape[0] // 2, :side].any() and not x[x.shape[0] // 2, -side:].any()


def test_ujipen_refuses_files_it_cannot_read_plainly(tmp_path, monkeypatch, capsys):
    def variant(name: str, old: str, new: str) -> None:
        assert old in UJI_SAMPLE
        (tmp_path / name).write_text(UJI_SAMPLE.replace(old, new, 1), encoding="utf-8")

    variant("short.txt", "POINTS 3 # 0 0 800 0 300 1200\nWORD 7 tst", "POINTS 3 # 0 0 800 0 300\nWORD 7 tst")
    variant("strokes.txt", "  POINTS 2 # 200 600 800 600\n", "")
    variant("empty.txt", "POINTS 1 # 5 5", "POINTS 0 #")
    (tmp_path / "headless.txt").write_text("  NUMSTROKES 1\n  POINTS 1 # 5 5\n")
    (tmp_path / "csv.txt").write_text("label,x,y\n7,1,2\n")
    (tmp_path / "dots.txt").write_text(UJI_SAMPLE.split("// ASCII char: .")[1])
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "folder").mkdir()
    cases = [
        ("missing.txt", "error: cannot read "),
        ("folder", "error: cannot read "),
        ("short.txt", "short.txt, line 25: POINTS 3 but 5 numbers, not 6"),
        ("strokes.txt", "strokes.txt, line 26: 7 W41-2: NUMSTROKES 2 but 1 POINTS lines"),
        ("empty.txt", "empty.txt, line 40: not UJIpenchars2's format: 'POINTS 0 #'"),
        ("headless.txt", "headless.txt, line 1: NUMSTROKES before any WORD line"),
        ("csv.txt", "csv.txt, line 1: not UJIpenchars2's format: 'label,x,y'"),
        ("dots.txt", "dots.txt holds no digits or letters in UJIpenchars2's format"),
        ("image.png", "image.png, line 1: not UJIpenchars2's format: "),
        ("uji.txt", "error: cannot write into "),  # its output folder is a file
    ]
    (tmp_path / "uji.txt").write_text(UJI_SAMPLE, encoding="utf-8")
    for name, expected in cases:
        out = tmp_path / ("short.txt" if name == "uji.txt" else "out")
        code, err, _ = run_in_process("ujipen.py", [str(tmp_path / name), str(out)], monkeypatch, capsys)
        assert code == 1 and expected in err, (name, code, err[-2000:])
    (tmp_path / "latin1.txt").write_bytes(UJI_SAMPLE.replace("ñ", "\xf1").encode("latin-1"))
    code, err, out = run_in_process("ujipen.py", [str(tmp_path / "latin1.txt"), str(tmp_path / "out")], monkeypatch,
                                    capsys)
    assert code == 0 and "Wrote 2 digits to " in out, err  # another encoding of its accented letters reads too
