"""BasicUNet: a plain five-level U-Net (after Falk et al., 2019), as ``monai.networks.nets.BasicUNet``."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import mlx.core as mx
import mlx.nn as mnn

from ... import _args
from ... import nn as lnn
from ...nn import functional as F
from ..blocks.convolutions import Convolution
from ..blocks.upsample import UpSample
from ..layers.convutils import check_spatial_dims

__all__ = ["BasicUNet", "BasicUnet", "Basicunet", "basicunet"]


class TwoConv(lnn.Sequential):
    """Two 3x3x3 :class:`Convolution` blocks, ``conv_0`` and ``conv_1``."""

    def __init__(self, spatial_dims: int, in_chns: int, out_chns: int, act: Union[str, tuple],
                 norm: Union[str, tuple], bias: bool, dropout: Union[float, tuple] = 0.0):
        super().__init__()
        for i, c_in in enumerate((in_chns, out_chns)):
            self.add_module(f"conv_{i}", Convolution(spatial_dims, c_in, out_chns, act=act, norm=norm,
                                                     dropout=dropout, bias=bias, padding=1))


class Down(lnn.Sequential):
    """2x2x2 max pooling (``max_pooling``) then :class:`TwoConv` (``convs``)."""

    def __init__(self, spatial_dims: int, in_chns: int, out_chns: int, act: Union[str, tuple],
                 norm: Union[str, tuple], bias: bool, dropout: Union[float, tuple] = 0.0):
        super().__init__()
        self.add_module("max_pooling", lnn.MaxPool3d(kernel_size=2))
        self.add_module("convs", TwoConv(spatial_dims, in_chns, out_chns, act, norm, bias, dropout))


class UpCat(mnn.Module):
    """Upsampling by 2 (``upsample``), concatenation with the encoder features, :class:`TwoConv` (``convs``).

    With ``is_pad``, a dimension where the upsampled map is one short of the
    encoder's (odd sizes in the encoder) is replicate-padded on its high side.
    """

    def __init__(self, spatial_dims: int, in_chns: int, cat_chns: int, out_chns: int, act: Union[str, tuple],
                 norm: Union[str, tuple], bias: bool, dropout: Union[float, tuple] = 0.0,
                 upsample: str = "deconv", pre_conv: Union[mnn.Module, str, None] = "default",
                 interp_mode: str = "linear", align_corners: Optional[bool] = True, halves: bool = True,
                 is_pad: bool = True):
        super().__init__()
        if upsample == "nontrainable" and pre_conv is None:
            up_chns = in_chns
        else:
            up_chns = in_chns // 2 if halves else in_chns
        self.upsample = UpSample(spatial_dims, in_chns, up_chns, 2, mode=upsample, pre_conv=pre_conv,
                                 interp_mode=interp_mode, align_corners=align_corners)
        self.convs = TwoConv(spatial_dims, cat_chns + up_chns, out_chns, act, norm, bias, dropout)
        self.is_pad = is_pad

    def __call__(self, x: mx.array, x_e: Optional[mx.array]) -> mx.array:
        x_0 = self.upsample(x)
        if x_e is None:
            return self.convs(x_0)
        if self.is_pad:
            # PyTorch's pad order: last dimension first, (low, high) each.
            sp = []
            for i in range(3):
                sp += [0, 1 if x_e.shape[-i - 1] != x_0.shape[-i - 1] else 0]
            if any(sp):
                x_0 = F.pad(x_0, tuple(sp), mode="replicate")
        return self.convs(mx.concatenate([x_e, x_0], axis=1))


class BasicUNet(mnn.Module):
    r"""A five-level U-Net of :class:`TwoConv` blocks, as MONAI's ``BasicUNet``.

    ``conv_0`` (TwoConv) and ``down_1`` ... ``down_4`` (max pool + TwoConv)
    encode; ``upcat_4`` ... ``upcat_1`` upsample, concatenate the encoder
    features and apply a TwoConv; ``final_conv`` is a 1x1x1 convolution.
    Parameter names are MONAI's, e.g. ``down_1.convs.conv_0.conv.weight``.

    Args:
        spatial_dims (int): Must be 3. Default: ``3``.
        in_channels (int): Input channels. Default: ``1``.
        out_channels (int): Output channels. Default: ``2``.
        features (sequence of 6 ints): Channels of ``conv_0``, ``down_1`` ...
            ``down_4`` and ``upcat_1``. Default: ``(32, 32, 64, 128, 256, 32)``.
        act: Activation name or ``(name, {kwargs})``. Default:
            ``("LeakyReLU", {"negative_slope": 0.1, "inplace": True})``.
        norm: Normalisation name or ``(name, {kwargs})``. Default: ``("instance", {"affine": True})``.
        bias (bool): Convolution biases (not ``final_conv``'s, always on). Default: ``True``.
        dropout (float or tuple): Element dropout in every convolution block. Default: ``0.0``.
        upsample (str): ``"deconv"`` (2x2x2 transposed convolution),
            ``"nontrainable"`` (1x1x1 convolution then trilinear with aligned
            corners), ``"pixelshuffle"`` (sub-pixel convolution) or
            ``"deconvgroup"``. Default: ``"deconv"``.

    Shape:
        - Input: (N, in_channels, D, H, W), each size at least 16
        - Output: (N, out_channels, D, H, W)

    Example:
        >>> net = BasicUNet(features=(4, 4, 8, 16, 32, 4))
        >>> net(mx.zeros((1, 1, 16, 16, 16))).shape
        (1, 2, 16, 16, 16)
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        out_channels: int = 2,
        features: Sequence[int] = (32, 32, 64, 128, 256, 32),
        act: Union[str, tuple] = ("LeakyReLU", {"negative_slope": 0.1, "inplace": True}),
        norm: Union[str, tuple] = ("instance", {"affine": True}),
        bias: bool = True,
        dropout: Union[float, tuple] = 0.0,
        upsample: str = "deconv",
    ):
        super().__init__()
        check_spatial_dims(spatial_dims)
        if not isinstance(features, (tuple, list)) or len(features) != 6:
            raise ValueError(f"`features` must be a sequence of 6 ints, got {features!r}")
        fea = tuple(_args.check_int(f, "features", minimum=1) for f in features)
        upsample = getattr(upsample, "value", upsample)
        common = (act, norm, bias, dropout)
        self.conv_0 = TwoConv(3, in_channels, fea[0], *common)
        self.down_1 = Down(3, fea[0], fea[1], *common)
        self.down_2 = Down(3, fea[1], fea[2], *common)
        self.down_3 = Down(3, fea[2], fea[3], *common)
        self.down_4 = Down(3, fea[3], fea[4], *common)
        self.upcat_4 = UpCat(3, fea[4], fea[3], fea[3], *common, upsample)
        self.upcat_3 = UpCat(3, fea[3], fea[2], fea[2], *common, upsample)
        self.upcat_2 = UpCat(3, fea[2], fea[1], fea[1], *common, upsample)
        self.upcat_1 = UpCat(3, fea[1], fea[0], fea[5], *common, upsample, halves=False)
        self.final_conv = lnn.Conv3d(fea[5], out_channels, kernel_size=1)

    def __call__(self, x: mx.array) -> mx.array:
        x0 = self.conv_0(x)
        x1 = self.down_1(x0)
        x2 = self.down_2(x1)
        x3 = self.down_3(x2)
        x4 = self.down_4(x3)
        u4 = self.upcat_4(x4, x3)
        u3 = self.upcat_3(u4, x2)
        u2 = self.upcat_2(u3, x1)
        u1 = self.upcat_1(u2, x0)
        return self.final_conv(u1)


BasicUnet = Basicunet = basicunet = BasicUNet
