"""The NCDHW ``Conv3d`` module."""

from __future__ import annotations

import mlx.core as mx

from .. import _args
from .._args import _padding_3, _size_3
from . import functional as F
from ._conv_base import _ConvNd


class Conv3d(_ConvNd):
    r"""Applies a 3-D convolution over an input of shape (N, C_in, D, H, W).

    A drop-in for ``torch.nn.Conv3d``: same arguments, defaults, parameter
    shapes, initialisation and output size, on MLX arrays.

    .. math::
        \text{out}(N_i, C_{out_j}) = \text{bias}(C_{out_j}) +
        \sum_{k=0}^{C_{in}/\text{groups} - 1} \text{weight}(C_{out_j}, k) \star
        \text{input}(N_i, g \cdot C_{in}/\text{groups} + k)

    where :math:`\star` is the 3-D cross-correlation and :math:`g` the group of
    output channel :math:`j`.

    Args:
        in_channels (int): Number of channels in the input.
        out_channels (int): Number of channels produced by the convolution.
        kernel_size (int or tuple): Size of the kernel (KD, KH, KW).
        stride (int or tuple): Stride of the convolution. Default: ``1``.
        padding (int, tuple or str): Padding on both sides of each spatial
            dimension, ``'valid'`` or ``'same'`` (stride 1 only; an even kernel
            pads one more on the high side). Default: ``0``.
        dilation (int or tuple): Spacing between kernel elements. Default: ``1``.
        groups (int): Number of blocked connections from input to output
            channels. ``groups == in_channels`` is a depthwise convolution;
            ``out_channels = k * in_channels`` adds a channel multiplier.
            Default: ``1``.
        bias (bool): If ``True``, adds a learnable bias. Default: ``True``.
        padding_mode (str): ``'zeros'``, ``'reflect'``, ``'replicate'`` or
            ``'circular'``. Default: ``'zeros'``.
        device (str or Device, optional): ``'cpu'``, ``'gpu'`` or an
            ``mx.Device`` on which the layer's ops run; ``None`` uses the
            default device. Default: ``None``.
        dtype (Dtype, optional): ``mx.float32``, ``mx.float16`` or
            ``mx.bfloat16``. Default: ``mx.float32``.

    Shape:
        - Input: (N, C_in, D_in, H_in, W_in) or (C_in, D_in, H_in, W_in)
        - Output: (N, C_out, D_out, H_out, W_out) or (C_out, D_out, H_out, W_out), where

        .. math::
            D_{out} = \left\lfloor\frac{D_{in} + p_{lo} + p_{hi} - \text{dilation}[0]
            \times (\text{kernel\_size}[0] - 1) - 1}{\text{stride}[0]} + 1\right\rfloor

        and likewise for H and W.

    Attributes:
        weight (array): Shape (out_channels, in_channels / groups, KD, KH, KW),
            drawn from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})` with
            :math:`k = \text{groups} / (C_{in} \cdot KD \cdot KH \cdot KW)`.
        bias (array): Shape (out_channels,), same distribution; absent when
            ``bias=False`` (test with ``"bias" in conv``).

    Example:
        >>> import mlx.core as mx
        >>> from lucid_mlx import nn
        >>> conv = nn.Conv3d(16, 33, (3, 5, 2), stride=(2, 1, 1), padding=(4, 2, 0))
        >>> conv(mx.zeros((20, 16, 10, 50, 100))).shape
        (20, 33, 8, 50, 99)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _size_3,
        stride: _size_3 = 1,
        padding: _padding_3 = 0,
        dilation: _size_3 = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, dilation, groups, bias, device, dtype,
            transposed=False,
        )
        self.padding_mode = _args.padding_mode(padding_mode)
        # Resolving now validates the padding (and 'same' against the stride).
        self._pads = _args.conv_padding(padding, self.kernel_size, self.stride, self.dilation)
        self.padding = padding if isinstance(padding, str) else _args.triple(padding, "padding", minimum=0)

    def __call__(self, x: mx.array) -> mx.array:
        bias = self._bias()
        with self._stream():
            if self.padding_mode == "zeros":
                return F.conv3d(x, self.weight, bias, self.stride, self.padding, self.dilation, self.groups)
            # As PyTorch: pad with the mode, then convolve without padding.
            amounts = tuple(n for lo, hi in reversed(self._pads) for n in (lo, hi))
            x = F.pad(x, amounts, mode=self.padding_mode)
            return F.conv3d(x, self.weight, bias, self.stride, 0, self.dilation, self.groups)
