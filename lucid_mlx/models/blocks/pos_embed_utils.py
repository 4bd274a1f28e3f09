"""Fixed position embeddings for ViT tokens: sine-cosine and random Fourier features."""

from __future__ import annotations

import math
from typing import Sequence, Union

import mlx.core as mx

from ... import _args


def _grid(grid_size, name: str = "grid_size") -> tuple[int, int, int]:
    if isinstance(grid_size, (tuple, list)) and len(grid_size) != 3:
        raise ValueError(f"`{name}` must have 3 entries (spatial_dims=3), got {grid_size!r}")
    return _args.triple(grid_size, name)


def build_sincos_position_embedding(grid_size: Union[int, Sequence[int]], embed_dim: int,
                                    spatial_dims: int = 3, temperature: float = 10000.0) -> mx.array:
    """Sine-cosine embedding of a (h, w, d) token grid, as MONAI's function of that name.

    Each axis gets ``embed_dim / 6`` frequencies ``temperature ** (-i / (embed_dim / 6))``;
    the features are ``[sin w, cos w, sin h, cos h, sin d, cos d]`` with the
    tokens in (h, w, d) order.

    Returns:
        An array of shape (1, h * w * d, embed_dim).

    Raises:
        ValueError: ``spatial_dims`` is not 3 or ``embed_dim`` is not divisible by 6.
    """
    if spatial_dims != 3:
        raise ValueError(f"`spatial_dims` must be 3 (lucid_mlx is 3-D), got {spatial_dims!r}")
    h, w, d = _grid(grid_size)
    embed_dim = _args.check_int(embed_dim, "embed_dim", minimum=1)
    if embed_dim % 6:
        raise ValueError(f"`embed_dim` must be divisible by 6 for a 3-D sin-cos embedding, got {embed_dim}")
    pos_dim = embed_dim // 6
    omega = 1.0 / (temperature ** (mx.arange(pos_dim, dtype=mx.float32) / pos_dim))
    gh, gw, gd = mx.meshgrid(mx.arange(h, dtype=mx.float32), mx.arange(w, dtype=mx.float32),
                             mx.arange(d, dtype=mx.float32), indexing="ij")
    out_h, out_w, out_d = (g.reshape(-1, 1) * omega[None] for g in (gh, gw, gd))
    parts = [mx.sin(out_w), mx.cos(out_w), mx.sin(out_h), mx.cos(out_h), mx.sin(out_d), mx.cos(out_d)]
    return mx.concatenate(parts, axis=1)[None]


def build_fourier_position_embedding(grid_size: Union[int, Sequence[int]], embed_dim: int,
                                     spatial_dims: int = 3,
                                     scales: Union[float, Sequence[float]] = 1.0) -> mx.array:
    """Random Fourier-feature embedding of a (h, w, d) grid, as MONAI's function of that name.

    Positions in [0, 1] per axis are projected on ``embed_dim / 2`` Gaussian
    directions (per-axis standard deviation ``scales``) and mapped to
    ``[sin, cos]``.  The directions come from MLX's random state, so the
    values differ from MONAI's; a loaded state_dict replaces them.

    Returns:
        An array of shape (1, h * w * d, embed_dim).
    """
    if spatial_dims != 3:
        raise ValueError(f"`spatial_dims` must be 3 (lucid_mlx is 3-D), got {spatial_dims!r}")
    size = _grid(grid_size)
    embed_dim = _args.check_int(embed_dim, "embed_dim", minimum=1)
    if embed_dim % 2:
        raise ValueError(f"`embed_dim` must be even for a Fourier embedding, got {embed_dim}")
    if isinstance(scales, (int, float)) and not isinstance(scales, bool):
        scales = [float(scales)] * 3
    if not isinstance(scales, (list, tuple)) or len(scales) != 3:
        raise ValueError(f"`scales` must be a float or 3 floats, got {scales!r}")
    gaussians = mx.random.normal((embed_dim // 2, 3)) * mx.array(scales, dtype=mx.float32)
    axes = [mx.linspace(0, 1, n) for n in size]
    positions = mx.stack(mx.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    proj = (2.0 * math.pi * positions) @ gaussians.T
    return mx.concatenate([mx.sin(proj), mx.cos(proj)], axis=-1)[None]
