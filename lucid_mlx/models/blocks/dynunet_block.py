"""The convolution blocks of MONAI's DynUNet (nnU-Net), also used by UNETR and SwinUNETR."""

from __future__ import annotations

from typing import Sequence, Union

import mlx.core as mx
import mlx.nn as mnn

from ... import _args
from ..layers import get_act_layer, get_norm_layer
from ..layers.convutils import check_spatial_dims
from .convolutions import Convolution

_size = Union[int, Sequence[int]]
_LEAKY = ("leakyrelu", {"inplace": True, "negative_slope": 0.01})

__all__ = ["UnetBasicBlock", "UnetOutBlock", "UnetResBlock", "UnetUpBlock", "get_conv_layer",
           "get_output_padding", "get_padding"]


def _broadcast(*values: _size, names: Sequence[str]) -> tuple[tuple[int, ...], ...]:
    """Ints and sequences broadcast to one length, as MONAI's ``np.atleast_1d`` arithmetic."""
    seqs = []
    for value, name in zip(values, names):
        if isinstance(value, (tuple, list)):
            seqs.append(tuple(_args.check_int(v, name) for v in value))
        else:
            seqs.append((_args.check_int(value, name),))
    n = max(len(s) for s in seqs)
    if any(len(s) not in (1, n) for s in seqs):
        raise ValueError(", ".join(f"`{k}`={v!r}" for k, v in zip(names, values)) +
                         " must have the same length (or be ints)")
    return tuple(s * n if len(s) == 1 else s for s in seqs)


def _scalar_if_one(values: tuple[int, ...]) -> Union[int, tuple[int, ...]]:
    return values[0] if len(values) == 1 else values


def get_padding(kernel_size: _size, stride: _size) -> Union[int, tuple[int, ...]]:
    """``(kernel_size - stride + 1) // 2``: the padding that makes a strided conv divide the size exactly.

    Raises:
        ValueError: the padding would be negative (``stride > kernel_size + 1``).
    """
    k, s = _broadcast(kernel_size, stride, names=("kernel_size", "stride"))
    pads = tuple((ki - si + 1) // 2 if ki - si + 1 >= 0 else -1 for ki, si in zip(k, s))
    if min(pads) < 0:
        raise ValueError(f"padding would be negative for kernel_size={kernel_size!r} and "
                         f"stride={stride!r}; use a kernel at least stride - 1")
    return _scalar_if_one(pads)


def get_output_padding(kernel_size: _size, stride: _size, padding: _size) -> Union[int, tuple[int, ...]]:
    """``2 * padding + stride - kernel_size``: the transposed conv's output padding for an exact ``stride``x upsampling.

    Raises:
        ValueError: the output padding would be negative.
    """
    k, s, p = _broadcast(kernel_size, stride, padding, names=("kernel_size", "stride", "padding"))
    out = tuple(2 * pi + si - ki for ki, si, pi in zip(k, s, p))
    if min(out) < 0:
        raise ValueError(f"output padding would be negative for kernel_size={kernel_size!r}, "
                         f"stride={stride!r}, padding={padding!r}")
    return _scalar_if_one(out)


def get_conv_layer(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: _size = 3,
    stride: _size = 1,
    act: Union[tuple, str, None] = "PRELU",
    norm: Union[tuple, str, None] = "INSTANCE",
    dropout: Union[tuple, str, float, None] = None,
    bias: bool = False,
    conv_only: bool = True,
    is_transposed: bool = False,
) -> Convolution:
    """A :class:`Convolution` padded by :func:`get_padding` (and :func:`get_output_padding` when transposed).

    Same arguments and defaults as MONAI's ``get_conv_layer``; ``stride`` is
    passed as the block's ``strides``.
    """
    padding = get_padding(kernel_size, stride)
    output_padding = get_output_padding(kernel_size, stride, padding) if is_transposed else None
    return Convolution(spatial_dims, in_channels, out_channels, strides=stride, kernel_size=kernel_size,
                       act=act, norm=norm, dropout=dropout, bias=bias, conv_only=conv_only,
                       is_transposed=is_transposed, padding=padding, output_padding=output_padding)


def _plain_conv(spatial_dims, in_channels, out_channels, kernel_size, stride, dropout, bias=False,
                is_transposed=False) -> Convolution:
    # DynUNet's convolutions: no act or norm of their own (the blocks apply them), dropout inside.
    return get_conv_layer(spatial_dims, in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                          dropout=dropout, act=None, norm=None, bias=bias, conv_only=False,
                          is_transposed=is_transposed)


class UnetBasicBlock(mnn.Module):
    r"""Two convolutions, each followed by a norm and the activation, as MONAI's ``UnetBasicBlock``::

        conv1 (stride) -- norm1 -- lrelu -- conv2 -- norm2 -- lrelu

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int or sequence): Kernel of both convolutions.
        stride (int or sequence): Stride of ``conv1``.
        norm_name: Norm name or ``(name, {kwargs})``, e.g. ``("instance", {"affine": True})``.
        act_name: Activation. Default: ``("leakyrelu", {"inplace": True, "negative_slope": 0.01})``.
        dropout: Dropout after each convolution. Default: ``None``.

    Shape:
        - Input: (N, in_channels, D, H, W); output: (N, out_channels, D', H', W'),
          D' = ceil(D / stride) for odd kernels.

    Example:
        >>> block = UnetBasicBlock(3, 1, 8, kernel_size=3, stride=2, norm_name="instance")
        >>> block(mx.zeros((1, 1, 16, 16, 16))).shape
        (1, 8, 8, 8, 8)
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: _size,
                 stride: _size, norm_name: Union[tuple, str], act_name: Union[tuple, str] = _LEAKY,
                 dropout: Union[tuple, str, float, None] = None):
        super().__init__()
        check_spatial_dims(spatial_dims)
        self.conv1 = _plain_conv(spatial_dims, in_channels, out_channels, kernel_size, stride, dropout)
        self.conv2 = _plain_conv(spatial_dims, out_channels, out_channels, kernel_size, 1, dropout)
        self.lrelu = get_act_layer(act_name)
        self.norm1 = get_norm_layer(norm_name, spatial_dims=spatial_dims, channels=out_channels)
        self.norm2 = get_norm_layer(norm_name, spatial_dims=spatial_dims, channels=out_channels)

    def __call__(self, x: mx.array) -> mx.array:
        x = self.lrelu(self.norm1(self.conv1(x)))
        return self.lrelu(self.norm2(self.conv2(x)))


class UnetResBlock(UnetBasicBlock):
    r""":class:`UnetBasicBlock` with a residual connection, as MONAI's ``UnetResBlock``::

        conv1 -- norm1 -- lrelu -- conv2 -- norm2 --(+)-- lrelu
          \------ [conv3 (1x1x1, stride) -- norm3] ---/

    The projection ``conv3``/``norm3`` exists when the channels change or
    the stride is not 1 (``downsample`` is then True). Arguments as
    :class:`UnetBasicBlock`.

    Example:
        >>> block = UnetResBlock(3, 4, 8, kernel_size=3, stride=1, norm_name="batch")
        >>> block.downsample
        True
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: _size,
                 stride: _size, norm_name: Union[tuple, str], act_name: Union[tuple, str] = _LEAKY,
                 dropout: Union[tuple, str, float, None] = None):
        super().__init__(spatial_dims, in_channels, out_channels, kernel_size, stride, norm_name,
                         act_name, dropout)
        strides = stride if isinstance(stride, (tuple, list)) else (stride,)
        self.downsample = in_channels != out_channels or any(s != 1 for s in strides)
        if self.downsample:
            self.conv3 = _plain_conv(spatial_dims, in_channels, out_channels, 1, stride, dropout)
            self.norm3 = get_norm_layer(norm_name, spatial_dims=spatial_dims, channels=out_channels)

    def __call__(self, x: mx.array) -> mx.array:
        out = self.lrelu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        residual = self.norm3(self.conv3(x)) if self.downsample else x
        return self.lrelu(out + residual)


class UnetUpBlock(mnn.Module):
    r"""Transposed-convolution upsampling, concatenation with the skip, then a :class:`UnetBasicBlock`,
    as MONAI's ``UnetUpBlock``::

        transp_conv (kernel = stride = upsample_kernel_size) -- cat(., skip) -- conv_block

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int): Channels of the deeper input.
        out_channels (int): Output channels; the skip must have as many.
        kernel_size (int or sequence): Kernel of the basic block.
        stride (int or sequence): Accepted as in MONAI and not used (the
            block's stride is 1, the upsampling's is ``upsample_kernel_size``).
        upsample_kernel_size (int or sequence): Kernel and stride of ``transp_conv``.
        norm_name: Norm name or ``(name, {kwargs})``.
        act_name: Activation. Default: leaky ReLU (slope 0.01).
        dropout: Dropout after each convolution. Default: ``None``.
        trans_bias (bool): Bias in ``transp_conv``. Default: ``False``.

    Shape:
        - Input: (N, in_channels, D, H, W) and skip (N, out_channels, D*u, H*u, W*u).
        - Output: (N, out_channels, D*u, H*u, W*u), u = ``upsample_kernel_size``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: _size,
                 stride: _size, upsample_kernel_size: _size, norm_name: Union[tuple, str],
                 act_name: Union[tuple, str] = _LEAKY, dropout: Union[tuple, str, float, None] = None,
                 trans_bias: bool = False):
        super().__init__()
        check_spatial_dims(spatial_dims)
        self.transp_conv = _plain_conv(spatial_dims, in_channels, out_channels, upsample_kernel_size,
                                       upsample_kernel_size, dropout, bias=trans_bias, is_transposed=True)
        self.conv_block = UnetBasicBlock(spatial_dims, out_channels + out_channels, out_channels,
                                         kernel_size=kernel_size, stride=1, dropout=dropout,
                                         norm_name=norm_name, act_name=act_name)

    def __call__(self, x: mx.array, skip: mx.array) -> mx.array:
        return upsample_and_merge(self.transp_conv, self.conv_block, x, skip)


def upsample_and_merge(transp_conv, conv_block, x: mx.array, skip: mx.array) -> mx.array:
    """``conv_block(cat(transp_conv(x), skip))``, the decoder step of DynUNet's and UNETR's up blocks."""
    up = transp_conv(x)
    if up.shape[0] != skip.shape[0] or up.shape[2:] != skip.shape[2:]:
        raise ValueError(f"the upsampled input {tuple(up.shape)} and the skip {tuple(skip.shape)} "
                         "differ in batch or spatial size")
    return conv_block(mx.concatenate([up, skip], axis=1))


class UnetOutBlock(mnn.Module):
    r"""A 1x1x1 convolution with bias (and optional dropout), as MONAI's ``UnetOutBlock``.

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        dropout: Dropout after the convolution. Default: ``None``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int,
                 dropout: Union[tuple, str, float, None] = None):
        super().__init__()
        check_spatial_dims(spatial_dims)
        self.conv = _plain_conv(spatial_dims, in_channels, out_channels, 1, 1, dropout, bias=True)

    def __call__(self, x: mx.array) -> mx.array:
        return self.conv(x)
