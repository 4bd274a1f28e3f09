"""Checks for the flag, number and choice arguments of the losses, inferers and metrics.

The layer arguments (sizes, paddings, dtypes, devices) are checked in
``_args``; the MONAI-style pipeline pieces take a different kind of argument
(bools, real numbers, string choices), checked here in the same way: a
``TypeError`` for a wrong type, a ``ValueError`` for a wrong value, naming the
argument, the value given and what was expected.
"""

from __future__ import annotations

import math
from typing import Sequence


def check_bool(value, name: str) -> bool:
    # Accepting 0/1 or None would hide a swapped positional argument.
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool, got {value!r} ({type(value).__name__})")
    return value


def check_float(
    value,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
) -> float:
    """A finite real number (int or float, not bool) within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{name}` must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}, got {value!r}")
    if below is not None and value >= below:
        raise ValueError(f"`{name}` must be < {below}, got {value!r}")
    return value


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}")
    return value
