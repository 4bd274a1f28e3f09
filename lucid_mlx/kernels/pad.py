"""Launchers for the pad3d kernel and its adjoint, joined by a custom vjp.

Arguments are assumed valid and supported (the dispatcher checks); see
``metal/pad3d.metal`` and ``metal/pad3d_grad.metal`` for the kernels.
"""

from __future__ import annotations

import mlx.core as mx

from .._args import PAD_MODES, Pairs
from . import library


def padded_shape(shape: tuple[int, ...], pairs: Pairs) -> tuple[int, ...]:
    """The NCDHW shape of ``pad3d``'s output."""
    return (*shape[:2], *(n + lo + hi for n, (lo, hi) in zip(shape[2:], pairs)))


def _template(dtype: mx.Dtype, mode: str) -> list[tuple[str, object]]:
    return [("T", dtype), ("MODE", PAD_MODES.index(mode))]


def pad3d_forward(x: mx.array, pairs: Pairs, mode: str, value: float = 0.0) -> mx.array:
    """Launch ``pad3d_<mode>``: one thread per output element."""
    shape = padded_shape(x.shape, pairs)
    n, c, od, oh, ow = shape
    params = mx.array([lo for lo, _ in pairs] + [od, oh, ow], dtype=mx.int32)
    fill = mx.array([value], dtype=mx.float32)
    return library.launch(
        f"pad3d_{mode}",
        [x, params, fill],
        _template(x.dtype, mode),
        (ow, oh, n * c * od),
        [shape],
        [x.dtype],
    )[0]


def pad3d_adjoint(gy: mx.array, pairs: Pairs, mode: str, shape: tuple[int, ...]) -> mx.array:
    """Launch ``pad3d_grad_<mode>``: the gradient w.r.t. the unpadded input."""
    n, c, d, h, w = shape
    params = mx.array([lo for lo, _ in pairs] + [d, h, w], dtype=mx.int32)
    return library.launch(
        f"pad3d_grad_{mode}",
        [gy, params],
        _template(gy.dtype, mode),
        (w, h, n * c * d),
        [shape],
        [gy.dtype],
    )[0]


def pad3d(x: mx.array, pairs: Pairs, mode: str, value: float = 0.0) -> mx.array:
    """Kernel ``pad3d`` with its adjoint kernel as the vjp.

    Args:
        x: (N, C, D, H, W) array of float32, float16 or bfloat16.
        pairs: ``((dlo, dhi), (hlo, hhi), (wlo, whi))``.
        mode: 'constant', 'reflect', 'replicate' or 'circular'.
        value: Fill value of 'constant' mode; it gets no gradient.

    Returns:
        The padded (N, C, D + dlo + dhi, H + hlo + hhi, W + wlo + whi) array.
    """

    @mx.custom_function
    def padded(x):
        return pad3d_forward(x, pairs, mode, value)

    @padded.vjp
    def padded_vjp(primals, cotangent, output):
        # With a single input MLX passes the primal and takes the gradient
        # bare, not in a tuple.
        x = primals
        return pad3d_adjoint(cotangent.astype(x.dtype), pairs, mode, x.shape)

    return padded(x)
