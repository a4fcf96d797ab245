"""What the command-line entry points (train.py, python -m mnist_net.evaluate) share."""
from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager
from typing import Callable, NoReturn


def _to_devnull(stream) -> None:
    """Point stream's file descriptor at /dev/null, for what is still buffered and Python's flush at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)


def silence_stdout() -> None:
    """Send whatever is still printed to /dev/null: stdout's reader has gone (`| head` read its lines and exited)."""
    # Rather than only catching BrokenPipeError: Python flushes stdout once more at exit, which would fail
    # again. This is the Python docs' recipe (library/signal.html, "Note on SIGPIPE").
    _to_devnull(sys.stdout)


class ReaderMayLeave:
    """A text stream (stderr) whose reader may go: writes after it has gone are dropped, and that is remembered.

    With `2>&1 | head`, stderr is the closed pipe too: its first failed write (tqdm's bar, a message) raised
    out of training or out of the final evaluation and lost them. Now `gone` tells the run to stop, as it
    does when stdout's reader goes.
    """

    def __init__(self, stream):
        self._stream, self.gone = stream, False

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._drop()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop()

    def _drop(self) -> None:
        self.gone = True
        _to_devnull(self._stream)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def stderr_gone() -> bool:
    """Whether stderr's reader has gone (only known where sys.stderr is a ReaderMayLeave)."""
    return getattr(sys.stderr, "gone", False) is True


def _end_at_ctrl_c(signum, frame) -> None:
    # At once, rather than by raising KeyboardInterrupt: an extension that is loading can turn that into an
    # ImportError (numpy: "PyCapsule_Import could not import module", pybind11: "initialization failed"),
    # which would end in a traceback after all. Nothing has been written yet, so there is nothing to clean up.
    print("\nInterrupted.", file=sys.stderr, flush=True)
    os._exit(130)


def ctrl_c_ends_loading() -> None:
    """Until main_handles_ctrl_c(), a Ctrl-C ends the program at once with "Interrupted." and exit code 130."""
    # Only over Python's own handler: a program started with Ctrl-C ignored (a script's `cmd &`) keeps ignoring it.
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _end_at_ctrl_c)


def main_handles_ctrl_c() -> None:
    """From here on a Ctrl-C raises KeyboardInterrupt again, for main() to handle."""
    if signal.getsignal(signal.SIGINT) is _end_at_ctrl_c:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def interrupts_deferred():
    """Ctrl-C and SIGTERM that arrive inside the block take effect when it ends (KeyboardInterrupt then).

    For writing an epoch's files: a Ctrl-C between them left metrics for an epoch whose weights were never
    written, and the final evaluation then failed on the missing file. Python runs signal handlers in the
    main thread only, so swapping them there is reliable (masking the signal would not be: torch's threads
    could take it).
    """
    pending = []
    deferred = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(sig)
            if callable(handler):  # SIG_IGN (a script's `cmd &`) and SIG_DFL stay as they are
                deferred[sig] = handler
                signal.signal(sig, lambda signum, frame: pending.append(signum))
    except ValueError:  # not the main thread: signals cannot be handled here anyway
        pass
    try:
        yield
    finally:
        for sig, handler in deferred.items():
            signal.signal(sig, handler)
    if pending:
        raise KeyboardInterrupt


def run_command(main: Callable[[], int]) -> NoReturn:
    """Run a command's main() and exit with its code; what main does not handle ends the way a shell expects.

    Ctrl-C (or KeyboardInterrupt) outside main's own handling: "Interrupted." and 130. stdout's reader gone
    (`| head`): quietly, 1.
    """
    main_handles_ctrl_c()
    try:
        code = main()
        sys.stdout.flush()  # here, not at exit, where a closed pipe would print "Exception ignored ..."
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        silence_stdout()
        code = 1
    finally:  # also after argparse's exits (--help, a refused option), raised inside main
        # Done: a Ctrl-C (or kill) now could only interrupt torch's clean-up at exit, with a traceback from inside it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if callable(signal.getsignal(signal.SIGTERM)):  # the command's own handler (train.py: kill stops like Ctrl-C)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.exit(code)
