"""MONAI's ``ViT``: a Vision Transformer on 3-D patches (UNETR's encoder)."""

from __future__ import annotations

from typing import Sequence, Union

import mlx.core as mx
import mlx.nn as mnn

from ... import _args
from ... import nn as lnn
from ..blocks._vit_args import check_heads, check_rate
from ..blocks.patchembedding import PatchEmbeddingBlock
from ..blocks.transformerblock import TransformerBlock

__all__ = ["ViT"]


class ViT(mnn.Module):
    r"""Vision Transformer (Dosovitskiy et al., 2021) on NCDHW volumes, as ``monai.networks.nets.ViT``.

    Patch embedding, ``num_layers`` transformer blocks, a final LayerNorm
    and, with ``classification``, a class token and a linear head.

    Args:
        in_channels (int): Input channels.
        img_size (int or sequence): Input size (D, H, W).
        patch_size (int or sequence): Patch size.
        hidden_size (int): Token features. Default: ``768``.
        mlp_dim (int): MLP hidden features. Default: ``3072``.
        num_layers (int): Transformer blocks. Default: ``12``.
        num_heads (int): Attention heads. Default: ``12``.
        proj_type (str): ``"conv"`` or ``"perceptron"``. Default: ``"conv"``.
        pos_embed_type (str): ``"none"``, ``"learnable"``, ``"sincos"`` or
            ``"fourier"``. Default: ``"learnable"``.
        classification (bool): Prepend a class token and add a head. Default: ``False``.
        num_classes (int): Head outputs. Default: ``2``.
        dropout_rate (float): Dropout everywhere. Default: ``0.0``.
        spatial_dims (int): Must be 3. Default: ``3``.
        post_activation: ``"Tanh"`` puts a tanh after the head; anything
            else, none. Default: ``"Tanh"``.
        qkv_bias (bool): Bias in the q/k/v projections. Default: ``False``.
        save_attn (bool): Keep each block's attention weights. Default: ``False``.

    Returns:
        ``(x, hidden_states_out)``: the normalised tokens (B, N, hidden_size)
        (or the head's (B, num_classes) with ``classification``) and the
        list of every block's output.

    Example:
        >>> vit = ViT(1, img_size=32, patch_size=16, hidden_size=24, mlp_dim=32, num_layers=2, num_heads=4)
        >>> x, hidden = vit(mx.zeros((1, 1, 32, 32, 32)))
        >>> x.shape, len(hidden)
        ((1, 8, 24), 2)
    """

    def __init__(
        self,
        in_channels: int,
        img_size: Union[Sequence[int], int],
        patch_size: Union[Sequence[int], int],
        hidden_size: int = 768,
        mlp_dim: int = 3072,
        num_layers: int = 12,
        num_heads: int = 12,
        proj_type: str = "conv",
        pos_embed_type: str = "learnable",
        classification: bool = False,
        num_classes: int = 2,
        dropout_rate: float = 0.0,
        spatial_dims: int = 3,
        post_activation="Tanh",
        qkv_bias: bool = False,
        save_attn: bool = False,
    ):
        super().__init__()
        check_rate(dropout_rate)
        hidden_size, num_heads = check_heads(hidden_size, num_heads)
        num_layers = _args.check_int(num_layers, "num_layers", minimum=0)
        if not isinstance(classification, bool):
            raise TypeError(f"`classification` must be a bool, got {classification!r}")
        self.classification = classification
        self.patch_embedding = PatchEmbeddingBlock(
            in_channels, img_size, patch_size, hidden_size, num_heads, proj_type=proj_type,
            pos_embed_type=pos_embed_type, dropout_rate=dropout_rate, spatial_dims=spatial_dims)
        self.blocks = [TransformerBlock(hidden_size, mlp_dim, num_heads, dropout_rate, qkv_bias, save_attn)
                       for _ in range(num_layers)]
        self.norm = mnn.LayerNorm(hidden_size)
        if classification:
            num_classes = _args.check_int(num_classes, "num_classes", minimum=1)
            self.cls_token = mx.zeros((1, 1, hidden_size))
            head = mnn.Linear(hidden_size, num_classes)
            self.classification_head = (lnn.Sequential(head, mnn.Tanh()) if post_activation == "Tanh"
                                        else head)

    def __call__(self, x: mx.array) -> tuple[mx.array, list[mx.array]]:
        x = self.patch_embedding(x)
        if self.classification:
            x = mx.concatenate([mx.broadcast_to(self.cls_token, (x.shape[0], 1, x.shape[2])), x], axis=1)
        hidden_states_out = []
        for block in self.blocks:
            x = block(x)
            hidden_states_out.append(x)
        x = self.norm(x)
        if self.classification:
            x = self.classification_head(x[:, 0])
        return x, hidden_states_out
