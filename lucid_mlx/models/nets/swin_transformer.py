"""The 3-D Swin Transformer encoder of SwinUNETR, with MONAI's state_dict names.

Liu et al., 2021, "Swin Transformer: Hierarchical Vision Transformer using
Shifted Windows", extended to volumes: self-attention inside non-overlapping
(wd, wh, ww) windows, the windows shifted by half a window every second
block so that information crosses window borders, and patch merging between
stages. Inside a stage tensors are channels-last (B, D, H, W, C), as the
attention and LayerNorm want; stages take and return NCDHW.

MONAI's ``monai.networks.nets.swin_unetr`` defines the same classes; this file
reproduces their parameter names, buffer names and arithmetic (including the
-100 additive mask, the relative-position index cropped to ``[:n, :n]`` when a
window shrinks to a small volume, and the padding of volumes that windows do
not divide) so that MONAI checkpoints load strictly and outputs agree.
"""

from __future__ import annotations

import itertools
from typing import Callable, Sequence

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from ... import _args
from ..blocks._vit_args import dropout_layer
from ..blocks.mlp import MLPBlock
from ..blocks.patchembedding import PatchEmbed
from ..blocks.unetr_block import UnetrBasicBlock
from ..layers.convutils import check_spatial_dims
from ..layers.drop_path import DropPath
from ..layers.norm_layer import resolve_norm_layer

__all__ = [
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


def window_partition(x: mx.array, window_size: Sequence[int]) -> mx.array:
    """Cut (B, D, H, W, C) into windows: (B * num_windows, wd * wh * ww, C).

    Windows are ordered batch-major, then D, H, W, as MONAI's.
    """
    b, d, h, w, c = x.shape
    wd, wh, ww = window_size
    x = x.reshape(b, d // wd, wd, h // wh, wh, w // ww, ww, c)
    return x.transpose(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, wd * wh * ww, c)


def window_reverse(windows: mx.array, window_size: Sequence[int], dims: Sequence[int]) -> mx.array:
    """Inverse of :func:`window_partition`: windows back to (B, D, H, W, C) for ``dims`` (B, D, H, W)."""
    b, d, h, w = dims
    wd, wh, ww = window_size
    x = windows.reshape(b, d // wd, h // wh, w // ww, wd, wh, ww, -1)
    return x.transpose(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


def get_window_size(x_size, window_size, shift_size=None):
    """Shrink windows to the volume where it is not larger than a window.

    Along a dimension no longer than its window, the window covers the whole
    extent and is not shifted. Returns the window size, and the shift size
    too when ``shift_size`` is given.
    """
    use_window = list(window_size)
    use_shift = list(shift_size) if shift_size is not None else None
    for i, size in enumerate(x_size):
        if size <= window_size[i]:
            use_window[i] = size
            if use_shift is not None:
                use_shift[i] = 0
    if use_shift is None:
        return tuple(use_window)
    return tuple(use_window), tuple(use_shift)


def compute_mask(dims: Sequence[int], window_size: Sequence[int], shift_size: Sequence[int]) -> mx.array:
    """Additive attention mask for shifted windows: (num_windows, n, n), 0 or -100.

    After the cyclic shift a window can hold voxels from up to 27 regions that
    were not neighbours in the volume; tokens of different regions must not
    attend to each other. Each region gets a label; pairs with different
    labels get -100 (MONAI's value, not -inf, so fully masked rows stay finite).
    ``dims`` is the padded (D, H, W).
    """
    labels = np.zeros((1, *dims, 1), np.float32)
    # Python slices as MONAI writes them: with a shift of 0, slice(-0, None)
    # is the whole axis and overwrites the other two regions of that axis.
    regions = [(slice(-w), slice(-w, -s), slice(-s, None)) for w, s in zip(window_size, shift_size)]
    for label, (sd, sh, sw) in enumerate(itertools.product(*regions)):
        labels[:, sd, sh, sw, :] = label
    windows = np.asarray(window_partition(mx.array(labels), window_size))[..., 0]
    different = windows[:, None, :] != windows[:, :, None]
    return mx.array(np.where(different, -100.0, 0.0).astype(np.float32))


def _relative_position_index(window_size: Sequence[int]) -> np.ndarray:
    """For each pair of window positions (i, j), the row of the bias table for offset i - j."""
    coords = np.stack(np.meshgrid(*[np.arange(w) for w in window_size], indexing="ij")).reshape(3, -1)
    offsets = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0)
    offsets = offsets + np.array([w - 1 for w in window_size])
    # Offsets in each dimension span 2w - 1 values: flatten them row-major.
    strides = np.array([(2 * window_size[1] - 1) * (2 * window_size[2] - 1), 2 * window_size[2] - 1, 1])
    return (offsets * strides).sum(-1).astype(np.int64)


class WindowAttention(nn.Module):
    r"""Multi-head self-attention inside each window, with a learned relative position bias.

    Every head adds to its attention logits a bias that depends only on the
    3-D offset between query and key inside the window, looked up in
    ``relative_position_bias_table`` through the fixed index
    ``relative_position_index`` (a buffer MONAI saves in its state_dict).

    Args:
        dim (int): Channels C of the tokens.
        num_heads (int): Attention heads; must divide ``dim``.
        window_size (sequence of 3 ints): Window (wd, wh, ww).
        qkv_bias (bool): Bias in the query/key/value projection. Default: ``False``.
        attn_drop (float): Dropout on the attention weights. Default: ``0.0``.
        proj_drop (float): Dropout on the output. Default: ``0.0``.
        use_flash_attention (bool): Compute the attention with
            ``mx.fast.scaled_dot_product_attention`` (the same function, fused
            where MLX has a kernel). As MONAI, the fused path skips
            attention dropout, so it is used only when that dropout is
            inactive (eval mode or ``attn_drop=0``). Default: ``False``.

    Shape:
        - Input: (B * num_windows, n, C) with n = wd * wh * ww or fewer, and
          ``mask`` (num_windows, n, n) or ``None``
        - Output: same shape as input

    Attributes:
        relative_position_bias_table (array): ((2wd-1)(2wh-1)(2ww-1), num_heads),
            truncated normal with std 0.02.
        relative_position_index (array): (n, n) int64 buffer, frozen.
    """

    def __init__(self, dim: int, num_heads: int, window_size: Sequence[int], qkv_bias: bool = False,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, use_flash_attention: bool = False) -> None:
        super().__init__()
        self.dim = _args.check_int(dim, "dim", minimum=1)
        self.num_heads = _args.check_int(num_heads, "num_heads", minimum=1)
        if dim % num_heads:
            raise ValueError(f"`dim` (={dim}) must be divisible by `num_heads` (={num_heads})")
        self.window_size = _args.triple(window_size, "window_size")
        self.use_flash_attention = bool(use_flash_attention)
        self.scale = (dim // num_heads) ** -0.5
        wd, wh, ww = self.window_size
        rows = (2 * wd - 1) * (2 * wh - 1) * (2 * ww - 1)
        # MONAI's trunc_normal_(std=0.02, a=-2, b=2) cuts at +-100 standard deviations.
        self.relative_position_bias_table = 0.02 * mx.random.truncated_normal(-100.0, 100.0, (rows, num_heads))
        self.relative_position_index = mx.array(_relative_position_index(self.window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = dropout_layer(attn_drop, "attn_drop")
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = dropout_layer(proj_drop, "proj_drop")
        self._attn_drop = attn_drop
        self.freeze(keys=["relative_position_index"], recurse=False)

    def unfreeze(self, *args, **kwargs):
        # The index is a buffer: keep it out of trainable_parameters() even
        # after a model-wide unfreeze.
        super().unfreeze(*args, **kwargs)
        self.freeze(keys=["relative_position_index"], recurse=False)
        return self

    def _extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, window_size={self.window_size}"

    def __call__(self, x: mx.array, mask: mx.array | None = None) -> mx.array:
        b, n, c = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).reshape(b, n, 3, heads, c // heads).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        index = self.relative_position_index[:n, :n].reshape(-1)
        bias = self.relative_position_bias_table[index].reshape(n, n, -1).transpose(2, 0, 1)
        attn_dropout_active = self.training and self._attn_drop > 0
        if self.use_flash_attention and not attn_dropout_active:
            if mask is None:
                full = bias[None]
            else:
                nw = mask.shape[0]
                full = bias[None, None] + mask[None, :, None]
                full = mx.broadcast_to(full, (b // nw, nw, heads, n, n)).reshape(b, heads, n, n)
            out = mx.fast.scaled_dot_product_attention(q, k, v, scale=self.scale, mask=full.astype(q.dtype))
        else:
            attn = (q * self.scale) @ k.swapaxes(-2, -1) + bias[None]
            if mask is not None:
                nw = mask.shape[0]
                attn = attn.reshape(b // nw, nw, heads, n, n) + mask[None, :, None]
                attn = attn.reshape(-1, heads, n, n)
            attn = self.attn_drop(mx.softmax(attn, axis=-1)).astype(v.dtype)
            out = attn @ v
        out = out.transpose(0, 2, 1, 3).reshape(b, n, c)
        return self.proj_drop(self.proj(out))


class SwinTransformerBlock(nn.Module):
    r"""One Swin block: (shifted-)window attention and an MLP, each a pre-norm residual branch.

    Args:
        dim (int): Channels C.
        num_heads (int): Attention heads.
        window_size (sequence of 3 ints): Window size.
        shift_size (sequence of 3 ints): Cyclic shift before the attention,
            ``(0, 0, 0)`` for a regular block, half the window for a shifted one.
        mlp_ratio (float): MLP hidden size over ``dim``. Default: ``4.0``.
        qkv_bias (bool): Bias in the qkv projection. Default: ``True``.
        drop (float): Dropout after the attention projection and in the MLP. Default: ``0.0``.
        attn_drop (float): Dropout on the attention weights. Default: ``0.0``.
        drop_path (float): Stochastic depth rate of both branches. Default: ``0.0``.
        act_layer (str or tuple): MLP activation, a MONAI name. Default: ``"GELU"``.
        norm_layer (callable): Builds the norm from a channel count. Default: ``mlx.nn.LayerNorm``.
        use_checkpoint (bool): Recompute each branch in the backward pass
            (``mlx.nn.utils.checkpoint``) to save memory. Default: ``False``.
        use_flash_attention (bool): See :class:`WindowAttention`. Default: ``False``.

    Shape:
        - Input: (B, D, H, W, C) and the shifted-window mask from :func:`compute_mask`
        - Output: (B, D, H, W, C)
    """

    def __init__(self, dim: int, num_heads: int, window_size: Sequence[int], shift_size: Sequence[int],
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, act_layer: str | tuple = "GELU",
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm, use_checkpoint: bool = False,
                 use_flash_attention: bool = False) -> None:
        super().__init__()
        make_norm = resolve_norm_layer(norm_layer)
        self.dim = dim
        self.num_heads = num_heads
        self.window_size = _args.triple(window_size, "window_size")
        self.shift_size = _args.triple(shift_size, "shift_size", minimum=0)
        self.mlp_ratio = mlp_ratio
        self.use_checkpoint = bool(use_checkpoint)
        self.norm1 = make_norm(dim)
        self.attn = WindowAttention(dim, num_heads=num_heads, window_size=self.window_size, qkv_bias=qkv_bias,
                                    attn_drop=attn_drop, proj_drop=drop, use_flash_attention=use_flash_attention)
        path = DropPath(drop_path)  # validates the rate
        self.drop_path = path if path.drop_prob > 0 else nn.Identity()
        self.norm2 = make_norm(dim)
        self.mlp = MLPBlock(hidden_size=dim, mlp_dim=int(dim * mlp_ratio), act=act_layer, dropout_rate=drop,
                            dropout_mode="swin")
        self._random = drop > 0 or attn_drop > 0 or path.drop_prob > 0

    def forward_part1(self, x: mx.array, mask_matrix: mx.array | None) -> mx.array:
        b, d, h, w, c = x.shape
        window_size, shift_size = get_window_size((d, h, w), self.window_size, self.shift_size)
        x = self.norm1(x)
        pads = [(ws - size % ws) % ws for ws, size in zip(window_size, (d, h, w))]
        if any(pads):
            x = mx.pad(x, [(0, 0)] + [(0, p) for p in pads] + [(0, 0)])
        dims = x.shape[:4]
        shifted = any(s > 0 for s in shift_size)
        if shifted:
            x = mx.roll(x, tuple(-s for s in shift_size), axis=(1, 2, 3))
        windows = self.attn(window_partition(x, window_size), mask_matrix if shifted else None)
        x = window_reverse(windows.reshape(-1, *window_size, c), window_size, dims)
        if shifted:
            x = mx.roll(x, tuple(shift_size), axis=(1, 2, 3))
        if any(pads):
            x = x[:, :d, :h, :w, :]
        return x

    def forward_part2(self, x: mx.array) -> mx.array:
        return self.drop_path(self.mlp(self.norm2(x)))

    def __call__(self, x: mx.array, mask_matrix: mx.array | None) -> mx.array:
        part1, part2 = self.forward_part1, self.forward_part2
        if self.use_checkpoint:
            if self.training and self._random:
                # mx.checkpoint recomputes the branch in the backward pass and
                # MLX redraws its random masks there, so the gradient would
                # belong to different masks than the output.
                raise ValueError(
                    "use_checkpoint=True cannot be combined with dropout or drop path in training mode "
                    "(MLX's checkpoint redraws the random masks when it recomputes, giving wrong "
                    "gradients); set the drop rates to 0, call .eval(), or use use_checkpoint=False")
            part1, part2 = nn.utils.checkpoint(self, part1), nn.utils.checkpoint(self, part2)
        x = x + self.drop_path(part1(x, mask_matrix))
        return x + part2(x)


class PatchMergingV2(nn.Module):
    r"""Halve D, H and W by concatenating each 2x2x2 neighbourhood's channels, then LayerNorm and Linear(8C, 2C).

    Odd sizes are zero-padded at the high end first. The 8 neighbours are
    concatenated in (d, h, w) lexicographic order.

    Args:
        dim (int): Channels C.
        norm_layer (callable): Builds the norm of the 8C concatenation. Default: ``mlx.nn.LayerNorm``.
        spatial_dims (int): Must be 3. Default: ``3``.

    Shape:
        - Input: (B, D, H, W, C)
        - Output: (B, ceil(D/2), ceil(H/2), ceil(W/2), 2C)
    """

    # The order of the 8 sub-grids in the concatenation.
    _OFFSETS: tuple[tuple[int, int, int], ...] = tuple(itertools.product(range(2), repeat=3))

    def __init__(self, dim: int, norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
                 spatial_dims: int = 3) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        self.dim = _args.check_int(dim, "dim", minimum=1)
        self.reduction = nn.Linear(8 * dim, 2 * dim, bias=False)
        self.norm = resolve_norm_layer(norm_layer)(8 * dim)

    def __call__(self, x: mx.array) -> mx.array:
        if x.ndim != 5:
            raise ValueError(f"{type(self).__name__} expects (B, D, H, W, C) input, got shape {tuple(x.shape)}")
        _, d, h, w, _ = x.shape
        if d % 2 or h % 2 or w % 2:
            x = mx.pad(x, [(0, 0), (0, d % 2), (0, h % 2), (0, w % 2), (0, 0)])
        x = mx.concatenate([x[:, i::2, j::2, k::2, :] for i, j, k in self._OFFSETS], axis=-1)
        return self.reduction(self.norm(x))


class PatchMerging(PatchMergingV2):
    """The patch merging of MONAI v0.9.0: :class:`PatchMergingV2` with another neighbour order.

    Same parameters; the 8 sub-grids are concatenated in the order
    (0,0,0), (1,0,0), (0,1,0), (0,0,1), (1,1,0), (1,0,1), (0,1,1), (1,1,1),
    so checkpoints trained with one version do not work with the other.
    """

    _OFFSETS = ((0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1), (1, 1, 1))


MERGING_MODE = {"merging": PatchMerging, "mergingv2": PatchMergingV2}


def _resolve_downsample(downsample):
    """A merging class from a MONAI name, or the user's class (MLX module, built as MONAI's)."""
    if isinstance(downsample, str):
        if downsample not in MERGING_MODE:
            raise ValueError(f"`downsample` must be one of {sorted(MERGING_MODE)} or a patch-merging "
                             f"class, got {downsample!r}")
        return MERGING_MODE[downsample]
    if isinstance(downsample, nn.Module) or not callable(downsample):
        raise TypeError(
            f"`downsample` must be 'merging', 'mergingv2' or a class built as cls(dim=..., norm_layer=..., "
            f"spatial_dims=3) into an mlx.nn.Module (like PatchMerging), got {downsample!r}")
    return downsample


class BasicLayer(nn.Module):
    r"""One Swin stage: ``depth`` blocks alternating regular and shifted windows, then an optional downsampling.

    Args:
        dim (int): Channels C.
        depth (int): Number of blocks.
        num_heads (int): Attention heads.
        window_size (sequence of 3 ints): Window size.
        drop_path (list of float or float): Stochastic depth rate per block, or one for all.
        mlp_ratio (float): MLP hidden size over ``dim``. Default: ``4.0``.
        qkv_bias (bool): Bias in the qkv projections. Default: ``False``.
        drop (float): Dropout rate. Default: ``0.0``.
        attn_drop (float): Attention dropout rate. Default: ``0.0``.
        norm_layer (callable): Norm builder. Default: ``mlx.nn.LayerNorm``.
        downsample (class, optional): Merging class built with
            ``(dim=, norm_layer=, spatial_dims=3)``. Default: ``None``.
        use_checkpoint (bool): Gradient checkpointing of the blocks. Default: ``False``.
        use_flash_attention (bool): See :class:`WindowAttention`. Default: ``False``.

    Shape:
        - Input: (B, C, D, H, W)
        - Output: (B, C, D, H, W), or (B, 2C, D/2, H/2, W/2) after a patch merging
    """

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: Sequence[int],
                 drop_path: list | float, mlp_ratio: float = 4.0, qkv_bias: bool = False, drop: float = 0.0,
                 attn_drop: float = 0.0, norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
                 downsample=None, use_checkpoint: bool = False, use_flash_attention: bool = False) -> None:
        super().__init__()
        self.window_size = _args.triple(window_size, "window_size")
        self.shift_size = tuple(i // 2 for i in self.window_size)
        self.no_shift = (0, 0, 0)
        self.depth = _args.check_int(depth, "depth", minimum=1)
        self.use_checkpoint = use_checkpoint
        rates = list(drop_path) if isinstance(drop_path, (list, tuple)) else [drop_path] * depth
        if len(rates) != depth:
            raise ValueError(f"`drop_path` must have `depth` (={depth}) rates, got {len(rates)}")
        self.blocks = [
            SwinTransformerBlock(dim=dim, num_heads=num_heads, window_size=self.window_size,
                                 shift_size=self.no_shift if i % 2 == 0 else self.shift_size,
                                 mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop=drop, attn_drop=attn_drop,
                                 drop_path=rates[i], norm_layer=norm_layer, use_checkpoint=use_checkpoint,
                                 use_flash_attention=use_flash_attention)
            for i in range(depth)
        ]
        if downsample is not None:
            built = _resolve_downsample(downsample)(dim=dim, norm_layer=norm_layer, spatial_dims=3)
            if not isinstance(built, nn.Module):
                raise TypeError(f"`downsample` built a {type(built).__name__}, expected an mlx.nn.Module")
            self.downsample = built

    def __call__(self, x: mx.array) -> mx.array:
        b, _, d, h, w = x.shape
        window_size, shift_size = get_window_size((d, h, w), self.window_size, self.shift_size)
        x = x.transpose(0, 2, 3, 4, 1)
        padded = [-(-size // ws) * ws for size, ws in zip((d, h, w), window_size)]
        mask = compute_mask(padded, window_size, shift_size)
        for block in self.blocks:
            x = block(x, mask)
        if "downsample" in self:
            x = self.downsample(x)
        return x.transpose(0, 4, 1, 2, 3)


class SwinTransformer(nn.Module):
    r"""The four-stage Swin encoder of SwinUNETR, returning the features of every scale.

    Args:
        in_chans (int): Input channels.
        embed_dim (int): Channels after the patch embedding; doubled by each merging.
        window_size (sequence of 3 ints): Window size.
        patch_size (sequence of 3 ints): Patch size of the embedding.
        depths (sequence of 4 ints): Blocks per stage.
        num_heads (sequence of 4 ints): Heads per stage.
        mlp_ratio (float): Default: ``4.0``.
        qkv_bias (bool): Default: ``True``.
        drop_rate (float): Dropout rate. Default: ``0.0``.
        attn_drop_rate (float): Attention dropout rate. Default: ``0.0``.
        drop_path_rate (float): Stochastic depth, rising linearly from 0 over
            all blocks to this value. Default: ``0.0``.
        norm_layer (callable): Norm builder. Default: ``mlx.nn.LayerNorm``.
        patch_norm (bool): Normalise the patch embedding. Default: ``False``.
        use_checkpoint (bool): Gradient checkpointing of the blocks. Default: ``False``.
        spatial_dims (int): Must be 3. Default: ``3``.
        downsample (str or class): ``"merging"``, ``"mergingv2"`` or a merging class.
            Default: ``"merging"``.
        use_v2 (bool): A residual convolution block (``layers{i}c``) before each stage. Default: ``False``.
        use_hyena (bool): MONAI's HyenaND stages; not available in lucid_mlx,
            ``True`` raises. Default: ``False``.
        hyena_stages (sequence of bool, optional): Likewise; only ``None`` or
            all ``False`` is accepted. Default: ``None``.
        use_flash_attention (bool): See :class:`WindowAttention`. Default: ``False``.

    Shape:
        - Input: (B, in_chans, D, H, W)
        - Output: a list of 5 arrays, (B, embed_dim * 2**i, D / (p * 2**i), ...) for i = 0..4
    """

    def __init__(self, in_chans: int, embed_dim: int, window_size: Sequence[int], patch_size: Sequence[int],
                 depths: Sequence[int], num_heads: Sequence[int], mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm, patch_norm: bool = False,
                 use_checkpoint: bool = False, spatial_dims: int = 3, downsample="merging", use_v2: bool = False,
                 use_hyena: bool = False, hyena_stages: Sequence[bool] | None = None,
                 use_flash_attention: bool = False) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        _refuse_hyena(use_hyena, hyena_stages)
        depths, num_heads = _stage_ints(depths, "depths"), _stage_ints(num_heads, "num_heads")
        for i, heads in enumerate(num_heads):
            if (embed_dim * 2**i) % heads:
                raise ValueError(f"stage {i} has {embed_dim * 2**i} channels, not divisible by "
                                 f"`num_heads[{i}]` (={heads})")
        self.num_layers = 4
        self.embed_dim = embed_dim
        self.patch_norm = patch_norm
        self.window_size = _args.triple(window_size, "window_size")
        self.patch_size = _args.triple(patch_size, "patch_size")
        merging = _resolve_downsample(downsample)
        self.patch_embed = PatchEmbed(patch_size=self.patch_size, in_chans=in_chans, embed_dim=embed_dim,
                                      norm_layer=norm_layer if patch_norm else None, spatial_dims=3)
        self.pos_drop = dropout_layer(drop_rate, "drop_rate")
        rates = np.linspace(0, drop_path_rate, sum(depths), dtype=np.float32).tolist()
        self.use_v2 = use_v2
        for i in range(4):
            layer = BasicLayer(dim=embed_dim * 2**i, depth=depths[i], num_heads=num_heads[i],
                               window_size=self.window_size, drop_path=rates[sum(depths[:i]):sum(depths[:i + 1])],
                               mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop=drop_rate, attn_drop=attn_drop_rate,
                               norm_layer=norm_layer, downsample=merging, use_checkpoint=use_checkpoint,
                               use_flash_attention=use_flash_attention)
            # One-element lists: MONAI's ModuleLists `layers1`..`layers4` (keys `layers1.0.*`).
            setattr(self, f"layers{i + 1}", [layer])
            if use_v2:
                setattr(self, f"layers{i + 1}c", [UnetrBasicBlock(
                    spatial_dims=3, in_channels=embed_dim * 2**i, out_channels=embed_dim * 2**i,
                    kernel_size=3, stride=1, norm_name="instance", res_block=True)])
        self.num_features = embed_dim * 2**3

    @staticmethod
    def proj_out(x: mx.array, normalize: bool = False) -> mx.array:
        """Layer-normalise (B, C, D, H, W) over C, without affine parameters, if ``normalize``."""
        if not normalize:
            return x
        x = mx.fast.layer_norm(x.transpose(0, 2, 3, 4, 1), None, None, 1e-5)
        return x.transpose(0, 4, 1, 2, 3)

    def __call__(self, x: mx.array, normalize: bool = True) -> list[mx.array]:
        x = self.pos_drop(self.patch_embed(x))
        outs = [self.proj_out(x, normalize)]
        for i in range(1, 5):
            if self.use_v2:
                x = getattr(self, f"layers{i}c")[0](x)
            x = getattr(self, f"layers{i}")[0](x)
            outs.append(self.proj_out(x, normalize))
        return outs


def _stage_ints(value, name: str) -> tuple[int, int, int, int]:
    # MONAI's forward walks exactly four stages (layers1..layers4).
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        raise ValueError(f"`{name}` must be a sequence of 4 ints (one per Swin stage), got {value!r}")
    return _args.ntuple(value, 4, name)  # type: ignore[return-value]


def _refuse_hyena(use_hyena, hyena_stages) -> None:
    if use_hyena or (hyena_stages is not None and any(hyena_stages)):
        raise ValueError(
            f"HyenaND stages (use_hyena={use_hyena!r}, hyena_stages={hyena_stages!r}) are not available in "
            "lucid_mlx (MONAI builds them from the optional nvsubquadratic package); use windowed "
            "attention (use_hyena=False, hyena_stages=None)")
