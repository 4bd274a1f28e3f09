"""MONAI's ``Convolution`` and ``ResidualUnit`` blocks with MONAI's child names."""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import mlx.core as mx
import mlx.nn as mnn

from ... import _args
from ... import nn as lnn
from ..layers.convutils import check_spatial_dims, same_padding, stride_minus_kernel_padding
from .acti_norm import ADN

_size = Union[int, Sequence[int]]


class Convolution(lnn.Sequential):
    r"""A convolution followed by normalisation, dropout and activation, as
    ``monai.networks.blocks.Convolution``::

        -- (Conv3d | ConvTranspose3d) -- ADN (Norm -- Dropout -- Acti by default) --

    Children: ``conv`` and, unless ``conv_only`` or all of ``act``, ``norm``,
    ``dropout`` are ``None``, ``adn`` (an :class:`ADN`).

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        strides (int or sequence): Convolution stride. Default: ``1``.
        kernel_size (int or sequence): Kernel size. Default: ``3``.
        adn_ordering (str): Order of the ADN layers. Default: ``"NDA"``.
        act: Activation name or ``(name, {kwargs})``. Default: ``"PRELU"``.
        norm: Normalisation name or ``(name, {kwargs})``. Default: ``"INSTANCE"``.
        dropout: Dropout probability or ``(name, {kwargs})``. Default: ``None``.
        dropout_dim (int): 1 drops elements, 2 or 3 whole channels. Default: ``1``.
        dilation (int or sequence): Dilation. Default: ``1``.
        groups (int): Convolution groups. Default: ``1``.
        bias (bool): Learn a bias in the convolution. Default: ``True``.
        conv_only (bool): The convolution alone, no ADN. Default: ``False``.
        is_transposed (bool): A transposed convolution instead. Default: ``False``.
        padding (int or sequence, optional): Zero padding; ``None`` keeps the
            size at stride 1 (``(kernel_size - 1) / 2 * dilation``). Default: ``None``.
        output_padding (int or sequence, optional): For ``is_transposed``;
            ``None`` is ``strides - 1``, which makes the output ``strides`` times
            the input. Default: ``None``.

    Example:
        >>> conv = Convolution(3, 1, 8, strides=2, act="prelu", norm="batch")
        >>> conv(mx.zeros((1, 1, 16, 16, 16))).shape
        (1, 8, 8, 8, 8)
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        strides: _size = 1,
        kernel_size: _size = 3,
        adn_ordering: str = "NDA",
        act: Union[tuple, str, None] = "PRELU",
        norm: Union[tuple, str, None] = "INSTANCE",
        dropout: Union[tuple, str, float, None] = None,
        dropout_dim: Optional[int] = 1,
        dilation: _size = 1,
        groups: int = 1,
        bias: bool = True,
        conv_only: bool = False,
        is_transposed: bool = False,
        padding: Optional[_size] = None,
        output_padding: Optional[_size] = None,
    ):
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.is_transposed = is_transposed
        if padding is None:
            padding = same_padding(kernel_size, dilation)
        if is_transposed:
            if output_padding is None:
                output_padding = stride_minus_kernel_padding(1, strides)
            conv = lnn.ConvTranspose3d(in_channels, out_channels, kernel_size, stride=strides,
                                       padding=padding, output_padding=output_padding, groups=groups,
                                       bias=bias, dilation=dilation)
        else:
            if output_padding is not None:
                raise ValueError(f"`output_padding` applies to transposed convolutions only "
                                 f"(is_transposed=True), got output_padding={output_padding!r}")
            conv = lnn.Conv3d(in_channels, out_channels, kernel_size, stride=strides, padding=padding,
                              dilation=dilation, groups=groups, bias=bias)
        self.add_module("conv", conv)
        if conv_only or (act is None and norm is None and dropout is None):
            return
        self.add_module("adn", ADN(ordering=adn_ordering, in_channels=out_channels, act=act, norm=norm,
                                   norm_dim=self.spatial_dims, dropout=dropout, dropout_dim=dropout_dim))


class ResidualUnit(mnn.Module):
    r"""``subunits`` :class:`Convolution` blocks plus a residual path, as
    ``monai.networks.blocks.ResidualUnit``::

        out = conv(x) + residual(x)

    ``conv`` is a :class:`~lucid_mlx.nn.Sequential` of children ``unit0``,
    ``unit1``, ...; only the first is strided and changes the channel count.
    ``residual`` is the identity, or, when ``strides`` is not all ones or the
    channel count changes, a convolution: with ``kernel_size`` and
    ``padding`` when strided, else 1x1x1 without padding.

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        strides (int or sequence): Stride of the first unit (and the residual). Default: ``1``.
        kernel_size (int or sequence): Kernel size. Default: ``3``.
        subunits (int): Number of convolutions (at least one is made). Default: ``2``.
        adn_ordering, act, norm, dropout, dropout_dim, dilation, bias:
            As :class:`Convolution`. Defaults: ``"NDA"``, ``"PRELU"``,
            ``"INSTANCE"``, ``None``, ``1``, ``1``, ``True``.
        last_conv_only (bool): The last unit is a bare convolution. Default: ``False``.
        padding (int or sequence, optional): Zero padding; ``None`` (or any
            falsy value, as in MONAI) keeps the size at stride 1. Default: ``None``.

    Example:
        >>> unit = ResidualUnit(3, 4, 8, strides=2, norm="batch")
        >>> unit(mx.zeros((1, 4, 8, 8, 8))).shape
        (1, 8, 4, 4, 4)
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        strides: _size = 1,
        kernel_size: _size = 3,
        subunits: int = 2,
        adn_ordering: str = "NDA",
        act: Union[tuple, str, None] = "PRELU",
        norm: Union[tuple, str, None] = "INSTANCE",
        dropout: Union[tuple, str, float, None] = None,
        dropout_dim: Optional[int] = 1,
        dilation: _size = 1,
        bias: bool = True,
        last_conv_only: bool = False,
        padding: Optional[_size] = None,
    ):
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.in_channels = in_channels
        self.out_channels = out_channels
        _args.check_int(subunits, "subunits")
        if not padding:
            padding = same_padding(kernel_size, dilation)
        self.conv = lnn.Sequential()
        self.residual = mnn.Identity()
        channels, stride = in_channels, strides
        count = max(1, subunits)
        for su in range(count):
            unit = Convolution(3, channels, out_channels, strides=stride, kernel_size=kernel_size,
                               adn_ordering=adn_ordering, act=act, norm=norm, dropout=dropout,
                               dropout_dim=dropout_dim, dilation=dilation, bias=bias,
                               conv_only=last_conv_only and su == count - 1, padding=padding)
            self.conv.add_module(f"unit{su}", unit)
            channels, stride = out_channels, 1
        strided = math.prod(_args.triple(strides, "strides")) != 1
        if strided or in_channels != out_channels:
            # Only adapting the channels: a 1x1x1 convolution without padding.
            kernel, pad = (kernel_size, padding) if strided else (1, 0)
            self.residual = lnn.Conv3d(in_channels, out_channels, kernel, strides, pad, bias=bias)

    def __call__(self, x: mx.array) -> mx.array:
        return self.conv(x) + self.residual(x)
