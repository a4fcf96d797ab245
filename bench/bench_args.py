"""argparse types shared by the bench scripts: a count that makes no sense is refused up front."""
from __future__ import annotations

import argparse


def count(minimum: int):
    """argparse type: an int >= minimum, else a one-line usage error instead of a later traceback."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse
