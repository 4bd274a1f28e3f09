"""SwinUNETR with MONAI 1.6.1's constructor arguments and state_dict names.

The Swin encoder's classes live in :mod:`.swin_transformer` and are
re-exported here under the names MONAI's ``monai.networks.nets.swin_unetr``
gives them.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import mlx.core as mx
import mlx.nn as nn

from ... import _args
from ...torch_io import load_torch_state_dict
from ..blocks.dynunet_block import UnetOutBlock
from ..blocks._vit_args import check_rate
from ..blocks.unetr_block import UnetrBasicBlock, UnetrUpBlock
from ..layers.convutils import check_spatial_dims
from .swin_transformer import (
    MERGING_MODE,
    BasicLayer,
    PatchMerging,
    PatchMergingV2,
    SwinTransformer,
    SwinTransformerBlock,
    WindowAttention,
    compute_mask,
    get_window_size,
    window_partition,
    window_reverse,
)

__all__ = [
    "SwinUNETR",
    "window_partition",
    "window_reverse",
    "get_window_size",
    "compute_mask",
    "WindowAttention",
    "SwinTransformerBlock",
    "PatchMerging",
    "PatchMergingV2",
    "MERGING_MODE",
    "BasicLayer",
    "SwinTransformer",
]

# MONAI's HyenaND options and their defaults: they only matter for Hyena
# stages, which lucid_mlx does not build, so other values are refused rather
# than ignored.
_HYENA_DEFAULTS = {
    "hyena_kernel_size": 3,
    "hyena_kernel_mlp_dim": 32,
    "hyena_kernel_layers": 3,
    "hyena_mask_max_attenuation": 0.95,
    "hyena_fft_padding": "circular",
    "hyena_grid_type": "single",
    "hyena_use_chunked_fft": False,
    "hyena_use_fft_short_conv": False,
    "hyena_omega_0": 10.0,
    "hyena_l_cache": 32,
    "hyena_short_conv_fft_chunks": 0,
}

# Parameter names of a block in the self-supervised pre-training checkpoint
# (Tang et al., 2022) that MONAI's load_from reads, and their names here.
_PRETRAINED_BLOCK_NAMES = {
    "norm1.weight": "norm1.weight", "norm1.bias": "norm1.bias",
    "attn.relative_position_bias_table": "attn.relative_position_bias_table",
    "attn.relative_position_index": "attn.relative_position_index",
    "attn.qkv.weight": "attn.qkv.weight", "attn.qkv.bias": "attn.qkv.bias",
    "attn.proj.weight": "attn.proj.weight", "attn.proj.bias": "attn.proj.bias",
    "norm2.weight": "norm2.weight", "norm2.bias": "norm2.bias",
    "mlp.fc1.weight": "mlp.linear1.weight", "mlp.fc1.bias": "mlp.linear1.bias",
    "mlp.fc2.weight": "mlp.linear2.weight", "mlp.fc2.bias": "mlp.linear2.bias",
}


class SwinUNETR(nn.Module):
    r"""Swin UNETR (Hatamizadeh et al., 2022): a Swin Transformer encoder with a convolutional U-Net decoder.

    The input is cut into ``patch_size``-voxel patches and passed through four
    Swin stages (shifted-window attention with relative position bias; patch
    merging halves the size and doubles the channels after each). The five
    feature maps (embedding and four stages), layer-normalised when
    ``normalize``, feed residual conv encoders and transposed-conv decoder
    blocks with skip connections, as in UNETR.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        patch_size (int): Patch size; must be 2, the only value for which
            the decoder's last upsampling meets the input size (MONAI accepts
            others and fails in forward). Each spatial input size must be
            divisible by ``patch_size ** 5`` = 32. Default: ``2``.
        depths (sequence of 4 ints): Swin blocks per stage. Default: ``(2, 2, 2, 2)``.
        num_heads (sequence of 4 ints): Heads per stage. Default: ``(3, 6, 12, 24)``.
        window_size (int or sequence of 3 ints): Attention window. Default: ``7``.
        qkv_bias (bool): Bias in the qkv projections. Default: ``True``.
        mlp_ratio (float): MLP hidden size over the channels. Default: ``4.0``.
        feature_size (int): Channels after the patch embedding, a multiple of 12. Default: ``24``.
        norm_name (str or tuple): Norm of the conv blocks, a MONAI name. Default: ``"instance"``.
        drop_rate (float): Dropout rate in [0, 1) (MONAI also accepts 1). Default: ``0.0``.
        attn_drop_rate (float): Attention dropout rate in [0, 1). Default: ``0.0``.
        dropout_path_rate (float): Stochastic depth, rising linearly from 0 to
            this value over all Swin blocks. Default: ``0.0``.
        normalize (bool): Layer-normalise the encoder's outputs. Default: ``True``.
        norm_layer (callable): Norm of the Swin blocks, built from a channel
            count into an ``mlx.nn.Module``; ``torch.nn.LayerNorm`` is read as
            ``mlx.nn.LayerNorm``. Default: ``mlx.nn.LayerNorm``.
        patch_norm (bool): Layer-normalise the patch embedding. Default: ``False``.
        use_checkpoint (bool): Gradient checkpointing of every Swin block
            (``mlx.nn.utils.checkpoint``): less memory, more compute. Not
            combinable with active dropout or drop path in training mode,
            where MLX would redraw the masks; that raises. Default: ``False``.
        spatial_dims (int): Must be 3. Default: ``3``.
        downsample (str or class): ``"merging"`` (MONAI v0.9.0's),
            ``"mergingv2"`` or a merging class (see :class:`PatchMerging`).
            Default: ``"merging"``.
        use_v2 (bool): SwinUNETR-V2: a residual conv block before each Swin
            stage (``swinViT.layers{i}c``). Default: ``False``.
        use_hyena (bool): MONAI's HyenaND stages, not available: ``True``
            raises. Default: ``False``.
        hyena_stages (sequence of bool, optional): Likewise: only ``None`` or
            all ``False``. Default: ``None``.
        hyena_kernel_size, hyena_kernel_mlp_dim, hyena_kernel_layers,
        hyena_mask_max_attenuation, hyena_fft_padding, hyena_grid_type,
        hyena_use_chunked_fft, hyena_use_fft_short_conv, hyena_omega_0,
        hyena_l_cache, hyena_short_conv_fft_chunks: Options of the Hyena
            stages; accepted at MONAI's defaults only.
        use_flash_attention (bool): Compute window attention with
            ``mx.fast.scaled_dot_product_attention`` (see
            :class:`WindowAttention`). Default: ``False``.

    Shape:
        - Input: (N, in_channels, D, H, W), each size divisible by ``patch_size ** 5``
        - Output: (N, out_channels, D, H, W)

    Example:
        >>> net = SwinUNETR(in_channels=1, out_channels=2, feature_size=12, window_size=4)
        >>> net(mx.zeros((1, 1, 32, 32, 32))).shape
        (1, 2, 32, 32, 32)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        patch_size: int = 2,
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: Sequence[int] | int = 7,
        qkv_bias: bool = True,
        mlp_ratio: float = 4.0,
        feature_size: int = 24,
        norm_name: tuple | str = "instance",
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        dropout_path_rate: float = 0.0,
        normalize: bool = True,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
        patch_norm: bool = False,
        use_checkpoint: bool = False,
        spatial_dims: int = 3,
        downsample: str | Callable[..., nn.Module] = "merging",
        use_v2: bool = False,
        use_hyena: bool = False,
        hyena_stages: Sequence[bool] | None = None,
        hyena_kernel_size: int = 3,
        hyena_kernel_mlp_dim: int = 32,
        hyena_kernel_layers: int = 3,
        hyena_mask_max_attenuation: float = 0.95,
        hyena_fft_padding: str = "circular",
        hyena_grid_type: str = "single",
        hyena_use_chunked_fft: bool = False,
        hyena_use_fft_short_conv: bool = False,
        hyena_omega_0: float = 10.0,
        hyena_l_cache: int = 32,
        hyena_short_conv_fft_chunks: int = 0,
        use_flash_attention: bool = False,
    ) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        given = dict(hyena_kernel_size=hyena_kernel_size, hyena_kernel_mlp_dim=hyena_kernel_mlp_dim,
                     hyena_kernel_layers=hyena_kernel_layers,
                     hyena_mask_max_attenuation=hyena_mask_max_attenuation, hyena_fft_padding=hyena_fft_padding,
                     hyena_grid_type=hyena_grid_type, hyena_use_chunked_fft=hyena_use_chunked_fft,
                     hyena_use_fft_short_conv=hyena_use_fft_short_conv, hyena_omega_0=hyena_omega_0,
                     hyena_l_cache=hyena_l_cache, hyena_short_conv_fft_chunks=hyena_short_conv_fft_chunks)
        changed = {k: v for k, v in given.items() if v != _HYENA_DEFAULTS[k]}
        if changed:
            raise ValueError(f"{', '.join(f'`{k}`={v!r}' for k, v in changed.items())}: options of MONAI's "
                             "HyenaND stages, which lucid_mlx does not implement; leave them at their defaults")
        self.patch_size = _args.triple(patch_size, "patch_size")
        if self.patch_size != (2, 2, 2):
            # decoder1 doubles the patch grid and concatenates it with the
            # full-resolution encoder1 features: only 2 lines them up. MONAI
            # accepts other values and fails in forward.
            raise ValueError(f"`patch_size` must be 2 (SwinUNETR's decoder upsamples the patch grid by 2 back "
                             f"to the input size), got {patch_size!r}")
        check_rate(drop_rate, "drop_rate")
        check_rate(attn_drop_rate, "attn_drop_rate")
        for name, number in (("dropout_path_rate", dropout_path_rate), ("mlp_ratio", mlp_ratio)):
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise TypeError(f"`{name}` must be a number, got {number!r}")
        if not 0 <= dropout_path_rate <= 1:
            raise ValueError(f"`dropout_path_rate` must be a number in [0, 1], got {dropout_path_rate!r}")
        feature_size = _args.check_int(feature_size, "feature_size", minimum=12)
        if feature_size % 12:
            raise ValueError(f"`feature_size` must be divisible by 12, got {feature_size}")
        for name, flag in (("qkv_bias", qkv_bias), ("normalize", normalize), ("patch_norm", patch_norm),
                           ("use_checkpoint", use_checkpoint), ("use_v2", use_v2),
                           ("use_flash_attention", use_flash_attention)):
            if not isinstance(flag, bool):
                raise TypeError(f"`{name}` must be a bool, got {flag!r}")
        if int(feature_size * mlp_ratio) < 1:
            raise ValueError(f"`mlp_ratio` must be a positive number, got {mlp_ratio!r}")
        self.normalize = normalize
        fs = feature_size
        self.swinViT = SwinTransformer(
            in_chans=in_channels, embed_dim=fs, window_size=_args.triple(window_size, "window_size"),
            patch_size=self.patch_size, depths=depths, num_heads=num_heads, mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
            drop_path_rate=dropout_path_rate, norm_layer=norm_layer, patch_norm=patch_norm,
            use_checkpoint=use_checkpoint, spatial_dims=3, downsample=downsample, use_v2=use_v2,
            use_hyena=use_hyena, hyena_stages=hyena_stages, use_flash_attention=use_flash_attention)

        def encoder(cin: int, cout: int) -> UnetrBasicBlock:
            return UnetrBasicBlock(spatial_dims=3, in_channels=cin, out_channels=cout, kernel_size=3, stride=1,
                                   norm_name=norm_name, res_block=True)

        def decoder(cin: int, cout: int) -> UnetrUpBlock:
            return UnetrUpBlock(spatial_dims=3, in_channels=cin, out_channels=cout, kernel_size=3,
                                upsample_kernel_size=2, norm_name=norm_name, res_block=True)

        self.encoder1 = encoder(in_channels, fs)
        self.encoder2 = encoder(fs, fs)
        self.encoder3 = encoder(2 * fs, 2 * fs)
        self.encoder4 = encoder(4 * fs, 4 * fs)
        self.encoder10 = encoder(16 * fs, 16 * fs)
        self.decoder5 = decoder(16 * fs, 8 * fs)
        self.decoder4 = decoder(8 * fs, 4 * fs)
        self.decoder3 = decoder(4 * fs, 2 * fs)
        self.decoder2 = decoder(2 * fs, fs)
        self.decoder1 = decoder(fs, fs)
        self.out = UnetOutBlock(spatial_dims=3, in_channels=fs, out_channels=out_channels)

    def _check_input_size(self, spatial_shape: Sequence[int]) -> None:
        """Raise ValueError unless each spatial size is divisible by ``patch_size ** 5``."""
        wrong = [i + 2 for i, (size, p) in enumerate(zip(spatial_shape, self.patch_size)) if size % p**5]
        if wrong:
            need = ", ".join(str(p**5) for p in self.patch_size)
            raise ValueError(f"SwinUNETR: spatial dimensions {wrong} of the input (spatial shape "
                             f"{tuple(spatial_shape)}) must be divisible by patch_size**5 = ({need})")

    def load_from(self, weights: Mapping[str, Any]) -> None:
        """Load the Swin encoder of a self-supervised pre-training checkpoint, as MONAI's ``load_from``.

        Args:
            weights: ``{"state_dict": {...}}`` with the checkpoint's names
                (``module.patch_embed.proj.weight``,
                ``module.layers1.0.blocks.0.mlp.fc1.weight``, ...), values as
                torch tensors, NumPy or MLX arrays.

        Raises:
            KeyError: a parameter the encoder needs is not in the checkpoint.
        """
        source = weights["state_dict"]
        picked = {}

        def take(ours: str, theirs: str) -> None:
            if theirs not in source:
                raise KeyError(f"load_from: the checkpoint has no {theirs!r} (needed for {ours!r})")
            picked[ours] = source[theirs]

        for name in ("weight", "bias"):
            take(f"swinViT.patch_embed.proj.{name}", f"module.patch_embed.proj.{name}")
        for i in range(1, 5):
            layer = getattr(self.swinViT, f"layers{i}")[0]
            for b, block in enumerate(layer.blocks):
                for theirs, ours in _PRETRAINED_BLOCK_NAMES.items():
                    if ours == "attn.qkv.bias" and "bias" not in block.attn.qkv:
                        continue
                    take(f"swinViT.layers{i}.0.blocks.{b}.{ours}", f"module.layers{i}.0.blocks.{b}.{theirs}")
            if "downsample" in layer:
                for name in ("reduction.weight", "norm.weight", "norm.bias"):
                    take(f"swinViT.layers{i}.0.downsample.{name}", f"module.layers{i}.0.downsample.{name}")
        load_torch_state_dict(self, picked, strict=False)

    def __call__(self, x_in: mx.array) -> mx.array:
        _args.check_array(x_in, "input", 5, "(N, C, D, H, W)")
        self._check_input_size(x_in.shape[2:])
        hidden = self.swinViT(x_in, self.normalize)
        enc0 = self.encoder1(x_in)
        enc1 = self.encoder2(hidden[0])
        enc2 = self.encoder3(hidden[1])
        enc3 = self.encoder4(hidden[2])
        dec4 = self.encoder10(hidden[4])
        dec3 = self.decoder5(dec4, hidden[3])
        dec2 = self.decoder4(dec3, enc3)
        dec1 = self.decoder3(dec2, enc2)
        dec0 = self.decoder2(dec1, enc1)
        out = self.decoder1(dec0, enc0)
        return self.out(out)
