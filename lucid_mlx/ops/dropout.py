"""Channel dropout for NCDHW arrays (``dropout3d``).

Arguments arrive validated from :func:`lucid_mlx.nn.functional.dropout3d`.
"""

from __future__ import annotations

import mlx.core as mx


def dropout3d(x: mx.array, p: float, key: mx.array | None) -> mx.array:
    """Zero whole (D, H, W) channels of ``x`` with probability ``p`` (training mode)."""
    if p == 0:
        return x
    if p == 1:
        return x * 0  # PyTorch's special case: no 0/0 scale; NaN stays NaN
    # One draw per (sample, channel), broadcast over the volume.
    mask_shape = x.shape[:-3] + (1, 1, 1)
    keep = mx.random.bernoulli(1 - p, mask_shape, key=key)
    return x * (keep.astype(x.dtype) * (1 / (1 - p))).astype(x.dtype)
