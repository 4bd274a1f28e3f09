"""MONAI's ``SABlock``: multi-head self-attention over a (B, N, C) token sequence."""

from __future__ import annotations

from typing import Optional

import mlx.core as mx
import mlx.nn as mnn

from ... import _args
from ._vit_args import check_heads, check_rate, dropout_layer


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool, got {value!r}")
    return value


class SABlock(mnn.Module):
    r"""Multi-head self-attention, as ``monai.networks.blocks.SABlock``.

    ``softmax(q k^T / sqrt(dim_head)) v`` per head, with q, k, v from one
    ``qkv`` linear layer (or three, ``to_q``/``to_k``/``to_v``) and an
    output projection ``out_proj``.

    Args:
        hidden_size (int): Token features C.
        num_heads (int): Attention heads.
        dropout_rate (float): Dropout on the attention weights and the
            output. Default: ``0.0``.
        qkv_bias (bool): Bias in the q/k/v projections. Default: ``False``.
        save_attn (bool): Keep the last attention weights (after softmax,
            without gradient) in ``att_mat``. Default: ``False``.
        dim_head (int, optional): Features per head. Default: ``hidden_size // num_heads``.
        hidden_input_size (int, optional): Input features. Default: ``hidden_size``.
        causal (bool): Each token attends only to itself and earlier ones.
            Default: ``False``.
        sequence_length (int, optional): Longest sequence; needed for ``causal``.
        rel_pos_embedding: Only ``None`` (MONAI's decomposed relative
            positions are not implemented).
        input_size: Only used with ``rel_pos_embedding``; ignored as in MONAI.
        attention_dtype (mlx.core.Dtype, optional): Compute q k^T in this dtype.
        include_fc (bool): Apply ``out_proj``. Default: ``True``.
        use_combined_linear (bool): One ``qkv`` layer rather than three. Default: ``True``.
        use_flash_attention (bool): Use ``mx.fast.scaled_dot_product_attention``
            (same result, no attention matrix kept). Default: ``False``.

    Shape:
        - Input: (B, N, hidden_input_size); output: same shape.

    Example:
        >>> attn = SABlock(32, 4, qkv_bias=True)
        >>> attn(mx.zeros((2, 8, 32))).shape
        (2, 8, 32)
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        dropout_rate: float = 0.0,
        qkv_bias: bool = False,
        save_attn: bool = False,
        dim_head: Optional[int] = None,
        hidden_input_size: Optional[int] = None,
        causal: bool = False,
        sequence_length: Optional[int] = None,
        rel_pos_embedding: Optional[str] = None,
        input_size: Optional[tuple] = None,
        attention_dtype: Optional[mx.Dtype] = None,
        include_fc: bool = True,
        use_combined_linear: bool = True,
        use_flash_attention: bool = False,
    ):
        super().__init__()
        self.dropout_rate = check_rate(dropout_rate)
        hidden_size, num_heads = check_heads(hidden_size, num_heads)
        self.dim_head = (_args.check_int(dim_head, "dim_head", minimum=1) if dim_head
                         else hidden_size // num_heads)
        self.num_heads = num_heads
        self.inner_dim = num_heads * self.dim_head
        self.hidden_input_size = (_args.check_int(hidden_input_size, "hidden_input_size", minimum=1)
                                  if hidden_input_size else hidden_size)
        for name, value in (("qkv_bias", qkv_bias), ("save_attn", save_attn), ("causal", causal),
                            ("include_fc", include_fc), ("use_combined_linear", use_combined_linear),
                            ("use_flash_attention", use_flash_attention)):
            _check_bool(value, name)
        if rel_pos_embedding is not None:
            raise ValueError(f"`rel_pos_embedding` must be None (decomposed relative position "
                             f"embeddings are not implemented), got {rel_pos_embedding!r}")
        if causal and sequence_length is None:
            raise ValueError("`sequence_length` is needed when `causal` is True")
        if use_flash_attention and save_attn:
            raise ValueError("`save_attn` needs the attention matrix, which `use_flash_attention` "
                             "does not form; set one of them to False")
        if use_flash_attention and self.dropout_rate:
            # MONAI hands dropout_p to PyTorch's fused attention, which drops
            # attention weights in eval mode too; that is not reproduced here.
            raise ValueError(f"`use_flash_attention` with `dropout_rate` > 0 (got {dropout_rate}) is "
                             "not supported: MONAI then drops attention weights in eval mode as well")
        if attention_dtype is not None:
            attention_dtype = _args.float_dtype(attention_dtype, "attention_dtype")
        self.attention_dtype = attention_dtype

        self.out_proj = (mnn.Linear(self.inner_dim, self.hidden_input_size) if include_fc
                         else mnn.Identity())
        if use_combined_linear:
            self.qkv = mnn.Linear(self.hidden_input_size, self.inner_dim * 3, bias=qkv_bias)
        else:
            self.to_q = mnn.Linear(self.hidden_input_size, self.inner_dim, bias=qkv_bias)
            self.to_k = mnn.Linear(self.hidden_input_size, self.inner_dim, bias=qkv_bias)
            self.to_v = mnn.Linear(self.hidden_input_size, self.inner_dim, bias=qkv_bias)
        self.drop_output = dropout_layer(dropout_rate)
        self.drop_weights = dropout_layer(dropout_rate)
        self.scale = self.dim_head ** -0.5
        self.save_attn = save_attn
        self.causal = causal
        self.sequence_length = sequence_length
        self.include_fc = include_fc
        self.use_combined_linear = use_combined_linear
        self.use_flash_attention = use_flash_attention
        self._att_mat = mx.zeros((0,))
        if causal:
            length = _args.check_int(sequence_length, "sequence_length", minimum=1)
            # A buffer in MONAI's state_dict, so kept (frozen) among the arrays.
            self.causal_mask = mx.tril(mx.ones((length, length))).reshape(1, 1, length, length)
            self.freeze(keys=["causal_mask"], recurse=False)

    @property
    def att_mat(self) -> mx.array:
        """The last attention weights (B, heads, N, N) when ``save_attn`` is True."""
        return self._att_mat

    def _heads(self, x: mx.array) -> mx.array:
        # (B, N, heads * d) -> (B, heads, N, d)
        b, n, _ = x.shape
        return x.reshape(b, n, self.num_heads, self.dim_head).transpose(0, 2, 1, 3)

    def __call__(self, x: mx.array, attn_mask: Optional[mx.array] = None) -> mx.array:
        b, n, _ = x.shape
        if self.use_combined_linear:
            qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.dim_head).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
        else:
            q, k, v = self._heads(self.to_q(x)), self._heads(self.to_k(x)), self._heads(self.to_v(x))
        if self.attention_dtype is not None:
            q, k = q.astype(self.attention_dtype), k.astype(self.attention_dtype)
        if self.causal and attn_mask is not None:
            raise ValueError("causal attention does not take an `attn_mask`")
        if self.causal and n > self.sequence_length:
            raise ValueError(f"the sequence has {n} tokens, more than `sequence_length` "
                             f"(={self.sequence_length})")
        if self.use_flash_attention:
            if attn_mask is not None:
                raise ValueError("`attn_mask` is not supported with `use_flash_attention`")
            out = mx.fast.scaled_dot_product_attention(
                q, k, v.astype(q.dtype), scale=self.scale, mask="causal" if self.causal else None)
        else:
            att = (q @ k.swapaxes(-1, -2)) * self.scale
            if self.causal:
                att = mx.where(self.causal_mask[:, :, :n, :n] == 0, -mx.inf, att)
            if attn_mask is not None:
                if attn_mask.shape != (b, n):
                    raise ValueError(f"`attn_mask` must have shape (B, N) = {(b, n)}, "
                                     f"got {tuple(attn_mask.shape)}")
                att = mx.where((attn_mask == 0)[:, None, None, :], -mx.inf, att)
            att = mx.softmax(att, axis=-1)
            if self.save_attn:
                self._att_mat = mx.stop_gradient(att)
            out = self.drop_weights(att) @ v
        out = out.transpose(0, 2, 1, 3).reshape(b, n, self.inner_dim)
        return self.drop_output(self.out_proj(out))
