"""MONAI's ``UpSample`` (deconv, deconvgroup, nontrainable, pixelshuffle) and ``SubpixelUpsample``."""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import mlx.core as mx
import mlx.nn as mnn
import numpy as np

from ... import nn as lnn
from ..layers.convutils import check_spatial_dims

_MODES = ("deconv", "deconvgroup", "nontrainable", "pixelshuffle")
_LINEAR = ("linear", "bilinear", "trilinear")
_INTERP = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic", "area")


def _value(option) -> object:
    # MONAI's str enums (UpsampleMode.DECONV, InterpolateMode.LINEAR) carry the name in .value.
    return getattr(option, "value", option)


def _rep3(value, name: str) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) != 3:
            raise ValueError(f"`{name}` must be a number or a sequence of 3, got {value!r}")
        return tuple(value)
    return (value,) * 3


class UpSample(lnn.Sequential):
    r"""Upsampling by ``scale_factor``, as ``monai.networks.blocks.UpSample``.

    ``mode`` picks the children (MONAI's names, hence its state_dict keys):

    - ``"deconv"``: ``deconv``, a :class:`~lucid_mlx.nn.ConvTranspose3d` with
      kernel and stride ``scale_factor`` (or ``kernel_size`` with "same"
      padding and the output padding that makes the size exactly ``scale_factor`` times).
    - ``"deconvgroup"``: ``deconvgroup``, the same with ``groups=out_channels``
      when that divides ``in_channels``.
    - ``"nontrainable"``: optional ``preconv`` (a 1x1x1 convolution when
      ``pre_conv="default"`` and ``out_channels != in_channels``, or the
      module given), ``upsample_non_trainable`` (:class:`~lucid_mlx.nn.Upsample`
      with ``interp_mode``, ``"linear"`` meaning trilinear) and optional
      ``postconv``.
    - ``"pixelshuffle"``: ``pixelshuffle``, a :class:`SubpixelUpsample`.

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int, optional): Input channels. Default: ``None``.
        out_channels (int, optional): Output channels. Default: ``None`` (``in_channels``).
        scale_factor (float or sequence): Multiplier of the spatial size. Default: ``2``.
        kernel_size (int or sequence, optional): Deconvolution kernel. Default: ``None``.
        size (int or sequence, optional): Output size (non-trainable mode only). Default: ``None``.
        mode (str): One of the modes above. Default: ``"deconv"``.
        pre_conv (Module, "default" or None): See the modes. Default: ``"default"``.
        post_conv (Module, optional): Appended in non-trainable mode. Default: ``None``.
        interp_mode (str): Interpolation of the non-trainable mode. Default: ``"linear"``.
        align_corners (bool, optional): For the linear interpolation. Default: ``True``.
        bias (bool): Bias of the convolutions. Default: ``True``.
        apply_pad_pool (bool): Pixel-shuffle smoothing, see :class:`SubpixelUpsample`. Default: ``True``.

    Example:
        >>> up = UpSample(3, 8, 4, mode="deconv")
        >>> up(mx.zeros((1, 8, 4, 4, 4))).shape
        (1, 4, 8, 8, 8)
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: Optional[int] = None,
        out_channels: Optional[int] = None,
        scale_factor: Union[Sequence[float], float] = 2,
        kernel_size: Union[Sequence[float], float, None] = None,
        size: Union[tuple, int, None] = None,
        mode: str = "deconv",
        pre_conv: Union[mnn.Module, str, None] = "default",
        post_conv: Optional[mnn.Module] = None,
        interp_mode: str = "linear",
        align_corners: Optional[bool] = True,
        bias: bool = True,
        apply_pad_pool: bool = True,
    ):
        super().__init__()
        check_spatial_dims(spatial_dims)
        mode = _value(mode)
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}, got {mode!r}")
        scale = _rep3(scale_factor, "scale_factor")
        if not kernel_size:
            kernel, padding, output_padding = scale, 0, 0
        else:
            kernel = _rep3(kernel_size, "kernel_size")
            padding = tuple((k - 1) // 2 for k in kernel)
            output_padding = tuple(s - 1 - (k - 1) % 2 for k, s in zip(kernel, scale))
        if mode != "nontrainable" and size is not None:
            raise ValueError(f"`size` applies to mode='nontrainable' only, got size={size!r} with mode={mode!r}")
        if mode in ("deconv", "deconvgroup"):
            if not in_channels:
                raise ValueError(f"`in_channels` must be given in mode {mode!r}")
            out = out_channels or in_channels
            groups = 1
            if mode == "deconvgroup" and in_channels % out == 0:
                groups = out
            self.add_module(mode, lnn.ConvTranspose3d(
                in_channels, out, kernel, stride=scale, padding=padding, output_padding=output_padding,
                groups=groups, bias=bias))
        elif mode == "nontrainable":
            if pre_conv == "default" and out_channels != in_channels:
                if not in_channels:
                    raise ValueError("`in_channels` must be given in mode 'nontrainable' with a default pre_conv")
                self.add_module("preconv", lnn.Conv3d(in_channels, out_channels or in_channels, 1, bias=bias))
            elif pre_conv is not None and not isinstance(pre_conv, str):
                self.add_module("preconv", pre_conv)
            elif pre_conv is None and out_channels != in_channels:
                raise ValueError("in mode 'nontrainable' without a `pre_conv`, `out_channels` must equal "
                                 f"`in_channels`, got {out_channels} and {in_channels}")
            elif pre_conv not in (None, "default"):
                raise ValueError(f"`pre_conv` must be a module, 'default' or None, got {pre_conv!r}")
            interp = _value(interp_mode)
            if interp not in _INTERP:
                raise ValueError(f"`interp_mode` must be one of {_INTERP}, got {interp_mode!r}")
            if interp == "bicubic":
                raise ValueError("`interp_mode` 'bicubic' has no 3-D form (PyTorch refuses it on 5-D input)")
            if interp in _LINEAR:
                interp = "trilinear"
            elif align_corners is not None:
                # PyTorch raises this at the first forward; say it now.
                raise ValueError(f"`align_corners` must be None with interp_mode={interp!r} "
                                 f"(it applies to the linear modes), got {align_corners!r}")
            self.add_module("upsample_non_trainable", lnn.Upsample(
                size=size, scale_factor=None if size else scale, mode=interp, align_corners=align_corners))
            if post_conv:
                self.add_module("postconv", post_conv)
        else:
            self.add_module("pixelshuffle", SubpixelUpsample(
                3, in_channels, out_channels, scale_factor=scale[0], conv_block=pre_conv,
                apply_pad_pool=apply_pad_pool, bias=bias))


def pixelshuffle(x: mx.array, spatial_dims: int, scale_factor: int) -> mx.array:
    """Moves channel blocks of ``scale_factor ** 3`` into space, as ``monai.networks.utils.pixelshuffle``.

    (N, C * f^3, D, H, W) -> (N, C, D * f, H * f, W * f); channel
    ``c * f^3 + (i * f + j) * f + k`` lands at offset (i, j, k) of each block.
    """
    check_spatial_dims(spatial_dims)
    f = scale_factor
    n, c, d, h, w = x.shape
    if c % f**3:
        raise ValueError(f"the number of input channels ({c}) must be divisible by scale_factor ** 3 "
                         f"({f}**3={f**3})")
    x = x.reshape(n, c // f**3, f, f, f, d, h, w)
    x = x.transpose(0, 1, 5, 2, 6, 3, 7, 4)
    return x.reshape(n, c // f**3, d * f, h * f, w * f)


def icnr_weight(base: np.ndarray, factor: int) -> mx.array:
    """MONAI's ICNR initialisation from He-normal draws ``base`` of shape (C_out / f^3, C_in, k, k, k).

    Each group of ``factor ** 3`` output filters starts from the same draws,
    so the shuffled output starts free of checkerboard artefacts.  The
    reshuffle (a transpose read back in the other order) is MONAI's exactly.
    """
    repeat = factor ** (base.ndim - 2)
    base_out, in_channels, *kernel = base.shape
    k = base.transpose(1, 0, *range(2, base.ndim)).reshape(base_out, in_channels, -1)
    k = np.tile(k, (1, 1, repeat)).reshape(in_channels, base_out * repeat, *kernel)
    return mx.array(np.ascontiguousarray(k.transpose(1, 0, *range(2, k.ndim))))


class SubpixelUpsample(mnn.Module):
    r"""Sub-pixel convolution upsampling, as ``monai.networks.blocks.SubpixelUpsample``.

    ``conv_block`` (by default a 3x3x3 convolution to
    ``out_channels * scale_factor ** 3`` channels, ICNR-initialised) is followed
    by :func:`pixelshuffle` and, with ``apply_pad_pool``, by ``pad_pool``: a
    zero pad of ``scale_factor - 1`` on the low sides and an average pool of
    ``scale_factor`` at stride 1, which blurs the checkerboard away.

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int, optional): Input channels.
        out_channels (int, optional): Output channels. Default: ``None`` (``in_channels``).
        scale_factor (int): Integer upsampling factor. Default: ``2``.
        conv_block (Module, "default" or None): The convolution before the
            shuffle; ``None`` for none. Default: ``"default"``.
        apply_pad_pool (bool): Add ``pad_pool``. Default: ``True``.
        bias (bool): Bias of the default convolution. Default: ``True``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: Optional[int],
        out_channels: Optional[int] = None,
        scale_factor: int = 2,
        conv_block: Union[mnn.Module, str, None] = "default",
        apply_pad_pool: bool = True,
        bias: bool = True,
    ):
        super().__init__()
        self.dimensions = check_spatial_dims(spatial_dims)
        if isinstance(scale_factor, bool) or not isinstance(scale_factor, int) or scale_factor <= 0:
            raise ValueError(f"`scale_factor` must be an integer greater than 0, got {scale_factor!r}")
        self.scale_factor = scale_factor
        if isinstance(conv_block, str):
            if conv_block != "default":
                raise ValueError(f"`conv_block` must be a module, 'default' or None, got {conv_block!r}")
            out = out_channels or in_channels
            if not out:
                raise ValueError("`in_channels` must be given with the default `conv_block`")
            conv = lnn.Conv3d(in_channels, out * scale_factor**3, 3, stride=1, padding=1, bias=bias)
            std = math.sqrt(2.0 / (in_channels * 27))  # kaiming_normal_, fan_in
            conv.weight = icnr_weight(np.array(mx.random.normal((out, in_channels, 3, 3, 3)) * std),
                                      scale_factor)
            self.conv_block = conv
        else:
            self.conv_block = mnn.Identity() if conv_block is None else conv_block
        self.pad_pool = mnn.Identity()
        if apply_pad_pool:
            f = scale_factor
            self.pad_pool = lnn.Sequential(lnn.ConstantPad3d((f - 1, 0) * 3, 0.0),
                                           lnn.AvgPool3d(kernel_size=f, stride=1))

    def __call__(self, x: mx.array) -> mx.array:
        x = self.conv_block(x)
        return self.pad_pool(pixelshuffle(x, self.dimensions, self.scale_factor))
