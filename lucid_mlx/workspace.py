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
means unset, as for every lucid_mlx variable), and the device's default
(:func:`default_workspace_limit`).
"""

from __future__ import annotations

import re

import mlx.core as mx

from . import _env

ENV_VAR = "LUCID_MLX_WORKSPACE_LIMIT"
DEFAULT_LIMIT = 256 * 2**20
# On Metal the default is this share of the GPU's recommended working set.
WORKING_SET_SHARE = 8

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


def _metal_working_set() -> int | None:
    """The GPU's recommended working set in bytes when convolutions run on Metal, else None."""
    from .ops import dispatch  # its device checks, the ones the tests replace

    if not (dispatch.metal_available() and dispatch.stream_on_gpu()):
        return None
    info = mx.device_info(mx.gpu) if hasattr(mx, "device_info") else mx.metal.device_info()
    size = info.get("max_recommended_working_set_size")
    return int(size) if size else None


def default_workspace_limit() -> int:
    """The budget when none is set: it follows the device the convolutions run on.

    On the CPU, 256 MiB (chosen on a 24 GB machine: the 1x32x64^3 layer
    then peaks at 274 MiB instead of 2.8 GB in the unsplit time, see the
    README's memory table).  On Metal, an
    eighth of the GPU's recommended working set (MLX's
    ``max_recommended_working_set_size``, reported as 75-80% of the
    unified memory), never less than 256 MiB: about 1.4 GiB on a 16 GB Mac
    (12 GB working set), 12 GiB on a 128 GB one (103 GB).  A convolution's temporaries live beside the whole model's
    parameters, the activations kept for the backward pass and MLX's buffer
    cache, and going past the working set makes macOS page GPU memory, many
    times slower than splitting; an eighth leaves the rest to them while
    keeping the layers of a large Mac unsplit (splitting only costs time).
    """
    working_set = _metal_working_set()
    if working_set is None:
        return DEFAULT_LIMIT
    return max(DEFAULT_LIMIT, working_set // WORKING_SET_SHARE)


def get_workspace_limit() -> int | None:
    """The current budget in bytes (``None``: unlimited).

    Default: :func:`default_workspace_limit` (256 MiB on the CPU).
    """
    if _limit is not _UNSET:
        return _limit  # type: ignore[return-value]
    text = _env.read(ENV_VAR)
    if text is None:
        return default_workspace_limit()
    return _parse(text)


def reset_workspace_limit() -> None:
    """Forget :func:`set_workspace_limit`; the environment or default applies again."""
    global _limit
    _limit = _UNSET
