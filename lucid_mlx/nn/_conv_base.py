"""What ``Conv3d`` and ``ConvTranspose3d`` share, as PyTorch's ``_ConvNd``:
argument checks, parameters, initialisation, ``repr`` and the device."""

from __future__ import annotations

import math
from contextlib import nullcontext

import mlx.core as mx
import mlx.nn as nn

from .. import _args
from .._args import _size_3


class _ConvNd(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _size_3,
        stride: _size_3,
        dilation: _size_3,
        groups: int,
        bias: bool,
        device,
        dtype,
        *,
        transposed: bool,
    ):
        super().__init__()
        self.in_channels = _args.check_int(in_channels, "in_channels", minimum=1)
        self.out_channels = _args.check_int(out_channels, "out_channels", minimum=1)
        self.groups = _args.check_int(groups, "groups", minimum=1)
        if in_channels % groups != 0:
            raise ValueError(f"`in_channels` (={in_channels}) must be divisible by `groups` (={groups})")
        if out_channels % groups != 0:
            raise ValueError(f"`out_channels` (={out_channels}) must be divisible by `groups` (={groups})")
        _args.check_bool(bias, "bias")
        self.kernel_size = _args.triple(kernel_size, "kernel_size")
        self.stride = _args.triple(stride, "stride")
        self.dilation = _args.triple(dilation, "dilation")
        self._transposed = transposed
        self._device = _args.device(device)
        self._dtype = _args.float_dtype(dtype)
        self._has_bias = bias
        w_shape = ((in_channels, out_channels // groups) if transposed
                   else (out_channels, in_channels // groups)) + self.kernel_size
        _args.check_size(w_shape, self._dtype.size, "the weight")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraw weight and bias as PyTorch does (kaiming-uniform, a=sqrt(5))."""
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        # PyTorch takes the fan-in from the weight's second dimension, and
        # kaiming_uniform_(a=sqrt(5)) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        bound = 1.0 / math.sqrt(shape[1] * math.prod(self.kernel_size))
        self.weight = mx.random.uniform(-bound, bound, shape).astype(self._dtype)
        if self._has_bias:
            self.bias = mx.random.uniform(-bound, bound, (self.out_channels,)).astype(self._dtype)

    def _extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if isinstance(self.padding, str) or self.padding != (0, 0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1, 1):
            s += f", dilation={self.dilation}"
        if getattr(self, "output_padding", (0, 0, 0)) != (0, 0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if "bias" not in self:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _bias(self) -> mx.array | None:
        return self["bias"] if "bias" in self else None

    def _stream(self):
        """The layer's ops run on its ``device``, when one was given."""
        return mx.stream(self._device) if self._device is not None else nullcontext()
