"""Shared fixtures: real MNIST from $MNIST_DATA_DIR (CI: ../shared/mnist), the shipped model."""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnist_net.data import load_mnist  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Gradio's file cache is /tmp/gradio for every app on the machine; the cache-sweep test deletes what it
# finds there. A folder of the suite's own (set before gradio is imported; subprocesses inherit it).
if "GRADIO_TEMP_DIR" not in os.environ:
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="mnist_net-tests-gradio-")
    atexit.register(shutil.rmtree, os.environ["GRADIO_TEMP_DIR"], ignore_errors=True)
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # CI has no internet beyond package registries


def missing(what: str) -> None:
    """A needed resource is absent: a failure in CI, a skip on a developer machine."""
    if IN_CI:
        pytest.fail(f"{what} (CI must provide it)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def data_dir() -> str:
    candidates = [os.environ.get("MNIST_DATA_DIR"), str(ROOT.parent / "shared" / "mnist"), str(ROOT / "data")]
    for c in candidates:
        if c and (Path(c) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
            return c
    missing(f"MNIST not found in any of {[c for c in candidates if c]}")


@pytest.fixture(scope="session")
def test_set(data_dir):
    return load_mnist(data_dir, train=False)


@pytest.fixture(scope="session")
def train_set(data_dir):
    return load_mnist(data_dir, train=True)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_module():
    import app

    assert app.MODEL is not None, app.MODEL_ERROR
    return app


@pytest.fixture(scope="session")
def server(app_module):
    """The real demo, launched once on a free local port."""
    port = free_port()
    app_module.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                           css=app_module.CSS)
    yield f"http://127.0.0.1:{port}/"
    app_module.demo.close()


def pytest_sessionfinish(session, exitstatus):
    """Under CI, any skip is a failure: a test that did not run checked nothing."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if IN_CI and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; in CI every test must run.", red=True)
        session.exitstatus = 1
