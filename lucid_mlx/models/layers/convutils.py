"""Padding arithmetic of MONAI's convolution blocks, and the 3-D check every network makes."""

from __future__ import annotations

from typing import Sequence, Union

from ... import _args

_size = Union[int, Sequence[int]]


def check_spatial_dims(spatial_dims) -> int:
    """``spatial_dims`` must be 3: lucid_mlx is a 3-D toolkit."""
    if isinstance(spatial_dims, bool) or not isinstance(spatial_dims, int):
        raise TypeError(f"`spatial_dims` must be an int, got {spatial_dims!r}")
    if spatial_dims != 3:
        raise ValueError(f"`spatial_dims` must be 3 (lucid_mlx is 3-D), got {spatial_dims}")
    return spatial_dims


def _as_tuple(value: _size, name: str) -> tuple[int, ...]:
    # MONAI broadcasts scalars with NumPy; a 1-sequence behaves as a scalar too.
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    return _args.triple(value, name, minimum=None)


def same_padding(kernel_size: _size, dilation: _size = 1) -> Union[int, tuple[int, ...]]:
    """Padding ``(kernel_size - 1) / 2 * dilation`` that keeps the size at stride 1.

    Returns an int when both arguments are ints, as MONAI.

    Raises:
        ValueError: ``(kernel_size - 1) * dilation`` is odd somewhere (no
            symmetric padding keeps the size; MONAI raises NotImplementedError).
    """
    k, d = _as_tuple(kernel_size, "kernel_size"), _as_tuple(dilation, "dilation")
    if any((ki - 1) * di % 2 for ki, di in zip(k, d)):
        raise ValueError(f"same padding is not available for kernel_size={kernel_size!r} and "
                         f"dilation={dilation!r}: (kernel_size - 1) * dilation must be even")
    pads = tuple((ki - 1) * di // 2 for ki, di in zip(k, d))
    scalar = not isinstance(kernel_size, (tuple, list)) and not isinstance(dilation, (tuple, list))
    return pads[0] if scalar else pads


def stride_minus_kernel_padding(kernel_size: _size, stride: _size) -> Union[int, tuple[int, ...]]:
    """``stride - kernel_size``: the output padding MONAI gives transposed convolutions."""
    k, s = _as_tuple(kernel_size, "kernel_size"), _as_tuple(stride, "stride")
    pads = tuple(si - ki for ki, si in zip(k, s))
    scalar = not isinstance(kernel_size, (tuple, list)) and not isinstance(stride, (tuple, list))
    return pads[0] if scalar else pads
