"""NCDHW pooling modules: ``MaxPool3d``, ``AvgPool3d`` and the adaptive pair.

They hold no parameters; each checks its arguments once at construction (so a
bad layer fails where it is built) and calls the functional op.
"""

from __future__ import annotations

from typing import Optional

import mlx.core as mx
import mlx.nn as nn

from .. import _args
from .._args import _opt_size_3, _size_3
from . import functional as F


class MaxPool3d(nn.Module):
    r"""3-D max pooling over an input of shape (N, C, D, H, W).

    A drop-in for ``torch.nn.MaxPool3d``. Padding is filled with
    :math:`-\infty`. Among tied maxima the gradient goes to the first in
    (d, h, w) order, and NaN propagates, as in PyTorch.

    Args:
        kernel_size (int or tuple): Window size (KD, KH, KW).
        stride (int or tuple, optional): Window stride. Default: ``kernel_size``.
        padding (int or tuple): Implicit :math:`-\infty` padding on both sides,
            at most half the kernel size. Default: ``0``.
        dilation (int or tuple): Spacing between window elements. Default: ``1``.
        return_indices (bool): Also return the flat index
            ``d * H_in * W_in + h * W_in + w`` of each maximum in its input
            plane, as PyTorch. Default: ``False``.
        ceil_mode (bool): Round the output size up instead of down; a window
            that would start in the right padding is dropped. Default: ``False``.

    Shape:
        - Input: (N, C, D_in, H_in, W_in) or (C, D_in, H_in, W_in)
        - Output: (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out), where

        .. math::
            D_{out} = \left\lfloor\frac{D_{in} + 2 \times \text{padding}[0]
            - \text{dilation}[0] \times (\text{kernel\_size}[0] - 1) - 1}
            {\text{stride}[0]} + 1\right\rfloor

        (ceiling with ``ceil_mode``), and likewise for H and W.

    Example:
        >>> pool = MaxPool3d(3, stride=2)
        >>> pool(mx.zeros((20, 16, 50, 44, 31))).shape
        (20, 16, 24, 21, 15)
    """

    def __init__(
        self,
        kernel_size: _size_3,
        stride: Optional[_size_3] = None,
        padding: _size_3 = 0,
        dilation: _size_3 = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ):
        super().__init__()
        _args.pool_args(kernel_size, stride, padding, dilation)  # validate now
        # Kept as given (int or tuple) so the repr reads like PyTorch's.
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = _args.check_bool(return_indices, "return_indices")
        self.ceil_mode = _args.check_bool(ceil_mode, "ceil_mode")

    def _extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    def __call__(self, x: mx.array):
        return F.max_pool3d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class AvgPool3d(nn.Module):
    r"""3-D average pooling over an input of shape (N, C, D, H, W).

    A drop-in for ``torch.nn.AvgPool3d``.

    Args:
        kernel_size (int or tuple): Window size (KD, KH, KW).
        stride (int or tuple, optional): Window stride. Default: ``kernel_size``.
        padding (int or tuple): Implicit zero padding on both sides, at most
            half the kernel size. Default: ``0``.
        ceil_mode (bool): Round the output size up instead of down. Default:
            ``False``.
        count_include_pad (bool): Count the zero padding in the divisor (but
            never the part of a ``ceil_mode`` window beyond it). Default:
            ``True``.
        divisor_override (int, optional): Divide every window sum by this
            instead of the window size. Default: ``None``.

    Shape:
        - Input: (N, C, D_in, H_in, W_in) or (C, D_in, H_in, W_in)
        - Output: (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out), where

        .. math::
            D_{out} = \left\lfloor\frac{D_{in} + 2 \times \text{padding}[0]
            - \text{kernel\_size}[0]}{\text{stride}[0]} + 1\right\rfloor

        (ceiling with ``ceil_mode``), and likewise for H and W.

    Example:
        >>> pool = AvgPool3d((3, 2, 2), stride=(2, 1, 2))
        >>> pool(mx.zeros((20, 16, 50, 44, 31))).shape
        (20, 16, 24, 43, 15)
    """

    def __init__(
        self,
        kernel_size: _size_3,
        stride: Optional[_size_3] = None,
        padding: _size_3 = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: Optional[int] = None,
    ):
        super().__init__()
        _args.pool_args(kernel_size, stride, padding, 1)
        if divisor_override is not None:
            _args.check_int(divisor_override, "divisor_override", minimum=1)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = _args.check_bool(ceil_mode, "ceil_mode")
        self.count_include_pad = _args.check_bool(count_include_pad, "count_include_pad")
        self.divisor_override = divisor_override

    def _extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def __call__(self, x: mx.array) -> mx.array:
        return F.avg_pool3d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool3d(nn.Module):
    r"""3-D average pooling to a fixed output size, as ``torch.nn.AdaptiveAvgPool3d``.

    Output element ``i`` along a dimension of input size ``n`` and output size
    ``o`` averages the input bin
    :math:`[\lfloor i n / o \rfloor, \lceil (i + 1) n / o \rceil)`.

    Args:
        output_size (int or tuple): (D_out, H_out, W_out); ``None`` in the
            tuple keeps that input dimension.

    Shape:
        - Input: (N, C, D_in, H_in, W_in) or (C, D_in, H_in, W_in)
        - Output: (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out)

    Example:
        >>> AdaptiveAvgPool3d((5, None, 7))(mx.zeros((1, 64, 8, 9, 10))).shape
        (1, 64, 5, 9, 7)
    """

    def __init__(self, output_size: _opt_size_3):
        super().__init__()
        _args.adaptive_output_size(output_size)
        self.output_size = output_size

    def _extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def __call__(self, x: mx.array) -> mx.array:
        return F.adaptive_avg_pool3d(x, self.output_size)


class AdaptiveMaxPool3d(nn.Module):
    r"""3-D max pooling to a fixed output size, as ``torch.nn.AdaptiveMaxPool3d``.

    Uses the same bins as :class:`AdaptiveAvgPool3d`.

    Args:
        output_size (int or tuple): (D_out, H_out, W_out); ``None`` in the
            tuple keeps that input dimension.
        return_indices (bool): Also return the flat index of each maximum in
            its input plane, as PyTorch. Default: ``False``.

    Shape:
        - Input: (N, C, D_in, H_in, W_in) or (C, D_in, H_in, W_in)
        - Output: (N, C, D_out, H_out, W_out) or (C, D_out, H_out, W_out)

    Example:
        >>> AdaptiveMaxPool3d(1)(mx.zeros((2, 8, 4, 4, 4))).shape
        (2, 8, 1, 1, 1)
    """

    def __init__(self, output_size: _opt_size_3, return_indices: bool = False):
        super().__init__()
        _args.adaptive_output_size(output_size)
        self.output_size = output_size
        self.return_indices = _args.check_bool(return_indices, "return_indices")

    def _extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def __call__(self, x: mx.array):
        return F.adaptive_max_pool3d(x, self.output_size, self.return_indices)

