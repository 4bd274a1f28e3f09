"""Where the sliding windows go and how much each voxel of a window counts.

The arithmetic is MONAI 1.6.1's (``monai.inferers.utils._get_scan_interval``,
``monai.data.utils.dense_patch_slices`` and ``compute_importance_map``), so
that the windows, and therefore the stitched output, are the same.  It runs
in NumPy on sizes and on one window-sized map; no volume passes through here.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def scan_interval(image_size: Sequence[int], roi_size: Sequence[int], overlap: Sequence[float]) -> tuple[int, ...]:
    """Step between window starts: ``int(roi * (1 - overlap))``, at least 1; the whole axis when the window fills it."""
    steps = []
    for image, roi, o in zip(image_size, roi_size, overlap):
        if roi == image:
            steps.append(int(roi))
        else:
            steps.append(max(int(roi * (1 - o)), 1))
    return tuple(steps)


def window_starts(image_size: Sequence[int], roi_size: Sequence[int], steps: Sequence[int]) -> list[tuple[int, ...]]:
    """Start corner of every window, the last dimension varying fastest.

    Along each axis the starts are ``0, step, 2 step, ...`` up to the first
    window that reaches the end; that last one is shifted back to end exactly
    at the border.
    """
    per_axis = []
    for image, roi, step in zip(image_size, roi_size, steps):
        count = int(math.ceil(float(image) / step))
        last = next((d for d in range(count) if d * step + roi >= image), None)
        starts = []
        for idx in range((last + 1) if last is not None else 1):
            start = idx * step
            starts.append(start - max(start + roi - image, 0))
        per_axis.append(starts)
    grid = np.meshgrid(*per_axis, indexing="ij")
    return [tuple(int(v) for v in corner) for corner in np.stack([g.ravel() for g in grid], axis=1)]


def importance_map(
    patch_size: Sequence[int], mode: str, sigma_scale: Sequence[float], dtype=np.float32
) -> np.ndarray:
    """Weight of each voxel of a window: ones, or a Gaussian of sigma ``sigma_scale * size``.

    As MONAI, the Gaussian is built in float32 as an outer product of 1-D
    profiles and clamped below at ``max(its minimum, 1e-3)`` so that no voxel
    of a window is ignored.
    """
    if mode == "constant":
        weights = np.ones(tuple(patch_size), dtype=np.float32)
    else:
        weights = None
        for size, scale in zip(patch_size, sigma_scale):
            sigma = size * scale
            x = np.arange(-(size - 1) / 2.0, (size - 1) / 2.0 + 1, dtype=np.float32)
            profile = np.exp(x**2 / np.float32(-2 * sigma**2)).astype(np.float32)
            weights = profile if weights is None else weights[..., None] * profile
    floor = max(float(weights.min()), 1e-3)
    return np.maximum(weights, np.float32(floor)).astype(dtype)


def resize_nearest_exact(weights: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Resize the trailing dimensions as ``torch.nn.functional.interpolate(mode='nearest-exact')``.

    Output index ``i`` reads input index ``floor((i + 0.5) * in / out)``.
    """
    lead = weights.ndim - len(shape)
    for axis, out in enumerate(shape):
        size = weights.shape[lead + axis]
        src = np.minimum(np.floor((np.arange(out) + 0.5) * (size / out)).astype(np.int64), size - 1)
        weights = np.take(weights, src, axis=lead + axis)
    return weights
