"""Pooling: ``max_pool3d``, ``avg_pool3d`` and the adaptive pair (modules in
:mod:`lucid_mlx.nn.pooling`)."""

from __future__ import annotations

from typing import Optional, Sequence

import mlx.core as mx

from ... import _args
from ..._args import _opt_size_3, _size_3
from ...ops import pool as _pool


def _pool_input(input, op: str, *, adaptive: bool = False) -> mx.array:
    """A 4-D or 5-D input whose non-batch dimensions are not empty, as PyTorch requires.

    Only a 5-D input's first dimension is a batch for max and average
    pooling; the adaptive ones also take a 4-D input's as one (PyTorch 2.13).
    """
    x = _args.check_array(input, "input", (4, 5), "(N, C, D, H, W) or (C, D, H, W)")
    first = 1 if adaptive or x.ndim == 5 else 0
    if any(n == 0 for n in x.shape[first:]):
        raise ValueError(f"{op}: the non-batch dimensions of `input` must be non-empty, "
                         f"got shape {tuple(x.shape)}")
    return x


def _check_output(x: mx.array, out: Sequence[int], op: str, **given) -> None:
    if any(o < 1 for o in out):
        detail = ", ".join(f"{n}={v!r}" for n, v in given.items())
        raise ValueError(
            f"{op}: input of shape {tuple(x.shape)} is too small for {detail}: "
            f"the output would be {tuple(out)}"
        )


def max_pool3d(
    input: mx.array,
    kernel_size: _size_3,
    stride: Optional[_size_3] = None,
    padding: _size_3 = 0,
    dilation: _size_3 = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """3-D max pooling of an NCDHW array, as ``torch.nn.functional.max_pool3d``.

    See :class:`lucid_mlx.nn.MaxPool3d` for the arguments and the output size.

    Returns:
        The pooled array, and with ``return_indices`` also the flat index
        ``d * H * W + h * W + w`` of each maximum in its (D, H, W) input
        plane (int64), as PyTorch's ``max_pool3d``.
    """
    x = _pool_input(input, "max_pool3d")
    k, s, p, d = _args.pool_args(kernel_size, stride, padding, dilation)
    ceil_mode = _args.check_bool(ceil_mode, "ceil_mode")
    return_indices = _args.check_bool(return_indices, "return_indices")
    out = _pool.pool_output_shape(x.shape[-3:], k, s, p, d, ceil_mode)
    _check_output(x, out, "max_pool3d", kernel_size=kernel_size, stride=stride,
                  padding=padding, dilation=dilation)
    return _pool.max_pool3d(x, k, s, p, d, ceil_mode, return_indices)


def avg_pool3d(
    input: mx.array,
    kernel_size: _size_3,
    stride: Optional[_size_3] = None,
    padding: _size_3 = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
) -> mx.array:
    """3-D average pooling of an NCDHW array, as ``torch.nn.functional.avg_pool3d``.

    See :class:`lucid_mlx.nn.AvgPool3d` for the arguments and the output size.
    """
    x = _pool_input(input, "avg_pool3d")
    k, s, p, _ = _args.pool_args(kernel_size, stride, padding, 1)
    if divisor_override is not None:
        divisor_override = _args.check_int(divisor_override, "divisor_override", minimum=1)
    ceil_mode = _args.check_bool(ceil_mode, "ceil_mode")
    count_include_pad = _args.check_bool(count_include_pad, "count_include_pad")
    out = _pool.pool_output_shape(x.shape[-3:], k, s, p, (1, 1, 1), ceil_mode)
    _check_output(x, out, "avg_pool3d", kernel_size=kernel_size, stride=stride, padding=padding)
    return _pool.avg_pool3d(x, k, s, p, ceil_mode, count_include_pad, divisor_override)


def _adaptive_sizes(x: mx.array, output_size) -> list[int]:
    """The (D, H, W) output size, ``None`` entries taking the input's."""
    return [n if o is None else o
            for o, n in zip(_args.adaptive_output_size(output_size), x.shape[-3:])]


def adaptive_avg_pool3d(input: mx.array, output_size: _opt_size_3) -> mx.array:
    """Adaptive 3-D average pooling, as ``torch.nn.functional.adaptive_avg_pool3d``.

    See :class:`lucid_mlx.nn.AdaptiveAvgPool3d` for the bins.
    """
    x = _pool_input(input, "adaptive_avg_pool3d", adaptive=True)
    return _pool.adaptive_avg_pool3d(x, _adaptive_sizes(x, output_size))


def adaptive_max_pool3d(input: mx.array, output_size: _opt_size_3,
                        return_indices: bool = False):
    """Adaptive 3-D max pooling, as ``torch.nn.functional.adaptive_max_pool3d``.

    See :class:`lucid_mlx.nn.AdaptiveMaxPool3d`; ``return_indices`` as in
    :func:`max_pool3d`.
    """
    x = _pool_input(input, "adaptive_max_pool3d", adaptive=True)
    out = _adaptive_sizes(x, output_size)
    return_indices = _args.check_bool(return_indices, "return_indices")
    return _pool.adaptive_max_pool3d(x, out, return_indices)
