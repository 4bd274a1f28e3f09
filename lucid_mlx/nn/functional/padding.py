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
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 != 0 or len(pad) // 2 > input.ndim:
        raise ValueError(
            f"`pad` must have an even length of at most 2 * input.ndim = {2 * input.ndim}, "
            f"got {pad!r} for input of shape {tuple(input.shape)}"
        )
    if mode not in PAD_MODES:
        raise ValueError(f"`mode` must be one of {PAD_MODES}, got {mode!r}")
    if value is not None:
        if not _args.is_number(value):
            raise TypeError(f"`value` must be a number or None, got {value!r}")
        value = float(value)
    dims = len(pad) // 2
    # PyTorch's order is last dimension first; ours is outermost first.
    pairs = tuple((pad[2 * i], pad[2 * i + 1]) for i in reversed(range(dims)))
    if mode != "constant":
        if value is not None and value != 0:
            raise ValueError(f"padding mode {mode!r} doesn't take a `value`, got value={value!r}")
        if dims > 3 or input.ndim not in (dims + 1, dims + 2):
            raise ValueError(
                f"{mode!r} padding of the last {dims} dimension(s) needs a {dims + 1}-D or "
                f"{dims + 2}-D input, got shape {tuple(input.shape)}"
            )
    _check_amounts(mode, input.shape[input.ndim - dims :], pairs, pad, input.shape)
    lead = input.shape[: input.ndim - dims]
    padded = [n + lo + hi for n, (lo, hi) in zip(input.shape[input.ndim - dims :], pairs)]
    _args.check_size((*lead, *padded), input.dtype.size, "the output of pad")
    if mode == "constant":
        return _pad.pad(input, pairs, mode, 0.0 if value is None else value)
    if dims == 3 and input.ndim == 5:
        return _pad.with_crops(_dispatch.pad3d, input, pairs, mode)
    return _pad.pad(input, pairs, mode)


def _check_amounts(mode: str, sizes, pairs, pad, shape) -> None:
    """PyTorch's limits on the (low, high) amounts; negative amounts crop.

    'reflect' and 'replicate' pad and crop relative to the input's borders
    (pad ``(1, -2)`` on ``[0, 1, 2]`` gives ``[1, 0]``): no size may become
    negative, and, as PyTorch checks, not every padded dimension may become
    empty.  'constant' and 'circular' crop first and may not crop more than
    a dimension holds; 'circular' then wraps the cropped array, at most once.
    (Past those limits PyTorch 2.13's circular pad raises for some batch
    sizes and returns uninitialised memory for others; here it is an error.)
    """
    where = f"got pad={pad!r} for input of shape {tuple(shape)}"
    if any(abs(v) > _args.INT_LIMIT for v in pad):
        raise ValueError(f"`pad` amounts must be within +-(2**31 - 1), MLX's 32-bit sizes, {where}")
    outs = []
    for size, (lo, hi) in zip(sizes, pairs):
        kept = size + min(lo, 0) + min(hi, 0)
        outs.append(size + lo + hi)
        if mode in ("constant", "circular") and kept < 0:
            raise ValueError(f"negative padding crops more than the dimension of size {size} "
                             f"holds ({-min(lo, 0) - min(hi, 0)}), {where}")
        if mode == "reflect" and (lo >= size or hi >= size):
            raise ValueError(f"'reflect' padding must be smaller than the padded dimension, {where}")
        if mode == "replicate" and size == 0:
            raise ValueError(f"'replicate' padding needs non-empty dimensions, got shape {tuple(shape)}")
        if mode == "circular" and (lo > kept or hi > kept):
            raise ValueError(f"'circular' padding must not exceed the padded dimension "
                             f"({kept} after cropping), {where}")
    if mode in ("reflect", "replicate") and (min(outs) < 0 or max(outs) < 1):
        raise ValueError(f"{mode!r} padding would leave the padded dimensions {tuple(sizes)} "
                         f"with {tuple(outs)} elements, {where}")
