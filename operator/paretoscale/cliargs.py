"""Numbers on the command line: finite, in range, or exit 2 saying what to give instead.

argparse calls a flag's `type=` function on its text; an `argparse.ArgumentTypeError` becomes
`error: argument --rate: ...` on stderr and exit status 2. Python's float() accepts `nan`,
`inf` and `1e999` (infinity); none of them is a valid amount of anything here, and neither is a
value outside the flag's range (a request rate above a million per second, a negative price).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable

MAX_RATE_RPS = 1e6  # requests/s: a hundred times the busiest single deployment we know of
MAX_USD_PER_GPU_HOUR = 1e4  # USD per GPU-hour: far above any on-demand price
MAX_SECONDS = 1e9  # ~31 years
MAX_SEED = 2**32 - 1  # numpy's SeedSequence range for a single integer


def _bound(x: float) -> str:
    return f"{int(x):,}" if x == int(x) and abs(x) < 1e15 else f"{x:g}"


def describe_range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    """`> 0 and <= 1,000,000`, `from 0 to 1`, `>= 0`."""
    if lo is not None and hi is not None and not lo_open and not hi_open:
        return f"from {_bound(lo)} to {_bound(hi)}"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {_bound(lo)}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {_bound(hi)}")
    return " and ".join(parts) or "finite"


def check_number(
    value: float,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> str | None:
    """What is wrong with `value` for this range (None when nothing is)."""
    if not math.isfinite(value):
        return f"{value} is not a finite number"
    if lo is not None and (value <= lo if lo_open else value < lo):
        return f"{value:g} is out of range"
    if hi is not None and (value >= hi if hi_open else value > hi):
        return f"{value:g} is out of range"
    return None


def number(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    unit: str = "",
) -> Callable[[str], float]:
    """An argparse `type=` for a finite float in [lo, hi] (open ends with lo_open/hi_open)."""
    want = describe_range(lo, hi, lo_open, hi_open) + (f" ({unit})" if unit else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a number; give a number {want}"
            ) from None
        problem = check_number(value, lo, hi, lo_open=lo_open, hi_open=hi_open)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}; give a number {want}")
        return value

    parse.__name__ = "number"
    return parse


def integer(lo: int | None = None, hi: int | None = None, unit: str = "") -> Callable[[str], int]:
    """An argparse `type=` for an integer in [lo, hi]."""
    want = describe_range(lo, hi, False, False) + (f" ({unit})" if unit else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number; give a whole number {want}"
            ) from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} is out of range; give a whole number {want}")
        return value

    parse.__name__ = "integer"
    return parse


def seed() -> Callable[[str], int]:
    """An argparse `type=` for a random seed."""
    return integer(0, MAX_SEED)


def port() -> Callable[[str], int]:
    """An argparse `type=` for a TCP port (0: any free port)."""
    return integer(0, 65535)


def gpu_price(item: str) -> tuple[str, float]:
    """`H100=2.69` -> ("H100", 2.69); ValueError saying what to give for anything else."""
    gpu, sep, text = item.partition("=")
    example = "such as H100=2.69"
    if not sep or not gpu:
        raise ValueError(f"expected TYPE=USD_PER_GPU_HOUR {example}, got {item!r}")
    want = f"a price {describe_range(0, MAX_USD_PER_GPU_HOUR, False, False)} USD per GPU-hour"
    try:
        usd = float(text)
    except ValueError:
        raise ValueError(f"{gpu}: {text!r} is not a number; give {want}, {example}") from None
    problem = check_number(usd, 0, MAX_USD_PER_GPU_HOUR)
    if problem:
        raise ValueError(f"{gpu}: {problem}; give {want}, {example}")
    return gpu, usd


def unwritable(path: str) -> str | None:
    """Why a file cannot be created at `path` (None when its folder exists and is writable):
    checked before a long computation whose result goes there."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"cannot write {path}: no folder {folder}"
    if not os.access(folder, os.W_OK):
        return f"cannot write {path}: the folder {folder} is not writable"
    if os.path.isdir(path):
        return f"cannot write {path}: it is a folder"
    return None
