"""Grouped conv3d as one MLX convolution per group.

``mx.conv3d`` and ``mx.conv_general`` reject ``groups != 1`` for 3-D inputs
in MLX 0.32, so a grouped layer that is not depthwise runs one channels-last
``mx.conv_general`` per group and concatenates the results; MLX
differentiates it.  At 2x64x32^3 -> 64, k=3, groups=4 this took 1.1 s
forward / 3.2 s forward+backward on the CPU, against 2.7 / 8.3 s for KD
grouped 2-D convolutions with the depth folded into the batch.
"""

from __future__ import annotations

import mlx.core as mx

from .._args import Pairs, Triple


def conv3d(x: mx.array, w: mx.array, stride: Triple, pads: Pairs, dilation: Triple,
           groups: int) -> mx.array:
    """One ``mx.conv_general`` per group, concatenated along channels (NCDHW, no bias)."""
    x_cl = x.transpose(0, 2, 3, 4, 1)
    w_cl = w.transpose(0, 2, 3, 4, 1)
    cin_g = x.shape[1] // groups
    cout_g = w.shape[0] // groups
    padding = ([lo for lo, _ in pads], [hi for _, hi in pads])
    parts = [
        mx.conv_general(
            x_cl[..., g * cin_g : (g + 1) * cin_g],
            w_cl[g * cout_g : (g + 1) * cout_g],
            stride=list(stride),
            padding=padding,
            kernel_dilation=list(dilation),
        )
        for g in range(groups)
    ]
    return mx.concatenate(parts, axis=-1).transpose(0, 4, 1, 2, 3)
