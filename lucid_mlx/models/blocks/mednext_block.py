"""MedNeXt's blocks (``MedNeXtBlock``, ``MedNeXtDownBlock``, ``MedNeXtUpBlock``, ``MedNeXtOutBlock``).

Roy et al., 2023, "MedNeXt: Transformer-driven Scaling of ConvNets for
Medical Image Segmentation": a 3-D ConvNeXt block — a large-kernel
depthwise convolution (one k x k x k filter per channel, ``groups=C``), a
norm, a 1x1x1 expansion by ``expansion_ratio`` with GELU, an optional global
response normalisation (ConvNeXt V2), and a 1x1x1 compression — plus
strided versions for down- and upsampling. Names and arithmetic follow
MONAI 1.6.1's ``monai.networks.blocks.mednext_block``, so MONAI checkpoints
load strictly.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from ... import _args
from ...nn import Conv3d, ConvTranspose3d, GroupNorm
from ...nn import functional as F

__all__ = ["MedNeXtBlock", "MedNeXtDownBlock", "MedNeXtUpBlock", "MedNeXtOutBlock"]

NORM_TYPES = ("group", "layer")


def _check_dim(dim) -> None:
    if dim != "3d":
        raise ValueError(f"`dim` must be '3d' (lucid_mlx is 3-D), got {dim!r}")


class _VolumeLayerNorm(nn.Module):
    """``torch.nn.LayerNorm((C, k, k, k))``: MedNeXt's ``norm_type="layer"``.

    It normalises each sample over its channels and whole volume, with a
    weight and bias per (channel, voxel), so the volume must be exactly
    k x k x k — as in PyTorch, where any other size fails.
    """

    def __init__(self, normalized_shape: tuple[int, ...], eps: float = 1e-5):
        super().__init__()
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.weight = mx.ones(self.normalized_shape)
        self.bias = mx.zeros(self.normalized_shape)

    def _extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"

    def __call__(self, x: mx.array) -> mx.array:
        n = len(self.normalized_shape)
        if tuple(x.shape[-n:]) != self.normalized_shape:
            raise ValueError(
                f"norm_type='layer' normalises over (C, k, k, k) = {self.normalized_shape}, as MONAI's "
                f"LayerNorm does, so the block's input must have that (C, D, H, W); got shape {tuple(x.shape)}")
        flat = x.reshape(*x.shape[:-n], -1)
        out = mx.fast.layer_norm(flat, self.weight.reshape(-1), self.bias.reshape(-1), self.eps)
        return out.reshape(x.shape)


class MedNeXtBlock(nn.Module):
    r"""Depthwise k^3 conv, norm, 1x1x1 expansion + GELU (+ GRN), 1x1x1 compression, optional residual.

    Args:
        in_channels (int): Input channels C.
        out_channels (int): Output channels; must equal ``in_channels`` with
            the residual connection.
        expansion_ratio (int): Width of the expansion over C. Default: ``4``.
        kernel_size (int): Odd size of the depthwise kernel, padded to keep
            the size ("same"). Default: ``7``.
        use_residual_connection (bool): Add the input to the output. Default: ``True``.
        norm_type (str): ``"group"`` (GroupNorm with one group per channel)
            or ``"layer"`` (LayerNorm over (C, k, k, k); the input volume must
            then be k^3, as in MONAI). Default: ``"group"``.
        dim (str): Must be ``"3d"``. Default: ``"3d"``.
        global_resp_norm (bool): Global response normalisation after the
            expansion (Woo et al., 2023, ConvNeXt V2), with learned
            ``global_resp_gamma`` and ``global_resp_beta`` of shape
            (1, expansion_ratio * C, 1, 1, 1), zero-initialised. Default: ``False``.

    Shape:
        - Input: (N, C, D, H, W)
        - Output: (N, out_channels, D, H, W)

    Example:
        >>> MedNeXtBlock(8, 8, expansion_ratio=2, kernel_size=7)(mx.zeros((1, 8, 16, 16, 16))).shape
        (1, 8, 16, 16, 16)
    """

    _STRIDE = 1

    def __init__(self, in_channels: int, out_channels: int, expansion_ratio: int = 4, kernel_size: int = 7,
                 use_residual_connection: bool = True, norm_type: str = "group", dim: str = "3d",
                 global_resp_norm: bool = False) -> None:
        super().__init__()
        _check_dim(dim)
        in_channels = _args.check_int(in_channels, "in_channels", minimum=1)
        out_channels = _args.check_int(out_channels, "out_channels", minimum=1)
        expansion_ratio = _args.check_int(expansion_ratio, "expansion_ratio", minimum=1)
        kernel_size = _args.check_int(kernel_size, "kernel_size", minimum=1)
        if kernel_size % 2 == 0:
            # padding k // 2 keeps the size only for odd k; MONAI's blocks then fail to add up.
            raise ValueError(f"`kernel_size` must be odd, got {kernel_size}")
        if norm_type not in NORM_TYPES:
            raise ValueError(f"`norm_type` must be one of {NORM_TYPES}, got {norm_type!r}")
        if use_residual_connection and self._STRIDE == 1 and in_channels != out_channels:
            raise ValueError(f"the residual connection needs `out_channels` (={out_channels}) equal to "
                             f"`in_channels` (={in_channels})")
        self.do_res = bool(use_residual_connection)
        self.dim = dim
        self.conv1 = self._depthwise(in_channels, kernel_size)
        if norm_type == "group":
            self.norm = GroupNorm(num_groups=in_channels, num_channels=in_channels)
        else:
            self.norm = _VolumeLayerNorm((in_channels, kernel_size, kernel_size, kernel_size))
        hidden = expansion_ratio * in_channels
        self.conv2 = Conv3d(in_channels, hidden, kernel_size=1)
        self.act = nn.GELU()
        self.conv3 = Conv3d(hidden, out_channels, kernel_size=1)
        self.global_resp_norm = bool(global_resp_norm)
        if self.global_resp_norm:
            self.global_resp_beta = mx.zeros((1, hidden, 1, 1, 1))
            self.global_resp_gamma = mx.zeros((1, hidden, 1, 1, 1))

    def _depthwise(self, channels: int, kernel_size: int) -> nn.Module:
        return Conv3d(channels, channels, kernel_size, stride=1, padding=kernel_size // 2, groups=channels)

    def _branch(self, x: mx.array) -> mx.array:
        y = self.act(self.conv2(self.norm(self.conv1(x))))
        if self.global_resp_norm:
            # Each channel's L2 norm over the volume, relative to the channel mean.
            gx = mx.sqrt(mx.sum(y * y, axis=(-3, -2, -1), keepdims=True))
            nx = gx / (mx.mean(gx, axis=1, keepdims=True) + 1e-6)
            y = self.global_resp_gamma * (y * nx) + self.global_resp_beta + y
        return self.conv3(y)

    def __call__(self, x: mx.array) -> mx.array:
        _args.check_array(x, "input", 5, "(N, C, D, H, W)")
        y = self._branch(x)
        return x + y if self.do_res else y


class _Resampling(MedNeXtBlock):
    """A block whose depthwise conv has stride 2 and whose residual, when on, is a strided
    1x1x1 ``_CONV`` (``res_conv``) rather than the identity."""

    _STRIDE = 2
    _CONV: type = Conv3d

    def __init__(self, in_channels: int, out_channels: int, expansion_ratio: int = 4, kernel_size: int = 7,
                 use_residual_connection: bool = False, norm_type: str = "group", dim: str = "3d",
                 global_resp_norm: bool = False) -> None:
        super().__init__(in_channels, out_channels, expansion_ratio, kernel_size, use_residual_connection=False,
                         norm_type=norm_type, dim=dim, global_resp_norm=global_resp_norm)
        self.resample_do_res = bool(use_residual_connection)
        if self.resample_do_res:
            self.res_conv = self._CONV(in_channels, out_channels, kernel_size=1, stride=2)


class MedNeXtDownBlock(_Resampling):
    r"""A :class:`MedNeXtBlock` whose depthwise conv has stride 2: halves D, H and W.

    Takes the arguments of :class:`MedNeXtBlock` (``use_residual_connection``
    defaults to ``False``). The residual, when on, is a 1x1x1 conv with
    stride 2 (``res_conv``) from ``in_channels`` to ``out_channels``.

    Shape:
        - Input: (N, C, D, H, W)
        - Output: (N, out_channels, ceil(D / 2), ceil(H / 2), ceil(W / 2))
    """

    _CONV = Conv3d

    def _depthwise(self, channels: int, kernel_size: int) -> nn.Module:
        return Conv3d(channels, channels, kernel_size, stride=2, padding=kernel_size // 2, groups=channels)

    def __call__(self, x: mx.array) -> mx.array:
        _args.check_array(x, "input", 5, "(N, C, D, H, W)")
        y = self._branch(x)
        return y + self.res_conv(x) if self.resample_do_res else y


class MedNeXtUpBlock(_Resampling):
    r"""A :class:`MedNeXtBlock` whose depthwise conv is transposed with stride 2: doubles D, H and W.

    Takes the arguments of :class:`MedNeXtBlock` (``use_residual_connection``
    defaults to ``False``). The transposed conv gives 2n - 1 voxels; one
    zero plane is padded at the low end of each dimension to make 2n, as in
    MONAI. The residual, when on, is a 1x1x1 transposed conv with stride 2
    (``res_conv``), padded the same way.

    Shape:
        - Input: (N, C, D, H, W)
        - Output: (N, out_channels, 2D, 2H, 2W)
    """

    _CONV = ConvTranspose3d

    def _depthwise(self, channels: int, kernel_size: int) -> nn.Module:
        return ConvTranspose3d(channels, channels, kernel_size, stride=2, padding=kernel_size // 2,
                               groups=channels)

    def __call__(self, x: mx.array) -> mx.array:
        _args.check_array(x, "input", 5, "(N, C, D, H, W)")
        low = (1, 0, 1, 0, 1, 0)
        y = F.pad(self._branch(x), low)
        return y + F.pad(self.res_conv(x), low) if self.resample_do_res else y


class MedNeXtOutBlock(nn.Module):
    r"""The 1x1x1 output projection of MedNeXt (a transposed conv, ``conv_out``, as in MONAI).

    Args:
        in_channels (int): Input channels.
        n_classes (int): Output channels.
        dim (str): Must be ``"3d"``.

    Shape:
        - Input: (N, in_channels, D, H, W)
        - Output: (N, n_classes, D, H, W)
    """

    def __init__(self, in_channels: int, n_classes: int, dim: str) -> None:
        super().__init__()
        _check_dim(dim)
        self.conv_out = ConvTranspose3d(in_channels, n_classes, kernel_size=1)

    def __call__(self, x: mx.array) -> mx.array:
        return self.conv_out(x)
