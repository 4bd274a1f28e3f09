"""3-D convolution on validated NCDHW arrays: carry out the dispatcher's plan.

:func:`lucid_mlx.ops.dispatch.conv3d_plan` decides everything about a call
(which path, how its gradients are taken, whether the workspace budget
splits it); this module only runs the plan and adds the bias.
"""

from __future__ import annotations

import mlx.core as mx

from .._args import Pairs, Triple
from . import dispatch, pieces, plan


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
        size = plan.output_size(x.shape[2:], w.shape[2:], stride, pads, dilation)
        y = mx.zeros((0, w.shape[0], *size), dtype=x.dtype)
    else:
        conv_plan = dispatch.conv3d_plan(x, w, stride, pads, dilation, groups)
        if conv_plan.split is None:
            y = conv_plan.path.forward(x, w, stride, pads, dilation, groups)
        else:
            y = pieces.conv3d_in_pieces(conv_plan, x, w, stride, pads, dilation, groups)
    if bias is not None:
        y = dispatch.add_bias(y, bias)
    return y
