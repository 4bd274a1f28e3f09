"""Functional NCDHW ops with PyTorch's signatures and semantics.

Every function validates its arguments here, before any MLX op runs, and
then calls the implementation in :mod:`lucid_mlx.ops`.  The modules in
:mod:`lucid_mlx.nn` call these functions.
"""

from __future__ import annotations

from typing import Optional, Sequence

import mlx.core as mx

from .. import _args
from .._args import _padding_3, _size_3
from ..ops import conv3d as _conv3d
from ..ops import dispatch as _dispatch
from ..ops import pad as _pad

PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _conv_input(input: mx.array) -> tuple[mx.array, bool]:
    """Accept 5-D (N, C, D, H, W) or unbatched 4-D (C, D, H, W) input, as PyTorch."""
    _args.check_array(input, "input", (4, 5), "(N, C_in, D, H, W) or (C_in, D, H, W)")
    if input.ndim == 4:
        return input[None], True
    return input, False


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
    if weight.dtype != x.dtype:
        raise TypeError(
            f"`input` ({x.dtype}) and `weight` ({weight.dtype}) must have the same dtype"
        )
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
    if bias is not None:
        if not isinstance(bias, mx.array):
            raise TypeError(f"`bias` must be an mlx.core.array or None, got {type(bias).__name__}")
        if tuple(bias.shape) != (c_out,):
            raise ValueError(f"`bias` must have shape ({c_out},), got {tuple(bias.shape)}")
        if bias.dtype != x.dtype:
            raise TypeError(f"`bias` ({bias.dtype}) must have the dtype of `input` ({x.dtype})")
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
    y = _conv3d.conv3d(x, weight, bias, stride, pads, dilation, groups)
    return y[0] if unbatched else y


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
    if not isinstance(pad, (tuple, list)) or not all(_args._is_int(p) for p in pad):
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


# ---------------------------------------------------------------------------
# 3-D toolkit layers (pooling, normalisation, interpolation, transposed conv).
# Thin re-exports: each implementation validates its own arguments.
# ---------------------------------------------------------------------------
from ..ops.pool import (  # noqa: E402
    adaptive_avg_pool3d,
    adaptive_max_pool3d,
    avg_pool3d,
    max_pool3d,
)
from ..ops.norm import batch_norm, group_norm, instance_norm  # noqa: E402
from ..ops.upsample import interpolate  # noqa: E402
from ..ops.conv_transpose import conv_transpose3d  # noqa: E402
from ..ops.dropout import dropout3d  # noqa: E402
