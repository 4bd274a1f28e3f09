"""The NCDHW ``Conv3d`` module."""

from __future__ import annotations

import math
from contextlib import nullcontext

import mlx.core as mx
import mlx.nn as nn

from .. import _args
from .._args import _padding_3, _size_3
from . import functional as F

# PyTorch's padding_mode names mapped to F.pad's mode names.
_PAD_MODE = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}


class Conv3d(nn.Module):
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
        super().__init__()
        in_channels = _args.check_int(in_channels, "in_channels", minimum=1)
        out_channels = _args.check_int(out_channels, "out_channels", minimum=1)
        groups = _args.check_int(groups, "groups", minimum=1)
        if in_channels % groups != 0:
            raise ValueError(f"`in_channels` (={in_channels}) must be divisible by `groups` (={groups})")
        if out_channels % groups != 0:
            raise ValueError(f"`out_channels` (={out_channels}) must be divisible by `groups` (={groups})")
        if not isinstance(bias, bool):
            raise TypeError(f"`bias` must be a bool, got {bias!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _args.triple(kernel_size, "kernel_size")
        self.stride = _args.triple(stride, "stride")
        self.dilation = _args.triple(dilation, "dilation")
        self.groups = groups
        self.padding_mode = _args.padding_mode(padding_mode)
        # Resolving now validates the padding (and 'same' against the stride).
        self._pads = _args.conv_padding(padding, self.kernel_size, self.stride, self.dilation)
        self.padding = padding if isinstance(padding, str) else _args.triple(padding, "padding", minimum=0)
        self._device = _args.device(device)
        self._dtype = _args.float_dtype(dtype)
        self._has_bias = bias
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraw weight and bias as PyTorch does (kaiming-uniform, a=sqrt(5))."""
        fan_in = self.in_channels // self.groups * math.prod(self.kernel_size)
        # kaiming_uniform_(a=sqrt(5)) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        bound = 1.0 / math.sqrt(fan_in)
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight = mx.random.uniform(-bound, bound, shape).astype(self._dtype)
        if self._has_bias:
            self.bias = mx.random.uniform(-bound, bound, (self.out_channels,)).astype(self._dtype)

    def _extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if isinstance(self.padding, str) or self.padding != (0, 0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if "bias" not in self:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def __call__(self, x: mx.array) -> mx.array:
        bias = self["bias"] if "bias" in self else None
        with mx.stream(self._device) if self._device is not None else nullcontext():
            if self.padding_mode == "zeros":
                return F.conv3d(x, self.weight, bias, self.stride, self.padding, self.dilation, self.groups)
            # As PyTorch: pad with the mode, then convolve without padding.
            amounts = tuple(n for lo, hi in reversed(self._pads) for n in (lo, hi))
            x = F.pad(x, amounts, mode=_PAD_MODE[self.padding_mode])
            return F.conv3d(x, self.weight, bias, self.stride, 0, self.dilation, self.groups)
