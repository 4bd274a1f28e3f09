"""Padding: ``pad``, PyTorch's ``F.pad`` for NCDHW and other channels-first arrays."""

from __future__ import annotations

from typing import Optional, Sequence

import mlx.core as mx

from ... import _args
from ..._args import PAD_MODES
from ...ops import dispatch as _dispatch
from ...ops import pad as _pad

__all__ = ["pad", "PAD_MODES"]


def pad(
    input: mx.array,
    pad: Sequence[int],
    mode: str = "constant",
    value: Optional[float] = None,
) -> mx.array:
    """Pads the trailing dimensions of ``input``, like ``torch.nn.functional.pad``.

    ``pad`` lists (low, high) amounts starting from the **last** dimension:
    ``(w_lo, w_hi, h_lo, h_hi, d_lo, d_hi)`` pads W, H and D.

    Args:
        input (array): Input array.
        pad (tuple of int): Even number of amounts; negative amounts crop.
        mode (str): ``'constant'``, ``'reflect'`` (mirror without repeating the
            edge), ``'replicate'`` (repeat the edge) or ``'circular'`` (wrap
            around). Default: ``'constant'``.
        value (float, optional): Fill value for ``'constant'``. Default: ``0``.

    The non-constant modes pad the last 1, 2 or 3 dimensions of a batched
    (N, C, ...) or unbatched (C, ...) input, as in PyTorch; 'reflect' needs
    each amount smaller than that dimension and 'circular' no larger than it.

    Example:
        >>> x = mx.arange(8.0).reshape(1, 1, 2, 2, 2)
        >>> pad(x, (1, 1, 1, 1, 1, 1), mode="circular").shape
        (1, 1, 4, 4, 4)
    """
    if not isinstance(input, mx.array):
        raise TypeError(f"`input` must be an mlx.core.array, got {type(input).__name__}")
    if not isinstance(pad, (tuple, list)) or not all(_args.is_int(p) for p in pad):
        raise TypeError(f"`pad` must be a tuple of ints, got {pad!r}")
    if len(pad) % 2 != 0 or len(pad) // 2 > input.ndim:
        raise ValueError(
            f"`pad` must have an even length of at most 2 * input.ndim = {2 * input.ndim}, "
            f"got {pad!r} for input of shape {tuple(input.shape)}"
        )
    if mode not in PAD_MODES:
        raise ValueError(f"`mode` must be one of {PAD_MODES}, got {mode!r}")
    dims = len(pad) // 2
    # PyTorch's order is last dimension first; ours is outermost first.
    pairs = tuple((pad[2 * i], pad[2 * i + 1]) for i in reversed(range(dims)))
    if mode == "constant":
        return _pad.pad(input, pairs, mode, 0.0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f"padding mode {mode!r} doesn't take a `value`, got value={value!r}")
    if dims > 3 or input.ndim not in (dims + 1, dims + 2):
        raise ValueError(
            f"{mode!r} padding of the last {dims} dimension(s) needs a {dims + 1}-D or "
            f"{dims + 2}-D input, got shape {tuple(input.shape)}"
        )
    sizes = input.shape[input.ndim - dims :]
    for size, (lo, hi) in zip(sizes, pairs):
        if mode == "reflect" and (lo >= size or hi >= size):
            raise ValueError(
                f"'reflect' padding must be smaller than the padded dimension, got pad={pad!r} "
                f"for input of shape {tuple(input.shape)}"
            )
        if mode == "circular" and (lo > size or hi > size):
            raise ValueError(
                f"'circular' padding must not exceed the padded dimension, got pad={pad!r} "
                f"for input of shape {tuple(input.shape)}"
            )
        if mode == "replicate" and size == 0:
            raise ValueError(f"'replicate' padding needs non-empty dimensions, got shape {tuple(input.shape)}")
    if dims == 3 and input.ndim == 5:
        if any(lo < 0 or hi < 0 for lo, hi in pairs):
            input = _pad.crop(input, pairs)
            pairs = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pairs)
        return _dispatch.pad3d(input, pairs, mode)
    return _pad.pad(input, pairs, mode)
