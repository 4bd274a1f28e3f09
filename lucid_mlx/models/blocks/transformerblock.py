"""MONAI's ``TransformerBlock``: pre-norm self-attention and MLP, each with a residual."""

from __future__ import annotations

from typing import Optional

import mlx.core as mx
import mlx.nn as mnn

from ._vit_args import check_heads, check_rate
from .mlp import MLPBlock
from .selfattention import SABlock


class TransformerBlock(mnn.Module):
    r"""``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``, as ``monai.networks.blocks.TransformerBlock``.

    ``norm_cross_attn`` exists, unused, because MONAI always creates it and
    its weights are in MONAI's state_dicts.

    Args:
        hidden_size (int): Token features C.
        mlp_dim (int): Hidden features of the MLP (``0``: ``hidden_size``).
        num_heads (int): Attention heads.
        dropout_rate (float): Dropout in attention and MLP. Default: ``0.0``.
        qkv_bias (bool): Bias in the q/k/v projections. Default: ``False``.
        save_attn (bool): Keep the attention weights in ``attn.att_mat``. Default: ``False``.
        causal (bool): Causal attention. Default: ``False``.
        sequence_length (int, optional): Needed for ``causal``.
        with_cross_attention (bool): Only ``False`` (cross-attention is not implemented).
        use_flash_attention (bool): Fused attention. Default: ``False``.
        include_fc (bool): Attention output projection. Default: ``True``.
        use_combined_linear (bool): One qkv projection. Default: ``True``.

    Shape:
        - Input: (B, N, hidden_size); output: same shape.
    """

    def __init__(
        self,
        hidden_size: int,
        mlp_dim: int,
        num_heads: int,
        dropout_rate: float = 0.0,
        qkv_bias: bool = False,
        save_attn: bool = False,
        causal: bool = False,
        sequence_length: Optional[int] = None,
        with_cross_attention: bool = False,
        use_flash_attention: bool = False,
        include_fc: bool = True,
        use_combined_linear: bool = True,
    ):
        super().__init__()
        check_rate(dropout_rate)
        hidden_size, num_heads = check_heads(hidden_size, num_heads)
        if with_cross_attention is not False:
            raise ValueError(f"`with_cross_attention` must be False (cross-attention is not "
                             f"implemented), got {with_cross_attention!r}")
        self.mlp = MLPBlock(hidden_size, mlp_dim, dropout_rate)
        self.norm1 = mnn.LayerNorm(hidden_size)
        self.attn = SABlock(hidden_size, num_heads, dropout_rate, qkv_bias=qkv_bias, save_attn=save_attn,
                            causal=causal, sequence_length=sequence_length, include_fc=include_fc,
                            use_combined_linear=use_combined_linear,
                            use_flash_attention=use_flash_attention)
        self.norm2 = mnn.LayerNorm(hidden_size)
        self.norm_cross_attn = mnn.LayerNorm(hidden_size)
        self.with_cross_attention = False

    def __call__(self, x: mx.array, context: Optional[mx.array] = None,
                 attn_mask: Optional[mx.array] = None) -> mx.array:
        if context is not None:
            raise ValueError("`context` is for cross-attention, which this block does not have")
        x = x + self.attn(self.norm1(x), attn_mask=attn_mask)
        return x + self.mlp(self.norm2(x))
