"""Launchers for the grouped conv3d kernels, joined by a custom vjp.

Arguments are assumed valid and supported (the dispatcher checks).  The
three convolution kernels share one ``params`` layout, built by
:func:`conv_params`; see the ``metal/grouped_conv3d*.metal`` files.
"""

from __future__ import annotations

import math

import mlx.core as mx

from .._args import Pairs, Triple
from ..ops.derivatives import convolve
from ..ops.plan import output_size
from . import library

# Threads a split reduction aims for: about what an M-series GPU keeps in
# flight (8-40 cores x ~1,000 threads), while each partial still sums
# thousands of products so the final mx.sum over chunks stays negligible.
# Reasoned, not measured (no Mac here); `python -m lucid_mlx.selftest`
# prints kernel against portable times to tune it.
REDUCTION_THREADS = 2**15


def conv_params(x_shape, stride: Triple, pads: Pairs, dilation: Triple, out: Triple, groups: int) -> list[int]:
    """stride, dilation, low pads, input D/H/W, output OD/OH/OW, groups."""
    return [*stride, *dilation, *(lo for lo, _ in pads), *x_shape[2:], *out, groups]


def reduction_chunks(outputs: int, rows: int) -> int:
    """How many chunks R a split reduction over ``rows`` rows uses."""
    return max(1, min(rows, math.ceil(REDUCTION_THREADS / max(outputs, 1))))


def _template(dtype: mx.Dtype, kernel: Triple) -> list[tuple[str, object]]:
    return [("T", dtype), ("KD", kernel[0]), ("KH", kernel[1]), ("KW", kernel[2])]


def conv_forward(x, w, stride, pads, dilation, groups) -> mx.array:
    """Launch ``grouped_conv3d``: one thread per output element."""
    n, c_out = x.shape[0], w.shape[0]
    out = output_size(x.shape[2:], w.shape[2:], stride, pads, dilation)
    params = mx.array(conv_params(x.shape, stride, pads, dilation, out, groups), dtype=mx.int32)
    return library.launch(
        "grouped_conv3d",
        [x, w, params],
        _template(x.dtype, w.shape[2:]),
        (out[2], out[1], n * c_out * out[0]),
        [(n, c_out, *out)],
        [x.dtype],
    )[0]


def conv_grad_input(gy, w, x_shape, stride, pads, dilation, groups) -> mx.array:
    """Launch ``grouped_conv3d_grad_input``: one thread per input element."""
    n, c_in, d, h, wd = x_shape
    params = conv_params(x_shape, stride, pads, dilation, gy.shape[2:], groups)
    return library.launch(
        "grouped_conv3d_grad_input",
        [gy, w, mx.array(params, dtype=mx.int32)],
        _template(gy.dtype, w.shape[2:]),
        (wd, h, n * c_in * d),
        [tuple(x_shape)],
        [gy.dtype],
    )[0]


def conv_grad_weight(gy, x, w_shape, stride, pads, dilation, groups) -> mx.array:
    """Launch ``grouped_conv3d_grad_weight`` and add its partial sums."""
    c_out = w_shape[0]
    taps = math.prod(w_shape[1:])
    r = reduction_chunks(c_out * taps, gy.shape[0] * gy.shape[2] * gy.shape[3])
    params = conv_params(x.shape, stride, pads, dilation, gy.shape[2:], groups) + [r]
    partial = library.launch(
        "grouped_conv3d_grad_weight",
        [gy, x, mx.array(params, dtype=mx.int32)],
        _template(x.dtype, w_shape[2:])[1:],  # sums only: no T in the body
        (taps, c_out, r),
        [(r, c_out, taps)],
        [mx.float32],
    )[0]
    return partial.sum(axis=0).astype(x.dtype).reshape(w_shape)


def bias_grad(gy: mx.array) -> mx.array:
    """Launch ``conv3d_grad_bias``: the per-channel sum of ``gy`` (C,)."""
    c = gy.shape[1]
    r = reduction_chunks(c, gy.shape[0] * gy.shape[2] * gy.shape[3])
    partial = library.launch(
        "conv3d_grad_bias",
        [gy, mx.array([r], dtype=mx.int32)],
        [],
        (c, r, 1),
        [(r, c)],
        [mx.float32],
    )[0]
    return partial.sum(axis=0).astype(gy.dtype)


def workspace(x_shape, w_shape, out_size: Triple, stride: Triple, dilation: Triple,
              backward: bool, itemsize: int) -> tuple[int, int]:
    """Bytes the kernels hold per sample and output-depth plane (and halo plane): none.

    Each thread reads its inputs in place; only the weight gradient's
    partial sums (R x C_out x taps floats) come on top, independent of the
    volume.
    """
    return 0, 0


def grad_input(cot, w, x_shape, stride: Triple, pads: Pairs, dilation: Triple, groups: int):
    return conv_grad_input(cot.astype(w.dtype), w, x_shape, stride, pads, dilation, groups)


def grad_weight(x, cot, w_shape, stride: Triple, pads: Pairs, dilation: Triple, groups: int):
    return conv_grad_weight(cot.astype(x.dtype), x, w_shape, stride, pads, dilation, groups)


def grads(x, w, cot, stride: Triple, pads: Pairs, dilation: Triple, groups: int):
    """Input and weight gradients for cotangent ``cot``, without running the forward."""
    return (grad_input(cot, w, x.shape, stride, pads, dilation, groups),
            grad_weight(x, cot, w.shape, stride, pads, dilation, groups))


def grouped_conv3d(x, w, stride: Triple, pads: Pairs, dilation: Triple, groups: int) -> mx.array:
    """Kernel grouped convolution (no bias); the gradient kernels give its derivatives.

    Args:
        x: (N, C_in, D, H, W) input.
        w: (C_out, C_in / groups, KD, KH, KW) weight of x's dtype.
        stride, dilation: per (D, H, W).
        pads: ``((dlo, dhi), (hlo, hhi), (wlo, whi))`` zero padding.
        groups: number of groups.

    Returns:
        (N, C_out, OD, OH, OW) output of x's dtype, differentiable to every
        order through :mod:`lucid_mlx.ops.derivatives`.
    """
    return convolve(x, w, (stride, pads, dilation, groups), conv_forward, grad_input, grad_weight,
                    grads)


def add_channel_bias(y: mx.array, bias: mx.array) -> mx.array:
    """``y + bias`` over the channel axis, with ``conv3d_grad_bias`` as its vjp."""

    @mx.custom_function
    def add(y, bias):
        return y + bias.reshape(1, -1, 1, 1, 1)

    @mx.custom_function
    def channel_sum(g):
        return bias_grad(g)

    @add.vjp
    def add_vjp(primals, cotangent, output):
        y, bias = primals
        return (cotangent, channel_sum(cotangent).astype(bias.dtype))

    @channel_sum.vjp
    def channel_sum_vjp(primals, cotangent, output):
        # The sum over (N, D, H, W) spreads its cotangent back over them.
        # One input: MLX passes it as the array itself, not in a tuple.
        c = cotangent[0] if isinstance(cotangent, (list, tuple)) else cotangent
        return mx.broadcast_to(c.reshape(1, -1, 1, 1, 1), primals.shape).astype(primals.dtype)

    return add(y, bias)
