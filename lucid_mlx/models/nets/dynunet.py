"""MONAI's ``DynUNet``: the nnU-Net architecture with per-level kernels and strides."""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import mlx.core as mx
import mlx.nn as mnn

from ... import _args
from ... import nn as lnn
from ..blocks.dynunet_block import UnetBasicBlock, UnetOutBlock, UnetResBlock, UnetUpBlock
from ..layers.convutils import check_spatial_dims

__all__ = ["DynUNet", "DynUnet", "Dynunet"]

_size = Union[int, Sequence[int]]


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool, got {value!r}")
    return value


def _levels(values, name: str, length: Optional[int] = None) -> list:
    """A sequence of per-level ints or 3-sequences of ints, checked."""
    if not isinstance(values, (tuple, list)):
        raise TypeError(f"`{name}` must be a sequence with one entry per level, got {values!r}")
    if length is not None and len(values) != length:
        raise ValueError(f"`{name}` must have {length} entries, got {len(values)}: {values!r}")
    for i, v in enumerate(values):
        if isinstance(v, (tuple, list)) and len(v) != 3:
            raise ValueError(f"`{name}` entry {i} must be an int or have 3 entries (spatial_dims), got {v!r}")
        _args.triple(v, f"{name}[{i}]")
    return list(values)


def _he_normal(model: mnn.Module, a: float = 0.01) -> None:
    """MONAI's ``kaiming_normal_(a=0.01)`` on every (transposed) convolution weight, zero biases."""
    gain = math.sqrt(2.0 / (1 + a * a))
    for _, module in model.named_modules():
        if isinstance(module, (lnn.Conv3d, lnn.ConvTranspose3d)):
            # PyTorch's fan_in is dim 1 times the kernel volume, for both kinds of weight.
            fan_in = math.prod(module.weight.shape[1:])
            module.weight = mx.random.normal(module.weight.shape) * (gain / math.sqrt(fan_in))
            if "bias" in module:
                module.bias = mx.zeros_like(module.bias)


class DynUNet(mnn.Module):
    r"""nnU-Net's dynamic U-Net (Isensee et al., 2021), as ``monai.networks.nets.DynUNet``.

    An input block, ``len(strides) - 2`` downsampling blocks and a
    bottleneck (each a :class:`~lucid_mlx.models.blocks.UnetBasicBlock`, or a
    :class:`~lucid_mlx.models.blocks.UnetResBlock` with ``res_block``), then
    ``len(strides) - 1`` :class:`~lucid_mlx.models.blocks.UnetUpBlock` s and
    a 1x1x1 output block. Level i uses ``kernel_size[i]`` and ``strides[i]``.

    MONAI also registers the blocks a second time inside ``skip_layers``
    (a recursive chain of ``downsample``/``next_layer``/``upsample``/
    ``super_head``), so its state_dicts hold those weights twice. Here
    they are held once and the ``skip_layers.*`` names are aliases
    (:meth:`torch_aliases`): MONAI checkpoints load strictly, saved
    state_dicts load strictly into MONAI, and training sees one set of
    weights as PyTorch does.

    Args:
        spatial_dims (int): Must be 3.
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (sequence): Kernel per level (int or 3 ints), at least 3 levels.
        strides (sequence): Stride per level; ``strides[0]`` is the input block's.
        upsample_kernel_size (sequence): Kernel (= stride) of each upsampling,
            ``len(strides) - 1`` entries, normally ``strides[1:]``.
        filters (sequence of int, optional): Channels per level (extra
            entries dropped). Default: nnU-Net's ``min(2 ** (5 + i), 320)``.
        dropout: Dropout after every convolution. Default: ``None``.
        norm_name: Norm. Default: ``("INSTANCE", {"affine": True})``.
        act_name: Activation. Default: ``("leakyrelu", {"inplace": True, "negative_slope": 0.01})``.
        deep_supervision (bool): In training mode, also return
            ``deep_supr_num`` heads on the upper decoder levels, resized
            (nearest) to the output and stacked on a new axis 1. Default: ``False``.
        deep_supr_num (int): Number of those heads, ``1 <= deep_supr_num < len(strides) - 1``.
            Default: ``1``.
        res_block (bool): Residual convolution blocks. Default: ``False``.
        trans_bias (bool): Bias in the transposed convolutions. Default: ``False``.

    Shape:
        - Input: (N, in_channels, D, H, W), each size divisible by the product of the strides.
        - Output: (N, out_channels, D / s0, H / s0, W / s0) with ``s0 = strides[0]``; in
          training mode with deep supervision (N, 1 + deep_supr_num, out_channels, ...).

    Example:
        >>> net = DynUNet(3, 1, 2, kernel_size=[3, 3, 3], strides=[1, 2, 2], upsample_kernel_size=[2, 2])
        >>> net(mx.zeros((1, 1, 16, 16, 16))).shape
        (1, 2, 16, 16, 16)
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[_size],
        strides: Sequence[_size],
        upsample_kernel_size: Sequence[_size],
        filters: Optional[Sequence[int]] = None,
        dropout: Union[tuple, str, float, None] = None,
        norm_name: Union[tuple, str] = ("INSTANCE", {"affine": True}),
        act_name: Union[tuple, str] = ("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
        deep_supervision: bool = False,
        deep_supr_num: int = 1,
        res_block: bool = False,
        trans_bias: bool = False,
    ):
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.in_channels = _args.check_int(in_channels, "in_channels", minimum=1)
        self.out_channels = _args.check_int(out_channels, "out_channels", minimum=1)
        self.strides = _levels(strides, "strides")
        n = len(self.strides)
        if n < 3:
            raise ValueError(f"`strides` needs at least 3 levels (input block, a downsampling, "
                             f"bottleneck), got {n}: {strides!r}")
        self.kernel_size = _levels(kernel_size, "kernel_size", n)
        self.upsample_kernel_size = _levels(upsample_kernel_size, "upsample_kernel_size", n - 1)
        if filters is None:
            filters = [min(2 ** (5 + i), 320) for i in range(n)]
        elif not isinstance(filters, (tuple, list)) or len(filters) < n:
            raise ValueError(f"`filters` must have at least len(strides) = {n} entries, got {filters!r}")
        self.filters = [_args.check_int(f, "filters", minimum=1) for f in filters[:n]]
        self.deep_supervision = _check_bool(deep_supervision, "deep_supervision")
        self.deep_supr_num = _args.check_int(deep_supr_num, "deep_supr_num")
        if self.deep_supervision and not 1 <= self.deep_supr_num < n - 1:
            raise ValueError(f"`deep_supr_num` must be at least 1 and less than the {n - 1} upsampling "
                             f"levels, got {deep_supr_num}")
        self.res_block = _check_bool(res_block, "res_block")
        self.trans_bias = _check_bool(trans_bias, "trans_bias")
        self.norm_name, self.act_name, self.dropout = norm_name, act_name, dropout

        block = UnetResBlock if self.res_block else UnetBasicBlock
        f, k, s = self.filters, self.kernel_size, self.strides
        common = dict(norm_name=norm_name, act_name=act_name, dropout=dropout)
        self.input_block = block(3, in_channels, f[0], k[0], s[0], **common)
        self.downsamples = [block(3, f[i - 1], f[i], k[i], s[i], **common) for i in range(1, n - 1)]
        self.bottleneck = block(3, f[-2], f[-1], k[-1], s[-1], **common)
        # Deepest first, as MONAI orders them.
        self.upsamples = [
            UnetUpBlock(3, f[i], f[i - 1], k[i], s[i], self.upsample_kernel_size[i - 1], trans_bias=trans_bias,
                        **common)
            for i in range(n - 1, 0, -1)
        ]
        self.output_block = UnetOutBlock(3, f[0], out_channels, dropout=dropout)
        if self.deep_supervision:
            self.deep_supervision_heads = [UnetOutBlock(3, f[i + 1], out_channels, dropout=dropout)
                                           for i in range(self.deep_supr_num)]
        _he_normal(self)

    def torch_aliases(self) -> dict[str, str]:
        """MONAI's second names for the blocks: the ``skip_layers`` chain, level by level."""
        downs = ["input_block"] + [f"downsamples.{i}" for i in range(len(self.downsamples))]
        aliases = {}
        for level, down in enumerate(downs):
            prefix = "skip_layers" + ".next_layer" * level
            aliases[f"{prefix}.downsample"] = down
            aliases[f"{prefix}.upsample"] = f"upsamples.{len(self.upsamples) - 1 - level}"
            if self.deep_supervision and 1 <= level <= self.deep_supr_num:
                aliases[f"{prefix}.super_head"] = f"deep_supervision_heads.{level - 1}"
        aliases["skip_layers" + ".next_layer" * len(downs)] = "bottleneck"
        return aliases

    def __call__(self, x: mx.array) -> mx.array:
        skips = []
        for down in [self.input_block, *self.downsamples]:
            x = down(x)
            skips.append(x)
        x = self.bottleneck(x)
        heads = [None] * self.deep_supr_num
        supervise = self.training and self.deep_supervision
        for i, up in enumerate(self.upsamples):
            level = len(skips) - 1 - i
            x = up(x, skips[level])
            if supervise and 1 <= level <= self.deep_supr_num:
                heads[level - 1] = self.deep_supervision_heads[level - 1](x)
        out = self.output_block(x)
        if not supervise:
            return out
        size = out.shape[2:]
        return mx.stack([out] + [lnn.functional.interpolate(h, size=size) for h in heads], axis=1)


DynUnet = Dynunet = DynUNet
