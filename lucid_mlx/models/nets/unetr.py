"""MONAI's ``UNETR``: a ViT encoder on 16^3 patches with a convolutional U-Net decoder."""

from __future__ import annotations

from typing import Sequence, Union

import mlx.core as mx
import mlx.nn as mnn

from ... import _args
from ..blocks._vit_args import check_heads, check_rate
from ..blocks.dynunet_block import UnetOutBlock
from ..blocks.unetr_block import UnetrBasicBlock, UnetrPrUpBlock, UnetrUpBlock
from ..layers.convutils import check_spatial_dims
from .vit import ViT

__all__ = ["UNETR"]


class UNETR(mnn.Module):
    r"""UNETR (Hatamizadeh et al., 2022), as ``monai.networks.nets.UNETR``.

    A 12-layer :class:`ViT` embeds 16x16x16 patches; the tokens of layers
    3, 6 and 9 and the final ones are reshaped to feature volumes and
    upsampled by transposed convolutions (``encoder2``..``encoder4``,
    ``decoder5``..``decoder2``) into a U-Net decoder whose finest skip is a
    convolution block on the input (``encoder1``).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        img_size (int or sequence): Input size (D, H, W), each a multiple of 16.
        feature_size (int): Decoder channels at full resolution. Default: ``16``.
        hidden_size (int): Transformer features. Default: ``768``.
        mlp_dim (int): Transformer MLP features. Default: ``3072``.
        num_heads (int): Attention heads. Default: ``12``.
        proj_type (str): Patch embedding, ``"conv"`` or ``"perceptron"``. Default: ``"conv"``.
        norm_name: Decoder norm. Default: ``"instance"``.
        conv_block (bool): Convolution blocks in ``encoder2``..``encoder4``. Default: ``True``.
        res_block (bool): Residual decoder blocks. Default: ``True``.
        dropout_rate (float): Transformer dropout. Default: ``0.0``.
        spatial_dims (int): Must be 3. Default: ``3``.
        qkv_bias (bool): Bias in the q/k/v projections. Default: ``False``.
        save_attn (bool): Keep each block's attention weights. Default: ``False``.

    Shape:
        - Input: (N, in_channels, \*img_size); output: (N, out_channels, \*img_size).

    Example:
        >>> net = UNETR(1, 2, img_size=32, feature_size=4, hidden_size=24, mlp_dim=32, num_heads=4)
        >>> net(mx.zeros((1, 1, 32, 32, 32))).shape
        (1, 2, 32, 32, 32)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        img_size: Union[Sequence[int], int],
        feature_size: int = 16,
        hidden_size: int = 768,
        mlp_dim: int = 3072,
        num_heads: int = 12,
        proj_type: str = "conv",
        norm_name: Union[tuple, str] = "instance",
        conv_block: bool = True,
        res_block: bool = True,
        dropout_rate: float = 0.0,
        spatial_dims: int = 3,
        qkv_bias: bool = False,
        save_attn: bool = False,
    ):
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_rate(dropout_rate)
        hidden_size, num_heads = check_heads(hidden_size, num_heads)
        fs = _args.check_int(feature_size, "feature_size", minimum=1)
        img_size = _args.triple(img_size, "img_size")
        if any(m % 16 for m in img_size):
            # MONAI floors the token grid, and its decoder then cannot meet the skips.
            raise ValueError(f"`img_size` must be a multiple of the patch size 16 in each dimension, "
                             f"got {img_size}")
        self.num_layers = 12
        self.patch_size = (16, 16, 16)
        self.feat_size = tuple(m // 16 for m in img_size)
        self.hidden_size = hidden_size
        self.classification = False
        self.vit = ViT(in_channels=in_channels, img_size=img_size, patch_size=self.patch_size,
                       hidden_size=hidden_size, mlp_dim=mlp_dim, num_layers=self.num_layers,
                       num_heads=num_heads, proj_type=proj_type, classification=False,
                       dropout_rate=dropout_rate, spatial_dims=3, qkv_bias=qkv_bias, save_attn=save_attn)
        up = dict(spatial_dims=3, kernel_size=3, stride=1, upsample_kernel_size=2, norm_name=norm_name,
                  conv_block=conv_block, res_block=res_block)
        self.encoder1 = UnetrBasicBlock(3, in_channels, fs, kernel_size=3, stride=1, norm_name=norm_name,
                                        res_block=res_block)
        self.encoder2 = UnetrPrUpBlock(in_channels=hidden_size, out_channels=fs * 2, num_layer=2, **up)
        self.encoder3 = UnetrPrUpBlock(in_channels=hidden_size, out_channels=fs * 4, num_layer=1, **up)
        self.encoder4 = UnetrPrUpBlock(in_channels=hidden_size, out_channels=fs * 8, num_layer=0, **up)
        dec = dict(spatial_dims=3, kernel_size=3, upsample_kernel_size=2, norm_name=norm_name,
                   res_block=res_block)
        self.decoder5 = UnetrUpBlock(in_channels=hidden_size, out_channels=fs * 8, **dec)
        self.decoder4 = UnetrUpBlock(in_channels=fs * 8, out_channels=fs * 4, **dec)
        self.decoder3 = UnetrUpBlock(in_channels=fs * 4, out_channels=fs * 2, **dec)
        self.decoder2 = UnetrUpBlock(in_channels=fs * 2, out_channels=fs, **dec)
        self.out = UnetOutBlock(3, fs, out_channels)

    def proj_feat(self, x: mx.array) -> mx.array:
        """Tokens (B, N, hidden_size) to a feature volume (B, hidden_size, *feat_size)."""
        return x.reshape(x.shape[0], *self.feat_size, self.hidden_size).transpose(0, 4, 1, 2, 3)

    def __call__(self, x_in: mx.array) -> mx.array:
        x, hidden_states_out = self.vit(x_in)
        enc1 = self.encoder1(x_in)
        enc2 = self.encoder2(self.proj_feat(hidden_states_out[3]))
        enc3 = self.encoder3(self.proj_feat(hidden_states_out[6]))
        enc4 = self.encoder4(self.proj_feat(hidden_states_out[9]))
        dec3 = self.decoder5(self.proj_feat(x), enc4)
        dec2 = self.decoder4(dec3, enc3)
        dec1 = self.decoder3(dec2, enc2)
        return self.out(self.decoder2(dec1, enc1))
