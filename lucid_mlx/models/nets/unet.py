"""UNet with optional residual units (Kerfoot et al., 2018), as ``monai.networks.nets.UNet``."""

from __future__ import annotations

import warnings
from typing import Sequence, Union

import mlx.core as mx
import mlx.nn as mnn

from ... import _args
from ... import nn as lnn
from ..blocks.convolutions import Convolution, ResidualUnit
from ..layers.convutils import check_spatial_dims
from ..layers.simplelayers import SkipConnection


class UNet(mnn.Module):
    r"""U-Net whose levels nest as MONAI's: ``model`` is
    ``Sequential(down, SkipConnection(submodule), up)``, recursively.

    Each level's ``down`` is a strided :class:`Convolution` (or a
    :class:`ResidualUnit` with ``num_res_units > 0`` subunits); the bottom
    level is a stride-1 one. ``up`` is a transposed :class:`Convolution` of
    ``up_kernel_size`` on the concatenation of the skip and the level below
    (bare at the top level without residual units), followed by a one-subunit
    ResidualUnit when ``num_res_units > 0``. Parameter names are MONAI's,
    e.g. ``model.1.submodule.0.conv.unit0.conv.weight``.

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        channels (sequence of int): Channels per level, at least 2.
        strides (sequence of int or of triples): Stride of each down level;
            ``len(channels) - 1`` of them (extra ones are ignored with a warning).
        kernel_size (int or sequence): Convolution kernel. Default: ``3``.
        up_kernel_size (int or sequence): Transposed-convolution kernel. Default: ``3``.
        num_res_units (int): Residual subunits per level; ``0`` for plain
            convolutions. Default: ``0``.
        act: Activation name or ``(name, {kwargs})``. Default: ``"PRELU"``.
        norm: Normalisation name or ``(name, {kwargs})``. Default: ``"INSTANCE"``.
        dropout (float): Element dropout in every block. Default: ``0.0``.
        bias (bool): Convolution biases. Default: ``True``.
        adn_ordering (str): Order of norm, dropout and activation. Default: ``"NDA"``.

    Shape:
        - Input: (N, in_channels, D, H, W), each size divisible by the product of the strides
        - Output: (N, out_channels, D, H, W)

    Example:
        >>> net = UNet(3, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=2)
        >>> net(mx.zeros((1, 1, 16, 16, 16))).shape
        (1, 2, 16, 16, 16)
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int],
        strides: Sequence[int],
        kernel_size: Union[Sequence[int], int] = 3,
        up_kernel_size: Union[Sequence[int], int] = 3,
        num_res_units: int = 0,
        act: Union[tuple, str] = "PRELU",
        norm: Union[tuple, str] = "INSTANCE",
        dropout: float = 0.0,
        bias: bool = True,
        adn_ordering: str = "NDA",
    ):
        super().__init__()
        self.dimensions = check_spatial_dims(spatial_dims)
        if not isinstance(channels, (tuple, list)) or len(channels) < 2:
            raise ValueError(f"`channels` must be a sequence of at least 2 ints, got {channels!r}")
        if not isinstance(strides, (tuple, list)):
            raise TypeError(f"`strides` must be a sequence, got {strides!r}")
        delta = len(strides) - (len(channels) - 1)
        if delta < 0:
            raise ValueError(f"`strides` must have len(channels) - 1 = {len(channels) - 1} entries, "
                             f"got {strides!r}")
        if delta > 0:
            warnings.warn(f"`len(strides) > len(channels) - 1`, the last {delta} values of strides will "
                          "not be used.", stacklevel=2)
        for name, k in (("kernel_size", kernel_size), ("up_kernel_size", up_kernel_size)):
            if isinstance(k, (tuple, list)) and len(k) != 3:
                raise ValueError(f"`{name}` must be an int or have 3 entries, got {k!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = tuple(channels)
        self.strides = tuple(strides)
        self.kernel_size = kernel_size
        self.up_kernel_size = up_kernel_size
        self.num_res_units = _args.check_int(num_res_units, "num_res_units")
        self.act = act
        self.norm = norm
        self.dropout = dropout
        self.bias = bias
        self.adn_ordering = adn_ordering
        self.model = self._create_block(in_channels, out_channels, self.channels, self.strides, True)

    def _create_block(self, inc: int, outc: int, channels: tuple, strides: tuple, is_top: bool) -> mnn.Module:
        c, s = channels[0], strides[0]
        if len(channels) > 2:
            sub = self._create_block(c, c, channels[1:], strides[1:], False)
            upc = c * 2
        else:
            sub = self._down(c, channels[1], 1)  # the bottom level
            upc = c + channels[1]
        return lnn.Sequential(self._down(inc, c, s), SkipConnection(sub), self._up(upc, outc, s, is_top))

    def _common(self) -> dict:
        return dict(kernel_size=self.kernel_size, act=self.act, norm=self.norm, dropout=self.dropout,
                    bias=self.bias, adn_ordering=self.adn_ordering)

    def _down(self, inc: int, outc: int, strides) -> mnn.Module:
        if self.num_res_units > 0:
            return ResidualUnit(3, inc, outc, strides=strides, subunits=self.num_res_units, **self._common())
        return Convolution(3, inc, outc, strides=strides, **self._common())

    def _up(self, inc: int, outc: int, strides, is_top: bool) -> mnn.Module:
        common = self._common()
        common["kernel_size"] = self.up_kernel_size
        conv = Convolution(3, inc, outc, strides=strides, conv_only=is_top and self.num_res_units == 0,
                           is_transposed=True, **common)
        if self.num_res_units == 0:
            return conv
        unit = ResidualUnit(3, outc, outc, strides=1, subunits=1, last_conv_only=is_top, **self._common())
        return lnn.Sequential(conv, unit)

    def __call__(self, x: mx.array) -> mx.array:
        return self.model(x)


Unet = UNet
