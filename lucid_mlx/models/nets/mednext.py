"""MedNeXt, the ConvNeXt-style 3-D segmentation network, with MONAI 1.6.1's arguments and state_dict names."""

from __future__ import annotations

from typing import Sequence

import mlx.core as mx
import mlx.nn as nn

from ... import _args
from ...nn import Conv3d, Sequential
from ..blocks.mednext_block import NORM_TYPES, MedNeXtBlock, MedNeXtDownBlock, MedNeXtOutBlock, MedNeXtUpBlock
from ..layers.convutils import check_spatial_dims

__all__ = [
    "MedNeXt", "create_mednext",
    "MedNeXtSmall", "MedNeXtBase", "MedNeXtMedium", "MedNeXtLarge",
    "MedNext", "MedNextS", "MedNeXtS", "MedNextSmall", "MedNextB", "MedNeXtB", "MedNextBase",
    "MedNextM", "MedNeXtM", "MedNextMedium", "MedNextL", "MedNeXtL", "MedNextLarge",
]


def _ratios(value, stages: int, name: str) -> tuple[int, ...]:
    """An expansion ratio per stage, from one int or a sequence of one per stage."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * stages
    return _args.ntuple(value, stages, name)


def _block_counts(value, name: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not value:
        raise ValueError(f"`{name}` must be a non-empty sequence of ints (blocks per stage), got {value!r}")
    return _args.ntuple(value, len(value), name, minimum=0)


class MedNeXt(nn.Module):
    r"""MedNeXt (Roy et al., 2023): a U-Net of large-kernel depthwise ConvNeXt blocks.

    A 1x1x1 stem, ``len(blocks_down)`` encoder stages of :class:`MedNeXtBlock`
    each followed by a :class:`MedNeXtDownBlock` (channels double, size
    halves), a bottleneck, and as many decoder stages, each opened by a
    :class:`MedNeXtUpBlock` whose output is *added* to the encoder feature of
    the same scale. Stage ``i`` has ``init_filters * 2**i`` channels.

    Args:
        spatial_dims (int): Must be 3. Default: ``3``.
        init_filters (int): Channels of the first stage. Default: ``32``.
        in_channels (int): Input channels. Default: ``1``.
        out_channels (int): Output channels (classes). Default: ``2``.
        encoder_expansion_ratio (int or sequence): Per encoder stage. Default: ``2``.
        decoder_expansion_ratio (int or sequence): Per decoder stage. Default: ``2``.
        bottleneck_expansion_ratio (int): Default: ``2``.
        kernel_size (int): Odd size of every depthwise kernel. Default: ``7``.
        deep_supervision (bool): In training mode also return a 1x1x1
            projection of the input of every decoder stage. Default: ``False``.
        use_residual_connection (bool): Residual connections in all blocks. Default: ``False``.
        blocks_down (sequence of int): Blocks per encoder stage. Default: ``(2, 2, 2, 2)``.
        blocks_bottleneck (int): Blocks in the bottleneck. Default: ``2``.
        blocks_up (sequence of int): Blocks per decoder stage, as many stages
            as ``blocks_down``. Default: ``(2, 2, 2, 2)``.
        norm_type (str): ``"group"`` or ``"layer"`` (see :class:`MedNeXtBlock`;
            ``"layer"`` fixes every block's volume to k^3, so as in MONAI a
            whole network with it cannot run). Default: ``"group"``.
        global_resp_norm (bool): Global response normalisation in the
            standard and up blocks (not the down blocks, as MONAI). Default: ``False``.

    Shape:
        - Input: (N, in_channels, D, H, W), each of D, H, W divisible by ``2**len(blocks_down)``
        - Output: (N, out_channels, D, H, W); with ``deep_supervision`` in
          training mode a tuple of that and one output per decoder stage,
          from full resolution to the coarsest.

    Example:
        >>> net = MedNeXt(init_filters=8, in_channels=1, out_channels=3, kernel_size=3)
        >>> net(mx.zeros((1, 1, 32, 32, 32))).shape
        (1, 3, 32, 32, 32)
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        init_filters: int = 32,
        in_channels: int = 1,
        out_channels: int = 2,
        encoder_expansion_ratio: Sequence[int] | int = 2,
        decoder_expansion_ratio: Sequence[int] | int = 2,
        bottleneck_expansion_ratio: int = 2,
        kernel_size: int = 7,
        deep_supervision: bool = False,
        use_residual_connection: bool = False,
        blocks_down: Sequence[int] = (2, 2, 2, 2),
        blocks_bottleneck: int = 2,
        blocks_up: Sequence[int] = (2, 2, 2, 2),
        norm_type: str = "group",
        global_resp_norm: bool = False,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        f = _args.check_int(init_filters, "init_filters", minimum=1)
        blocks_down = _block_counts(blocks_down, "blocks_down")
        blocks_up = _block_counts(blocks_up, "blocks_up")
        if len(blocks_up) != len(blocks_down):
            raise ValueError(f"`blocks_up` must have one entry per encoder stage (len(blocks_down) = "
                             f"{len(blocks_down)}), got {blocks_up!r}")
        blocks_bottleneck = _args.check_int(blocks_bottleneck, "blocks_bottleneck", minimum=0)
        enc_ratio = _ratios(encoder_expansion_ratio, len(blocks_down), "encoder_expansion_ratio")
        dec_ratio = _ratios(decoder_expansion_ratio, len(blocks_up), "decoder_expansion_ratio")
        for name, flag in (("deep_supervision", deep_supervision),
                           ("use_residual_connection", use_residual_connection),
                           ("global_resp_norm", global_resp_norm)):
            if not isinstance(flag, bool):
                raise TypeError(f"`{name}` must be a bool, got {flag!r}")
        if norm_type not in NORM_TYPES:
            raise ValueError(f"`norm_type` must be one of {NORM_TYPES}, got {norm_type!r}")
        self.do_ds = deep_supervision
        stages = len(blocks_down)
        common = dict(kernel_size=kernel_size, use_residual_connection=use_residual_connection,
                      norm_type=norm_type, dim="3d")

        def stage(channels: int, ratio: int, count: int) -> Sequential:
            return Sequential(*[MedNeXtBlock(channels, channels, expansion_ratio=ratio,
                                             global_resp_norm=global_resp_norm, **common)
                                for _ in range(count)])

        self.stem = Conv3d(in_channels, f, kernel_size=1)
        self.enc_stages = [stage(f * 2**i, enc_ratio[i], n) for i, n in enumerate(blocks_down)]
        self.down_blocks = [MedNeXtDownBlock(f * 2**i, f * 2**(i + 1), expansion_ratio=enc_ratio[i], **common)
                            for i in range(stages)]
        self.bottleneck = stage(f * 2**stages, _args.check_int(
            bottleneck_expansion_ratio, "bottleneck_expansion_ratio", minimum=1), blocks_bottleneck)
        self.up_blocks = [MedNeXtUpBlock(f * 2**(stages - i), f * 2**(stages - i - 1), expansion_ratio=dec_ratio[i],
                                         global_resp_norm=global_resp_norm, **common)
                          for i in range(stages)]
        self.dec_stages = [stage(f * 2**(stages - i - 1), dec_ratio[i], n) for i, n in enumerate(blocks_up)]
        self.out_0 = MedNeXtOutBlock(f, out_channels, dim="3d")
        if deep_supervision:
            # Coarsest first: out_blocks[i] projects the input of decoder stage i.
            self.out_blocks = [MedNeXtOutBlock(f * 2**i, out_channels, dim="3d") for i in range(stages, 0, -1)]
        self._levels = stages

    def __call__(self, x: mx.array) -> mx.array | tuple[mx.array, ...]:
        _args.check_array(x, "input", 5, "(N, C, D, H, W)")
        step = 2**self._levels
        if any(size % step for size in x.shape[2:]):
            raise ValueError(f"MedNeXt: each spatial size must be divisible by 2**len(blocks_down) = {step} "
                             f"so that the skip connections line up, got input shape {tuple(x.shape)}")
        x = self.stem(x)
        skips = []
        for enc_stage, down in zip(self.enc_stages, self.down_blocks):
            x = enc_stage(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        supervised = self.do_ds and self.training
        ds_outputs = []
        for i, (up, dec_stage) in enumerate(zip(self.up_blocks, self.dec_stages)):
            if supervised:
                ds_outputs.append(self.out_blocks[i](x))
            x = dec_stage(up(x) + skips[-(i + 1)])
        x = self.out_0(x)
        if supervised:
            return (x, *ds_outputs[::-1])
        return x


def create_mednext(variant: str, spatial_dims: int = 3, in_channels: int = 1, out_channels: int = 2,
                   kernel_size: int = 3, deep_supervision: bool = False) -> MedNeXt:
    """One of the paper's MedNeXt sizes: ``"S"``, ``"B"``, ``"M"`` or ``"L"`` (any case).

    All use 32 initial filters, residual connections and GroupNorm; they
    differ in expansion ratios and block counts. Note the default
    ``kernel_size=3`` (MONAI's; the paper's large-kernel models use 5 or 7).

    Example:
        >>> net = create_mednext("S", out_channels=3, kernel_size=7)
    """
    common = dict(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                  kernel_size=kernel_size, deep_supervision=deep_supervision, use_residual_connection=True,
                  norm_type="group", global_resp_norm=False, init_filters=32)
    variants = {
        "S": dict(encoder_expansion_ratio=2, decoder_expansion_ratio=2, bottleneck_expansion_ratio=2,
                  blocks_down=(2, 2, 2, 2), blocks_bottleneck=2, blocks_up=(2, 2, 2, 2)),
        "B": dict(encoder_expansion_ratio=(2, 3, 4, 4), decoder_expansion_ratio=(4, 4, 3, 2),
                  bottleneck_expansion_ratio=4, blocks_down=(2, 2, 2, 2), blocks_bottleneck=2,
                  blocks_up=(2, 2, 2, 2)),
        "M": dict(encoder_expansion_ratio=(2, 3, 4, 4), decoder_expansion_ratio=(4, 4, 3, 2),
                  bottleneck_expansion_ratio=4, blocks_down=(3, 4, 4, 4), blocks_bottleneck=4,
                  blocks_up=(4, 4, 4, 3)),
        "L": dict(encoder_expansion_ratio=(3, 4, 8, 8), decoder_expansion_ratio=(8, 8, 4, 3),
                  bottleneck_expansion_ratio=8, blocks_down=(3, 4, 8, 8), blocks_bottleneck=8,
                  blocks_up=(8, 8, 4, 3)),
    }
    if not isinstance(variant, str) or variant.upper() not in variants:
        raise ValueError(f"`variant` must be one of 'S', 'B', 'M', 'L', got {variant!r}")
    return MedNeXt(**variants[variant.upper()], **common)


def MedNeXtSmall(**kwargs) -> MedNeXt:
    """MedNeXt-S: ``create_mednext("S", **kwargs)``."""
    return create_mednext("S", **kwargs)


def MedNeXtBase(**kwargs) -> MedNeXt:
    """MedNeXt-B: ``create_mednext("B", **kwargs)``."""
    return create_mednext("B", **kwargs)


def MedNeXtMedium(**kwargs) -> MedNeXt:
    """MedNeXt-M: ``create_mednext("M", **kwargs)``."""
    return create_mednext("M", **kwargs)


def MedNeXtLarge(**kwargs) -> MedNeXt:
    """MedNeXt-L: ``create_mednext("L", **kwargs)``."""
    return create_mednext("L", **kwargs)


# MONAI's aliases.
MedNext = MedNeXt
MedNextS = MedNeXtS = MedNextSmall = MedNeXtSmall
MedNextB = MedNeXtB = MedNextBase = MedNeXtBase
MedNextM = MedNeXtM = MedNextMedium = MedNeXtMedium
MedNextL = MedNeXtL = MedNextLarge = MedNeXtLarge
