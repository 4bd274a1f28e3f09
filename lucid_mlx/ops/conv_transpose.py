"""3-D transposed convolution on NCDHW arrays with PyTorch's semantics.

groups == 1 goes to ``mx.conv_transpose3d`` (channels-last inside, one
transpose each way), always with padding 0 and output_padding 0: the result
is the *full* transposed convolution, and PyTorch's output is its slice
``[padding, padding + out)`` per dimension (zeros past its end when
output_padding > padding).  We do the slicing ourselves because MLX 0.32
gets both arguments wrong in places (measured against PyTorch):

- padding larger than ``dilation * (kernel - 1)`` gives a wrongly sized output;
- with output_padding on some dimensions only (e.g. (0, 1, 0)), the
  gradient with respect to the input comes back with the wrong shape.

groups > 1 is rejected by MLX for 3-D; see :func:`_grouped`.
"""

from __future__ import annotations

from typing import Optional

import mlx.core as mx

from .. import _args
from .._args import _size_3


def output_size(n: int, k: int, s: int, p: int, op: int, d: int) -> int:
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def _dense(x, weight, stride, padding, output_padding, dilation):
    """groups == 1: (N, C_in, D, H, W) x (C_in, C_out, KD, KH, KW)."""
    full = mx.conv_transpose3d(
        x.transpose(0, 2, 3, 4, 1), weight.transpose(1, 2, 3, 4, 0),
        stride=stride, padding=0, dilation=dilation,
    ).transpose(0, 4, 1, 2, 3)
    index, extra = [slice(None), slice(None)], [(0, 0), (0, 0)]
    for n, k, s, p, op, d, length in zip(x.shape[2:], weight.shape[2:], stride, padding,
                                         output_padding, dilation, full.shape[2:]):
        size = output_size(n, k, s, p, op, d)
        index.append(slice(p, min(p + size, length)))
        extra.append((0, max(0, p + size - length)))
    y = full[tuple(index)]
    if any(hi for _, hi in extra):
        y = mx.pad(y, extra)
    return y


def _grouped(x, weight, stride, padding, output_padding, dilation, groups):
    """groups > 1: one dense transposed convolution per group, concatenated.

    The alternative is a grouped *forward* convolution of the zero-inserted
    input with the flipped, regrouped kernel through lucid_mlx's grouped
    conv3d.  Forward+backward on this machine (2 shared CPU cores, MLX 0.32;
    2x32x16^3 input, 32 output channels, k=2, stride 2; two runs, the
    ratios held): 2 groups 97-182 ms per-group vs 303-433 ms zero-inserted;
    8 groups 27-56 vs 99-118 ms; depthwise 14-18 vs 172-177 ms (k=3,
    stride 2, padding 1: 29-76 vs 309-422 ms).  Only with stride 1 (no zeros
    to insert) do they tie: 4 groups, 16 channels, k=3: 17-21 vs 16-17 ms.
    The zero-inserted input is ``stride**3`` times larger and all but one
    in ``stride**3`` of its multiplications are by zero.
    """
    c_in = x.shape[1] // groups
    outs = []
    for g in range(groups):
        outs.append(_dense(x[:, g * c_in:(g + 1) * c_in], weight[g * c_in:(g + 1) * c_in],
                           stride, padding, output_padding, dilation))
    return mx.concatenate(outs, axis=1)


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
        bias (array, optional): (C_out,).

    Shape:
        Output: (N, C_out, D_out, H_out, W_out) with
        ``D_out = (D - 1) * stride - 2 * padding + dilation * (KD - 1) + output_padding + 1``.
    """
    x = _args.check_array(input, "input", (4, 5), "(N, C_in, D, H, W) or (C_in, D, H, W)")
    w = _args.check_array(weight, "weight", 5, "(C_in, C_out / groups, KD, KH, KW)")
    groups = _args.check_int(groups, "groups", minimum=1)
    s = _args.triple(stride, "stride")
    p = _args.triple(padding, "padding", minimum=0)
    op = _args.triple(output_padding, "output_padding", minimum=0)
    d = _args.triple(dilation, "dilation")
    check_output_padding(op, s, d)
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
    if bias is not None:
        if not isinstance(bias, mx.array):
            raise TypeError(f"`bias` must be an mlx.core.array or None, got {type(bias).__name__}")
        if tuple(bias.shape) != (c_out,):
            raise ValueError(f"conv_transpose3d: `bias` must have shape ({c_out},), "
                             f"got {tuple(bias.shape)}")
    sizes = [output_size(n, k, si, pi, oi, di) for n, k, si, pi, oi, di in
             zip(x.shape[2:], w.shape[2:], s, p, op, d)]
    if any(n < 1 for n in sizes):
        raise ValueError(f"conv_transpose3d: output size {tuple(sizes)} is too small for input "
                         f"of shape {tuple(x.shape)}, weight {tuple(w.shape)}, stride={s}, "
                         f"padding={p}, output_padding={op}, dilation={d}")
    if x.shape[0] == 0 or c_out == 0:
        y = mx.zeros((x.shape[0], c_out, *sizes), x.dtype)
    elif groups == 1:
        y = _dense(x, w, s, p, op, d)
    else:
        y = _grouped(x, w, s, p, op, d, groups)
    if bias is not None:
        y = y + bias.astype(y.dtype).reshape(1, -1, 1, 1, 1)
    return y[0] if unbatched else y


def check_output_padding(op, stride, dilation) -> None:
    if any(o >= s and o >= dd for o, s, dd in zip(op, stride, dilation)):
        raise ValueError(f"`output_padding` must be smaller than either `stride` or `dilation` "
                         f"in every dimension, got output_padding={op}, stride={stride}, "
                         f"dilation={dilation}")
