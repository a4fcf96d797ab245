"""A Space installs requirements.txt only: the app must need nothing else, and training's packages stay out of it."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys

from conftest import ROOT

# Training's and the detector fitting's (tqdm too, but gradio's huggingface_hub brings it).
TRAINING_ONLY = ("numba", "llvmlite", "torchvision", "skimage", "HersheyFonts", "fontTools")


def requirement_names(path) -> set[str]:
    names = set()
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-r"):
            names.add(re.split(r"[<>=!~ \[]", line)[0].lower())
    return names


def test_the_app_needs_only_requirements_txt():
    """`import app` and a prediction in a process where importing numba or torchvision fails; then every
    third-party import of app.py and of the mnist_net modules it loaded, mapped to its distribution, is in
    requirements.txt. Training's packages are left out of that check: data.py imports torchvision inside the
    function that reads MNIST, which the app never calls."""
    script = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {TRAINING_ONLY!r}:
            raise ImportError(f"{{name}} is not in requirements.txt")
sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(ROOT)!r})
import app
from mnist_net.inference import analyze
from PIL import Image
digit = Image.open({str(ROOT / 'examples' / 'mnist_test_0000_digit7.png')!r})
print("digit", analyze(app.MODEL, digit).prediction)
print("modules", " ".join(sorted({{m.split(".")[0] for m in sys.modules}})))
print("files", " ".join(m.__file__ for n, m in list(sys.modules.items())
                        if n.startswith("mnist_net") and getattr(m, "__file__", None)))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line.startswith(("digit", "modules", "files")))
    assert lines["digit"] == "7"
    assert not set(lines["modules"].split()) & set(TRAINING_ONLY)
    imported = set()
    for path in [ROOT / "app.py", *lines["files"].split()]:
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names
                   and m not in ("mnist_net", "app", *TRAINING_ONLY)}
    dists = importlib.metadata.packages_distributions()
    needed = {dists[m][0].lower() for m in third_party}
    listed = requirement_names("requirements.txt")
    assert needed and needed <= listed, needed - listed
    assert not listed & set(TRAINING_ONLY)
    assert {"numba", "torchvision", "tqdm", "scikit-image", "fonttools", "hershey-fonts"} <= requirement_names(
        "requirements-train.txt")


def test_ci_installs_the_handwriting_fonts_the_detector_is_fitted_and_measured_on():
    from mnist_net.drawings import FONT_PACKAGES

    ci = (ROOT / ".ci" / "run").read_text()
    line = next(line for line in ci.splitlines() if line.startswith("FONTS="))
    fonts = subprocess.run(["bash", "-c", f'{line}; echo "$FONTS"'], cwd=ROOT, capture_output=True, text=True, check=True)
    assert fonts.stdout.split() == FONT_PACKAGES.split() and "apt-get install -y -qq $FONTS" in ci
