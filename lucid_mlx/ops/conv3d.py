"""3-D convolution on validated NCDHW arrays.

``groups == 1`` runs MLX's own channels-last convolution: the layout change
happens here, once, and asymmetric zero padding goes to ``conv_general``'s
(low, high) pairs so no padded copy is made.  Grouped convolutions, which
MLX does not support in 3-D, go through the dispatcher.
"""

from __future__ import annotations

import mlx.core as mx

from . import depthwise, dispatch, split
from .grouped import output_size

Triple = tuple[int, int, int]
Pairs = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def dense_conv3d(x: mx.array, w: mx.array, stride: Triple, pads: Pairs, dilation: Triple) -> mx.array:
    """``groups == 1`` convolution through ``mx.conv_general`` (NCDHW in/out)."""
    y = mx.conv_general(
        x.transpose(0, 2, 3, 4, 1),
        w.transpose(0, 2, 3, 4, 1),
        stride=list(stride),
        padding=([lo for lo, _ in pads], [hi for _, hi in pads]),
        kernel_dilation=list(dilation),
    )
    return y.transpose(0, 4, 1, 2, 3)


def dense_grad_input(cot: mx.array, w: mx.array, cot_pads: Pairs, dilation: Triple) -> mx.array:
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


def _unsplit(x: mx.array, w: mx.array, stride: Triple, pads: Pairs, dilation: Triple, groups: int) -> mx.array:
    if groups == 1:
        return dense_conv3d(x, w, stride, pads, dilation)
    return dispatch.grouped_conv3d(x, w, stride, pads, dilation, groups)


def conv3d(
    x: mx.array,
    w: mx.array,
    bias: mx.array | None,
    stride: Triple,
    pads: Pairs,
    dilation: Triple,
    groups: int,
) -> mx.array:
    if x.shape[0] == 0:
        # MLX's convolution vjp cannot reshape an empty batch; an empty output
        # with no dependence on the weights gives PyTorch's zero gradients.
        size = output_size(x.shape[2:], w.shape[2:], stride, pads, dilation)
        y = mx.zeros((0, w.shape[0], *size), dtype=x.dtype)
    else:
        # Within the workspace budget this is one call of _unsplit; above it,
        # batch chunks and output-depth slabs evaluated one after another.
        size = output_size(x.shape[2:], w.shape[2:], stride, pads, dilation)
        grad_input = dense_grad_input if groups == 1 else None
        # On the CPU the dispatcher runs depthwise layers on ops.depthwise,
        # whose forward evaluates eagerly; its gradients come without it.
        cpu = mx.default_device().type == mx.cpu
        piece_grads = depthwise.depthwise_grads if cpu and groups > 1 and w.shape[1] == 1 else None
        y = split.split_conv3d(_unsplit, x, w, stride, pads, dilation, groups, size, grad_input,
                               piece_grads)
    if bias is not None:
        y = dispatch.add_bias(y, bias)
    return y
