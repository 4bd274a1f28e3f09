"""Convolutions: ``conv3d`` and ``conv_transpose3d`` (modules in :mod:`lucid_mlx.nn.conv`,
:mod:`lucid_mlx.nn.conv_transpose`)."""

from __future__ import annotations

from typing import Optional

import mlx.core as mx

from ... import _args
from ..._args import _padding_3, _size_3
from ...ops import conv3d as _conv3d
from ...ops.plan import output_size
from ...ops import conv_transpose as _ct


def _conv_input(input: mx.array) -> tuple[mx.array, bool]:
    """Accept 5-D (N, C, D, H, W) or unbatched 4-D (C, D, H, W) input, as PyTorch."""
    _args.check_array(input, "input", (4, 5), "(N, C_in, D, H, W) or (C_in, D, H, W)")
    if input.ndim == 4:
        return input[None], True
    return input, False


def _check_same_dtype(x: mx.array, weight: mx.array) -> None:
    # MLX would promote mixed dtypes silently; PyTorch refuses them.
    if weight.dtype != x.dtype:
        raise TypeError(
            f"`input` ({x.dtype}) and `weight` ({weight.dtype}) must have the same dtype"
        )


def _check_bias(bias, c_out: int, dtype: mx.Dtype) -> None:
    if bias is None:
        return
    if not isinstance(bias, mx.array):
        raise TypeError(f"`bias` must be an mlx.core.array or None, got {type(bias).__name__}")
    if tuple(bias.shape) != (c_out,):
        raise ValueError(f"`bias` must have shape ({c_out},), got {tuple(bias.shape)}")
    if bias.dtype != dtype:
        raise TypeError(f"`bias` ({bias.dtype}) must have the dtype of `input` ({dtype})")


def conv3d(
    input: mx.array,
    weight: mx.array,
    bias: Optional[mx.array] = None,
    stride: _size_3 = 1,
    padding: _padding_3 = 0,
    dilation: _size_3 = 1,
    groups: int = 1,
) -> mx.array:
    """Applies a 3-D convolution over an NCDHW input.

    Same arguments and semantics as ``torch.nn.functional.conv3d``; see
    :class:`lucid_mlx.nn.Conv3d` for the details and the output shape.

    Args:
        input (array): Input of shape (N, C_in, D, H, W) or (C_in, D, H, W).
        weight (array): Filters of shape (C_out, C_in / groups, KD, KH, KW).
        bias (array, optional): Bias of shape (C_out,). Default: ``None``.
        stride (int or tuple): Stride of the convolution. Default: ``1``.
        padding (int, tuple or str): Implicit zero padding on both sides of
            each spatial dimension, or ``'valid'`` (none) or ``'same'``
            (output size equals input size; stride must be 1; an even kernel
            puts the extra element on the high side, as PyTorch does).
            Default: ``0``.
        dilation (int or tuple): Spacing between kernel elements. Default: ``1``.
        groups (int): Number of blocked connections from input to output
            channels; both channel counts must be divisible by it. Default: ``1``.

    Returns:
        array: Output of shape (N, C_out, D_out, H_out, W_out) (no N for
        unbatched input).

    Example:
        >>> import mlx.core as mx
        >>> import lucid_mlx.nn.functional as F
        >>> x = mx.random.normal((1, 4, 8, 8, 8))
        >>> w = mx.random.normal((8, 2, 3, 3, 3))
        >>> F.conv3d(x, w, padding="same", groups=2).shape
        (1, 8, 8, 8, 8)
    """
    x, unbatched = _conv_input(input)
    _args.check_array(weight, "weight", 5, "(C_out, C_in / groups, KD, KH, KW)")
    groups = _args.check_int(groups, "groups", minimum=1)
    _check_same_dtype(x, weight)
    c_in, c_out = x.shape[1], weight.shape[0]
    if any(n == 0 for n in weight.shape):
        raise ValueError(f"`weight` must have no zero-sized dimension, got shape {tuple(weight.shape)}")
    if c_out % groups != 0:
        raise ValueError(
            f"out channels (weight.shape[0]={c_out}) must be divisible by `groups` (={groups})"
        )
    if weight.shape[1] * groups != c_in:
        raise ValueError(
            f"`input` has {c_in} channels (shape {tuple(input.shape)}) but `weight` of shape "
            f"{tuple(weight.shape)} with groups={groups} expects {weight.shape[1] * groups}"
        )
    _check_bias(bias, c_out, x.dtype)
    stride = _args.triple(stride, "stride")
    dilation = _args.triple(dilation, "dilation")
    kernel = tuple(weight.shape[2:])
    pads = _args.conv_padding(padding, kernel, stride, dilation)
    for axis, (n, k, d, (lo, hi)) in enumerate(zip(x.shape[2:], kernel, dilation, pads)):
        if d * (k - 1) + 1 > n + lo + hi:
            raise ValueError(
                f"kernel size {kernel} with dilation {dilation} is larger than the padded "
                f"input: input spatial shape {tuple(x.shape[2:])}, padding {pads}"
            )
    _args.check_size((x.shape[0], c_out, *output_size(x.shape[2:], kernel, stride, pads, dilation)),
                     x.dtype.size, "the output of conv3d")
    y = _conv3d.conv3d(x, weight, bias, stride, pads, dilation, groups)
    return y[0] if unbatched else y


def conv_transpose3d(
    input: mx.array,
    weight: mx.array,
    bias: Optional[mx.array] = None,
    stride: _size_3 = 1,
    padding: _size_3 = 0,
    output_padding: _size_3 = 0,
    groups: int = 1,
    dilation: _size_3 = 1,
) -> mx.array:
    """3-D transposed convolution, as ``torch.nn.functional.conv_transpose3d``.

    Note PyTorch's argument order: ``groups`` comes before ``dilation``.
    See :class:`lucid_mlx.nn.ConvTranspose3d` for the details.

    Args:
        input (array): (N, C_in, D, H, W) or (C_in, D, H, W).
        weight (array): (C_in, C_out / groups, KD, KH, KW).
        bias (array, optional): (C_out,). Default: ``None``.
        stride (int or tuple): Spacing of the scattered kernels. Default: ``1``.
        padding (int or tuple): Crop from both sides of the full output. Default: ``0``.
        output_padding (int or tuple): Extra size on the high side, smaller
            than ``stride`` or ``dilation``. Default: ``0``.
        groups (int): Blocked connections from input to output channels. Default: ``1``.
        dilation (int or tuple): Spacing between kernel elements. Default: ``1``.

    Shape:
        Output: (N, C_out, D_out, H_out, W_out) with
        ``D_out = (D - 1) * stride - 2 * padding + dilation * (KD - 1) + output_padding + 1``.
    """
    x = _args.check_array(input, "input", (4, 5), "(N, C_in, D, H, W) or (C_in, D, H, W)")
    w = _args.check_array(weight, "weight", 5, "(C_in, C_out / groups, KD, KH, KW)")
    _check_same_dtype(x, w)
    groups = _args.check_int(groups, "groups", minimum=1)
    s = _args.triple(stride, "stride")
    p = _args.triple(padding, "padding", minimum=0)
    d = _args.triple(dilation, "dilation")
    op = _args.check_output_padding(output_padding, s, d)
    unbatched = x.ndim == 4
    if unbatched:
        x = x[None]
    c_in = x.shape[1]
    if w.shape[0] != c_in:
        raise ValueError(f"conv_transpose3d: `input` has {c_in} channels (shape {tuple(x.shape)}) "
                         f"but `weight` of shape {tuple(w.shape)} expects {w.shape[0]}")
    if c_in % groups:
        raise ValueError(f"conv_transpose3d: the input's {c_in} channels are not divisible by "
                         f"`groups` (={groups})")
    c_out = w.shape[1] * groups
    _check_bias(bias, c_out, x.dtype)
    sizes = _args.transposed_output_shape(x.shape[2:], w.shape[2:], s, p, op, d)
    if any(n < 1 for n in sizes):
        raise ValueError(f"conv_transpose3d: output size {tuple(sizes)} is too small for input "
                         f"of shape {tuple(x.shape)}, weight {tuple(w.shape)}, stride={s}, "
                         f"padding={p}, output_padding={op}, dilation={d}")
    _args.check_size((x.shape[0], c_out, *sizes), x.dtype.size, "the output of conv_transpose3d")
    y = _ct.conv_transpose3d(x, w, bias, s, p, op, groups, d)
    return y[0] if unbatched else y
