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

Arguments arrive validated and normalised from
:func:`lucid_mlx.nn.functional.conv_transpose3d`.
"""

from __future__ import annotations

from typing import Optional

import mlx.core as mx

from .._args import Triple, transposed_output_shape


def _dense(x, weight, stride, padding, output_padding, dilation):
    """groups == 1: (N, C_in, D, H, W) x (C_in, C_out, KD, KH, KW)."""
    full = mx.conv_transpose3d(
        x.transpose(0, 2, 3, 4, 1), weight.transpose(1, 2, 3, 4, 0),
        stride=stride, padding=0, dilation=dilation,
    ).transpose(0, 4, 1, 2, 3)
    sizes = transposed_output_shape(x.shape[2:], weight.shape[2:], stride, padding,
                                    output_padding, dilation)
    index, extra = [slice(None), slice(None)], [(0, 0), (0, 0)]
    for size, p, length in zip(sizes, padding, full.shape[2:]):
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


def conv_transpose3d(x: mx.array, w: mx.array, bias: Optional[mx.array], stride: Triple,
                     padding: Triple, output_padding: Triple, groups: int,
                     dilation: Triple) -> mx.array:
    """(N, C_in, D, H, W) x (C_in, C_out / groups, KD, KH, KW) -> (N, C_out, ...)."""
    c_out = w.shape[1] * groups
    if x.shape[0] == 0 or c_out == 0:
        sizes = transposed_output_shape(x.shape[2:], w.shape[2:], stride, padding,
                                        output_padding, dilation)
        y = mx.zeros((x.shape[0], c_out, *sizes), x.dtype)
    elif groups == 1:
        y = _dense(x, w, stride, padding, output_padding, dilation)
    else:
        y = _grouped(x, w, stride, padding, output_padding, dilation, groups)
    if bias is not None:
        y = y + bias.astype(y.dtype).reshape(1, -1, 1, 1, 1)
    return y
