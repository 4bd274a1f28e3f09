"""The workspace budget: how much temporary memory one conv3d may use.

MLX unfolds the input (im2col) for a convolution's forward pass and again
for its weight gradient: on the CPU a 1x32x64^3 -> 32, k=3, padding 1 layer
peaks at about 90x its input forward+backward through ``mx.conv3d`` (the
README's benchmark table has the figures).  lucid_mlx splits such a convolution into batch
chunks and output-depth slabs so that each piece's temporaries fit in this
budget (see :mod:`lucid_mlx.ops.split`).

The budget is read from, in order: :func:`set_workspace_limit`, the
``LUCID_MLX_WORKSPACE_LIMIT`` environment variable (bytes, or a number with
a ``K``, ``M`` or ``G`` suffix for binary multiples, or ``none``; empty
means unset, as for every lucid_mlx variable), and the default of 256 MiB.
"""

from __future__ import annotations

import re

from . import _env

ENV_VAR = "LUCID_MLX_WORKSPACE_LIMIT"
DEFAULT_LIMIT = 256 * 2**20

_UNSET = object()
_limit: object = _UNSET

_SUFFIXES = {"K": 2**10, "M": 2**20, "G": 2**30}


_NUMBER = re.compile(r"([0-9]+)([KMG]?)", re.IGNORECASE | re.ASCII)


def _parse(text: str) -> int | None:
    if text.lower() == "none":
        return None
    # ASCII digits only: int() would also take other scripts' digits.
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise ValueError(
            f"environment variable {ENV_VAR} must be a number of bytes >= 0, optionally "
            f"with a K, M or G suffix, or 'none'; got {text!r}"
        )
    number, suffix = match.groups()
    return int(number) * _SUFFIXES.get(suffix.upper(), 1)


def set_workspace_limit(nbytes: int | None) -> None:
    """Set the temporary-memory budget of one conv3d call, in bytes.

    Args:
        nbytes (int or None): The budget. ``0`` splits as finely as possible
            (one output-depth plane of one sample at a time); ``None``
            removes the limit, so every convolution runs unsplit.

    Raises:
        TypeError: ``nbytes`` is not an int or None.
        ValueError: ``nbytes`` is negative.
    """
    global _limit
    if nbytes is not None and (not isinstance(nbytes, int) or isinstance(nbytes, bool)):
        raise TypeError(
            f"`nbytes` must be an int or None, got {nbytes!r} ({type(nbytes).__name__})"
        )
    if nbytes is not None and nbytes < 0:
        raise ValueError(f"`nbytes` must be >= 0, got {nbytes}")
    _limit = nbytes


def get_workspace_limit() -> int | None:
    """The current budget in bytes (``None``: unlimited). Default: 256 MiB."""
    if _limit is not _UNSET:
        return _limit  # type: ignore[return-value]
    text = _env.read(ENV_VAR)
    if text is None:
        return DEFAULT_LIMIT
    return _parse(text)


def reset_workspace_limit() -> None:
    """Forget :func:`set_workspace_limit`; the environment or default applies again."""
    global _limit
    _limit = _UNSET
