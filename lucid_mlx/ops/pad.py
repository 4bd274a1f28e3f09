"""Portable (pure MLX) padding of trailing dimensions.

MLX's ``mx.pad`` covers 'constant', 'reflect' and 'edge' (PyTorch's
'replicate') with gradients; circular padding and negative (cropping)
amounts are built from slices and concatenation so that MLX's autodiff
still applies.  This is the reference and fallback for the pad3d Metal
kernel.  The amounts arrive checked against PyTorch's limits by
:func:`lucid_mlx.nn.functional.pad`.
"""

from __future__ import annotations

from typing import Callable

import mlx.core as mx

from .._args import PadPairs


def crop(x: mx.array, pairs: PadPairs) -> mx.array:
    """Apply the negative parts of ``pairs`` (PyTorch crops for those)."""
    lead = x.ndim - len(pairs)
    index = [slice(None)] * lead
    for axis, (lo, hi) in enumerate(pairs, start=lead):
        size = x.shape[axis]
        index.append(slice(max(-lo, 0), size - max(-hi, 0)))
    return x[tuple(index)]


def with_crops(pad_fn: Callable[..., mx.array], x: mx.array, pairs: PadPairs, mode: str,
               value: float = 0.0) -> mx.array:
    """``pad_fn`` (which takes non-negative amounts) with PyTorch's negative amounts.

    'reflect' and 'replicate' read relative to the input's borders, so they
    pad first and crop the padded array; 'constant' and 'circular' crop the
    input first ('circular' then wraps what is left, as PyTorch does).
    """
    positive = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pairs)
    if positive == tuple(pairs):
        return pad_fn(x, positive, mode, value)
    if mode in ("reflect", "replicate"):
        return crop(pad_fn(x, positive, mode, value), pairs)
    return pad_fn(crop(x, pairs), positive, mode, value)


def _circular(x: mx.array, pairs: PadPairs) -> mx.array:
    # Slices, not mx.take: MLX 0.32's vjp of a take dies with SIGFPE when
    # the array is empty (a batch of 0), slices' vjps do not.
    lead = x.ndim - len(pairs)
    for axis, (lo, hi) in enumerate(pairs, start=lead):
        size = x.shape[axis]
        before = (slice(None),) * axis
        parts = []
        if lo > 0:
            parts.append(x[before + (slice(size - lo, size),)])
        parts.append(x)
        if hi > 0:
            parts.append(x[before + (slice(0, hi),)])
        if len(parts) > 1:
            x = mx.concatenate(parts, axis=axis)
    return x


def _pad(x: mx.array, pairs: PadPairs, mode: str, value: float = 0.0) -> mx.array:
    if not any(lo or hi for lo, hi in pairs):
        return x
    if mode == "circular":
        return _circular(x, pairs)
    full = [(0, 0)] * (x.ndim - len(pairs)) + list(pairs)
    if mode == "constant":
        return mx.pad(x, full, mode="constant", constant_values=value)
    return mx.pad(x, full, mode="reflect" if mode == "reflect" else "edge")


def pad(x: mx.array, pairs: PadPairs, mode: str, value: float = 0.0) -> mx.array:
    """Pad the last ``len(pairs)`` dimensions of ``x``.

    Args:
        x: Input array.
        pairs: ``(low, high)`` for each trailing dimension, outermost first.
            Negative values crop, as in PyTorch (see :func:`with_crops`).
        mode: 'constant', 'reflect', 'replicate' or 'circular'.
        value: Fill value for 'constant'.
    """
    return with_crops(_pad, x, pairs, mode, value)


def pad3d(x: mx.array, pairs: PadPairs, mode: str, value: float = 0.0) -> mx.array:
    """Pad (D, H, W) of an NCDHW array: the portable path behind the dispatcher."""
    return pad(x, pairs, mode, value)
