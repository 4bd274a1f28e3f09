"""Portable (pure MLX) padding of trailing dimensions.

MLX's ``mx.pad`` covers 'constant', 'reflect' and 'edge' (PyTorch's
'replicate') with gradients; circular padding and negative (cropping)
constant padding are built from slices and concatenation so that MLX's
autodiff still applies.  This is the reference and fallback for the pad3d
Metal kernel.
"""

from __future__ import annotations

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


def _circular(x: mx.array, pairs: PadPairs) -> mx.array:
    lead = x.ndim - len(pairs)
    for axis, (lo, hi) in enumerate(pairs, start=lead):
        parts = []
        size = x.shape[axis]
        if lo > 0:
            parts.append(mx.take(x, mx.arange(size - lo, size), axis=axis))
        parts.append(x)
        if hi > 0:
            parts.append(mx.take(x, mx.arange(0, hi), axis=axis))
        if len(parts) > 1:
            x = mx.concatenate(parts, axis=axis)
    return x


def pad(x: mx.array, pairs: PadPairs, mode: str, value: float = 0.0) -> mx.array:
    """Pad the last ``len(pairs)`` dimensions of ``x``.

    Args:
        x: Input array.
        pairs: ``(low, high)`` for each trailing dimension, outermost first.
            Negative values crop before padding, as in PyTorch.
        mode: 'constant', 'reflect', 'replicate' or 'circular'.
        value: Fill value for 'constant'.
    """
    if any(lo < 0 or hi < 0 for lo, hi in pairs):
        x = crop(x, pairs)
        pairs = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pairs)
    if not any(lo or hi for lo, hi in pairs):
        return x
    if mode == "circular":
        return _circular(x, pairs)
    full = [(0, 0)] * (x.ndim - len(pairs)) + list(pairs)
    if mode == "constant":
        return mx.pad(x, full, mode="constant", constant_values=value)
    return mx.pad(x, full, mode="reflect" if mode == "reflect" else "edge")


def pad3d(x: mx.array, pairs: PadPairs, mode: str, value: float = 0.0) -> mx.array:
    """Pad (D, H, W) of an NCDHW array: the portable path behind the dispatcher."""
    return pad(x, pairs, mode, value)
