"""SegResNet's pieces (``monai.networks.blocks.segresnet_block``): the bias-free convolution,
the upsampler and the pre-activation residual block."""

from __future__ import annotations

from typing import Union

import mlx.core as mx
import mlx.nn as mnn

from ..layers.convutils import check_spatial_dims
from ..layers.factories import get_act_layer, get_norm_layer
from .convolutions import Convolution
from .upsample import UpSample


def get_conv_layer(spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int = 3,
                   stride: int = 1, bias: bool = False) -> Convolution:
    """A bare "same"-padded convolution (a :class:`Convolution` with ``conv_only``), bias-free by default."""
    return Convolution(spatial_dims, in_channels, out_channels, strides=stride, kernel_size=kernel_size,
                       bias=bias, conv_only=True)


def get_upsample_layer(spatial_dims: int, in_channels: int, upsample_mode: str = "nontrainable",
                       scale_factor: int = 2) -> UpSample:
    """An :class:`UpSample` keeping the channels; trilinear without aligned corners when non-trainable."""
    return UpSample(spatial_dims, in_channels=in_channels, out_channels=in_channels, scale_factor=scale_factor,
                    mode=upsample_mode, interp_mode="linear", align_corners=False)


class ResBlock(mnn.Module):
    r"""Pre-activation residual block of SegResNet, as ``monai.networks.blocks.ResBlock``::

        out = conv2(act(norm2(conv1(act(norm1(x)))))) + x

    One ``act`` module serves both activations (as in MONAI, so a PReLU
    shares its slope between them).

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int): Channels (kept).
        norm: Normalisation name or ``(name, {kwargs})``, e.g. ``("group", {"num_groups": 8})``.
        kernel_size (int): Odd kernel size. Default: ``3``.
        act: Activation name or ``(name, {kwargs})``. Default: ``("RELU", {"inplace": True})``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, norm: Union[tuple, str], kernel_size: int = 3,
                 act: Union[tuple, str] = ("RELU", {"inplace": True})):
        super().__init__()
        check_spatial_dims(spatial_dims)
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size % 2 != 1:
            raise ValueError(f"`kernel_size` must be an odd int, got {kernel_size!r}")
        self.norm1 = get_norm_layer(norm, spatial_dims=spatial_dims, channels=in_channels)
        self.norm2 = get_norm_layer(norm, spatial_dims=spatial_dims, channels=in_channels)
        self.act = get_act_layer(act)
        self.conv1 = get_conv_layer(spatial_dims, in_channels, in_channels, kernel_size=kernel_size)
        self.conv2 = get_conv_layer(spatial_dims, in_channels, in_channels, kernel_size=kernel_size)

    def __call__(self, x: mx.array) -> mx.array:
        y = self.conv1(self.act(self.norm1(x)))
        return self.conv2(self.act(self.norm2(y))) + x
