"""MONAI's patch embeddings: ViT's ``PatchEmbeddingBlock`` (tokens plus positions) and Swin's ``PatchEmbed``."""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Union

import mlx.core as mx
import mlx.nn as mnn

from ... import _args
from ... import nn as lnn
from ..layers.convutils import check_spatial_dims
from ..layers.norm_layer import resolve_norm_layer
from ._vit_args import check_heads, dropout_layer
from .pos_embed_utils import build_fourier_position_embedding, build_sincos_position_embedding

PROJ_TYPES = ("conv", "perceptron")
POS_EMBED_TYPES = ("none", "learnable", "sincos", "fourier")


def _trunc_normal(shape, std: float = 0.02) -> mx.array:
    # MONAI's trunc_normal_(std=0.02, a=-2, b=2): the cut at +-2 (100 std) never bites.
    return mx.random.truncated_normal(-2.0 / std, 2.0 / std, shape) * std


class _Patches(mnn.Module):
    """(B, C, h*p1, w*p2, d*p3) -> (B, h*w*d, p1*p2*p3*C): einops' ``b c (h p1) (w p2) (d p3) -> b (h w d) (p1 p2 p3 c)``."""

    def __init__(self, patch_size: tuple[int, int, int]):
        super().__init__()
        self.patch_size = patch_size

    def __call__(self, x: mx.array) -> mx.array:
        b, c, d0, d1, d2 = x.shape
        p1, p2, p3 = self.patch_size
        x = x.reshape(b, c, d0 // p1, p1, d1 // p2, p2, d2 // p3, p3)
        x = x.transpose(0, 2, 4, 6, 3, 5, 7, 1)
        return x.reshape(b, (d0 // p1) * (d1 // p2) * (d2 // p3), p1 * p2 * p3 * c)


class PatchEmbeddingBlock(mnn.Module):
    r"""Patch tokens with position embeddings, as ``monai.networks.blocks.PatchEmbeddingBlock``.

    ``proj_type="conv"`` embeds each patch with a Conv3d of kernel and stride
    ``patch_size``; ``"perceptron"`` flattens each patch (in (p1, p2, p3, C)
    order) and applies a Linear layer.  ``position_embeddings`` (1, N, C)
    is added, then dropout.

    Args:
        in_channels (int): Input channels.
        img_size (int or sequence): Input size (D, H, W).
        patch_size (int or sequence): Patch size.
        hidden_size (int): Token features C.
        num_heads (int): Only checked: ``hidden_size`` must be divisible by it.
        proj_type (str): ``"conv"`` or ``"perceptron"``. Default: ``"conv"``.
        pos_embed_type (str): ``"learnable"`` (trained, truncated-normal
            init), ``"none"`` (zeros, trained, as MONAI), ``"sincos"`` or
            ``"fourier"`` (fixed). Default: ``"learnable"``.
        dropout_rate (float): Dropout on the embeddings. Default: ``0.0``.
        spatial_dims (int): Must be 3. Default: ``3``.
        pos_embed_kwargs (dict, optional): ``temperature`` for sincos,
            ``scales`` for fourier.

    Shape:
        - Input: (B, in_channels, D, H, W) with (D, H, W) = ``img_size``.
        - Output: (B, N, hidden_size), N = prod(img_size // patch_size).

    Example:
        >>> embed = PatchEmbeddingBlock(1, 32, 16, hidden_size=24, num_heads=4)
        >>> embed(mx.zeros((2, 1, 32, 32, 32))).shape
        (2, 8, 24)
    """

    def __init__(
        self,
        in_channels: int,
        img_size: Union[int, Sequence[int]],
        patch_size: Union[int, Sequence[int]],
        hidden_size: int,
        num_heads: int,
        proj_type: str = "conv",
        pos_embed_type: str = "learnable",
        dropout_rate: float = 0.0,
        spatial_dims: int = 3,
        pos_embed_kwargs: Optional[dict] = None,
    ):
        super().__init__()
        check_spatial_dims(spatial_dims)
        hidden_size, _ = check_heads(hidden_size, num_heads)
        in_channels = _args.check_int(in_channels, "in_channels", minimum=1)
        if proj_type not in PROJ_TYPES:
            raise ValueError(f"`proj_type` must be one of {PROJ_TYPES}, got {proj_type!r}")
        if pos_embed_type not in POS_EMBED_TYPES:
            raise ValueError(f"`pos_embed_type` must be one of {POS_EMBED_TYPES}, got {pos_embed_type!r}")
        img_size = _args.triple(img_size, "img_size")
        patch_size = _args.triple(patch_size, "patch_size")
        for m, p in zip(img_size, patch_size):
            if m < p:
                raise ValueError(f"`patch_size` {patch_size} must not exceed `img_size` {img_size}")
            if proj_type == "perceptron" and m % p:
                raise ValueError(f"`img_size` {img_size} must be divisible by `patch_size` {patch_size} "
                                 "for proj_type='perceptron'")
        self.proj_type, self.pos_embed_type = proj_type, pos_embed_type
        self.img_size, self.patch_size = img_size, patch_size
        grid = tuple(m // p for m, p in zip(img_size, patch_size))
        self.n_patches = math.prod(grid)
        self.patch_dim = in_channels * math.prod(patch_size)

        if proj_type == "conv":
            self.patch_embeddings = lnn.Conv3d(in_channels, hidden_size, patch_size, stride=patch_size)
        else:
            linear = mnn.Linear(self.patch_dim, hidden_size)
            linear.weight = _trunc_normal(linear.weight.shape)
            linear.bias = mx.zeros_like(linear.bias)
            self.patch_embeddings = lnn.Sequential(_Patches(patch_size), linear)
        self.dropout = dropout_layer(dropout_rate)

        kwargs = {} if pos_embed_kwargs is None else dict(pos_embed_kwargs)
        if kwargs and pos_embed_type not in ("sincos", "fourier"):
            raise ValueError(f"`pos_embed_kwargs` is only used by 'sincos' and 'fourier', got {kwargs} "
                             f"with pos_embed_type={pos_embed_type!r}")
        if pos_embed_type == "learnable":
            self.position_embeddings = _trunc_normal((1, self.n_patches, hidden_size))
        elif pos_embed_type == "none":
            self.position_embeddings = mx.zeros((1, self.n_patches, hidden_size))
        else:
            build = (build_sincos_position_embedding if pos_embed_type == "sincos"
                     else build_fourier_position_embedding)
            self.position_embeddings = build(grid, hidden_size, 3, **kwargs)
            # MONAI's requires_grad=False parameter: in the state_dict, never trained.
            self.freeze(keys=["position_embeddings"], recurse=False)

    def __call__(self, x: mx.array) -> mx.array:
        if x.ndim != 5:
            raise ValueError(f"`x` must be (B, C, D, H, W), got shape {tuple(x.shape)}")
        spatial = tuple(x.shape[2:])
        x = self.patch_embeddings(x)
        if self.proj_type == "conv":
            x = x.reshape(x.shape[0], x.shape[1], -1).swapaxes(1, 2)
        if x.shape[1] != self.n_patches:
            raise ValueError(f"`x` of spatial size {spatial} gives {x.shape[1]} patches, but the "
                             f"position embeddings are for img_size {self.img_size} "
                             f"({self.n_patches} patches)")
        return self.dropout(x + self.position_embeddings)


class PatchEmbed(mnn.Module):
    r"""Split a volume into non-overlapping patches and project each to ``embed_dim`` channels.

    A Conv3d with kernel and stride ``patch_size``; a volume that the patch
    does not divide is zero-padded at the high end of each dimension first.
    Unlike ViT's patch embedding the result stays a (B, C, D, H, W) volume,
    without position embedding, optionally layer-normalised over channels.

    Args:
        patch_size (int or sequence of 3 ints): Patch size. Default: ``2``.
        in_chans (int): Input channels. Default: ``1``.
        embed_dim (int): Output channels. Default: ``48``.
        norm_layer (callable or None): Norm over the channels of each patch,
            built as ``norm_layer(embed_dim)``; ``None`` for none.
            Default: ``mlx.nn.LayerNorm``.
        spatial_dims (int): Must be 3. Default: ``3``.

    Shape:
        - Input: (B, in_chans, D, H, W)
        - Output: (B, embed_dim, ceil(D / pd), ceil(H / ph), ceil(W / pw))

    Example:
        >>> PatchEmbed(2, 1, 24)(mx.zeros((1, 1, 32, 32, 31))).shape
        (1, 24, 16, 16, 16)
    """

    def __init__(self, patch_size: Union[int, Sequence[int]] = 2, in_chans: int = 1, embed_dim: int = 48,
                 norm_layer: Optional[Callable[[int], mnn.Module]] = mnn.LayerNorm, spatial_dims: int = 3) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        self.patch_size = _args.triple(patch_size, "patch_size")
        self.embed_dim = _args.check_int(embed_dim, "embed_dim", minimum=1)
        self.proj = lnn.Conv3d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)
        if norm_layer is not None:
            self.norm = resolve_norm_layer(norm_layer)(embed_dim)

    def __call__(self, x: mx.array) -> mx.array:
        _args.check_array(x, "input", 5, "(B, C, D, H, W)")
        short = [(-size) % p for size, p in zip(x.shape[2:], self.patch_size)]
        if any(short):
            x = lnn.functional.pad(x, (0, short[2], 0, short[1], 0, short[0]))
        x = self.proj(x)
        if "norm" in self:
            x = self.norm(x.transpose(0, 2, 3, 4, 1)).transpose(0, 4, 1, 2, 3)
        return x
