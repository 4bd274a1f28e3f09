"""UNETR's decoder blocks: transposed-convolution upsampling with DynUNet's convolution blocks."""

from __future__ import annotations

from typing import Sequence, Union

import mlx.core as mx
import mlx.nn as mnn

from ... import _args
from ... import nn as lnn
from ..layers.convutils import check_spatial_dims
from .dynunet_block import UnetBasicBlock, UnetResBlock, get_conv_layer, upsample_and_merge

_size = Union[int, Sequence[int]]

__all__ = ["UnetrBasicBlock", "UnetrPrUpBlock", "UnetrUpBlock"]


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool, got {value!r}")
    return value


def _transp(spatial_dims, in_channels, out_channels, upsample_kernel_size) -> mnn.Module:
    # A bare transposed convolution whose kernel is its stride (no norm, act or bias).
    return get_conv_layer(spatial_dims, in_channels, out_channels, kernel_size=upsample_kernel_size,
                          stride=upsample_kernel_size, conv_only=True, is_transposed=True)


class UnetrUpBlock(mnn.Module):
    r"""Upsample, concatenate the skip, convolve, as MONAI's ``UnetrUpBlock``::

        transp_conv (kernel = stride = upsample_kernel_size) -- cat(., skip) -- conv_block

    ``conv_block`` is a :class:`~lucid_mlx.models.blocks.UnetResBlock` with
    ``res_block`` or else a :class:`~lucid_mlx.models.blocks.UnetBasicBlock`
    (stride 1, leaky ReLU).

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int): Channels of the deeper input.
        out_channels (int): Output channels; the skip must have as many.
        kernel_size (int or sequence): Kernel of the convolution block.
        upsample_kernel_size (int or sequence): Kernel and stride of ``transp_conv``.
        norm_name: Norm name or ``(name, {kwargs})``.
        res_block (bool): Residual convolution block. Default: ``False``.

    Shape:
        - Input: (N, in_channels, D, H, W) and skip (N, out_channels, D*u, H*u, W*u).
        - Output: (N, out_channels, D*u, H*u, W*u).
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: _size,
                 upsample_kernel_size: _size, norm_name: Union[tuple, str], res_block: bool = False):
        super().__init__()
        check_spatial_dims(spatial_dims)
        block = UnetResBlock if _check_bool(res_block, "res_block") else UnetBasicBlock
        self.transp_conv = _transp(spatial_dims, in_channels, out_channels, upsample_kernel_size)
        self.conv_block = block(spatial_dims, out_channels + out_channels, out_channels,
                                kernel_size=kernel_size, stride=1, norm_name=norm_name)

    def __call__(self, x: mx.array, skip: mx.array) -> mx.array:
        return upsample_and_merge(self.transp_conv, self.conv_block, x, skip)


class UnetrPrUpBlock(mnn.Module):
    r"""Project transformer features back up: ``num_layer + 1`` upsamplings, as MONAI's ``UnetrPrUpBlock``.

    ``transp_conv_init`` upsamples ``in_channels`` to ``out_channels``; each
    of the ``num_layer`` entries of ``blocks`` upsamples again, followed (with
    ``conv_block``) by a residual or basic convolution block.

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        num_layer (int): Further upsampling blocks.
        kernel_size (int or sequence): Kernel of the convolution blocks.
        stride (int or sequence): Stride of the convolution blocks.
        upsample_kernel_size (int or sequence): Kernel and stride of every upsampling.
        norm_name: Norm name or ``(name, {kwargs})``.
        conv_block (bool): A convolution block after each further upsampling. Default: ``False``.
        res_block (bool): Make those blocks residual. Default: ``False``.

    Shape:
        - Input: (N, in_channels, D, H, W); output: (N, out_channels, D*u^(num_layer+1), ...).
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, num_layer: int,
                 kernel_size: _size, stride: _size, upsample_kernel_size: _size,
                 norm_name: Union[tuple, str], conv_block: bool = False, res_block: bool = False):
        super().__init__()
        check_spatial_dims(spatial_dims)
        num_layer = _args.check_int(num_layer, "num_layer", minimum=0)
        self.transp_conv_init = _transp(spatial_dims, in_channels, out_channels, upsample_kernel_size)
        if _check_bool(conv_block, "conv_block"):
            block = UnetResBlock if _check_bool(res_block, "res_block") else UnetBasicBlock
            self.blocks = [
                lnn.Sequential(
                    _transp(spatial_dims, out_channels, out_channels, upsample_kernel_size),
                    block(spatial_dims=spatial_dims, in_channels=out_channels, out_channels=out_channels,
                          kernel_size=kernel_size, stride=stride, norm_name=norm_name),
                )
                for _ in range(num_layer)
            ]
        else:
            _check_bool(res_block, "res_block")
            self.blocks = [_transp(spatial_dims, out_channels, out_channels, upsample_kernel_size)
                           for _ in range(num_layer)]

    def __call__(self, x: mx.array) -> mx.array:
        x = self.transp_conv_init(x)
        for block in self.blocks:
            x = block(x)
        return x


class UnetrBasicBlock(mnn.Module):
    r"""A residual or basic convolution block behind the name ``layer``, as MONAI's ``UnetrBasicBlock``.

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int or sequence): Kernel size.
        stride (int or sequence): Stride of the first convolution.
        norm_name: Norm name or ``(name, {kwargs})``.
        res_block (bool): :class:`UnetResBlock` rather than :class:`UnetBasicBlock`. Default: ``False``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: _size,
                 stride: _size, norm_name: Union[tuple, str], res_block: bool = False):
        super().__init__()
        block = UnetResBlock if _check_bool(res_block, "res_block") else UnetBasicBlock
        self.layer = block(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                           kernel_size=kernel_size, stride=stride, norm_name=norm_name)

    def __call__(self, x: mx.array) -> mx.array:
        return self.layer(x)
