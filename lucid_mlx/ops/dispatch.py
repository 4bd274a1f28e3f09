"""The one place that chooses between Metal kernels and the portable path.

For now every call takes the portable path; the kernels land in
:mod:`lucid_mlx.kernels`.
"""

from __future__ import annotations

import mlx.core as mx

from . import grouped, pad


def grouped_conv3d(x: mx.array, w: mx.array, stride, pads, dilation, groups: int) -> mx.array:
    return grouped.grouped_conv3d(x, w, stride, pads, dilation, groups)


def pad3d(x: mx.array, pairs, mode: str, value: float = 0.0) -> mx.array:
    return pad.pad3d(x, pairs, mode, value)
