"""Argparse types for the numbers of the command line (ports, counts, amounts): a bad
one is refused by the parser in one line, before anything starts.  Stdlib only, so
every command can use them without loading the config's libraries."""

from __future__ import annotations

import argparse
import math


def arg_port(text: str) -> int:
    """An argparse type: a TCP port, 0 (a free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: 0 to 65535 (0 picks a free one)")
    return port


def arg_count(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n} is below 0")
    return n


def arg_amount(text: str) -> float:
    """An argparse type: a finite number, 0 or more (a speed, a size)."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(x) or x < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number 0 or more")
    return x
