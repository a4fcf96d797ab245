"""What the command-line entry points (train.py, python -m mnist_net.evaluate) share."""
from __future__ import annotations

import os
import sys


def silence_stdout() -> None:
    """Send whatever is still printed to /dev/null: stdout's reader has gone (`| head` read its lines and exited)."""
    # Rather than only catching BrokenPipeError: Python flushes stdout once more at exit, which would fail
    # again. This is the Python docs' recipe (library/signal.html, "Note on SIGPIPE").
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
