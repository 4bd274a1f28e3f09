"""Dense (``groups == 1``) conv3d through MLX's own channels-last convolution.

The layout change happens here, once, and asymmetric zero padding goes to
``conv_general``'s (low, high) pairs so no padded copy is made.  MLX
differentiates the forward itself; :func:`grad_input` is the input gradient
the workspace splitter takes by input slabs for stride-1 layers.
"""

from __future__ import annotations

import mlx.core as mx

from .._args import Pairs, Triple


def conv3d(x: mx.array, w: mx.array, stride: Triple, pads: Pairs, dilation: Triple,
           groups: int = 1) -> mx.array:
    """``groups == 1`` convolution through ``mx.conv_general`` (NCDHW in/out)."""
    y = mx.conv_general(
        x.transpose(0, 2, 3, 4, 1),
        w.transpose(0, 2, 3, 4, 1),
        stride=list(stride),
        padding=([lo for lo, _ in pads], [hi for _, hi in pads]),
        kernel_dilation=list(dilation),
    )
    return y.transpose(0, 4, 1, 2, 3)


def grad_input(cot: mx.array, w: mx.array, cot_pads: Pairs, dilation: Triple) -> mx.array:
    """Input gradient of a stride-1 ``groups == 1`` convolution (NCDHW).

    It is the convolution of the cotangent, padded by ``cot_pads``, with the
    kernel flipped and its channel axes swapped; ``mx.conv_general`` flips
    the kernel itself (``flip=True``).
    """
    y = mx.conv_general(
        cot.transpose(0, 2, 3, 4, 1),
        w.transpose(1, 2, 3, 4, 0),
        padding=([lo for lo, _ in cot_pads], [hi for _, hi in cot_pads]),
        kernel_dilation=list(dilation),
        flip=True,
    )
    return y.transpose(0, 4, 1, 2, 3)
