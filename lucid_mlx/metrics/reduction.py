"""Reducing (batch, class) metric tables while skipping NaNs, as MONAI's ``do_metric_reduction``."""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from .._args import check_choice

REDUCTIONS = ("none", "mean", "sum", "mean_batch", "sum_batch", "mean_channel", "sum_channel")


def _nan_mean(values: np.ndarray, valid: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    counts = valid.sum(axis=axis).astype(np.float64)
    sums = np.where(valid, values, 0.0).sum(axis=axis)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0), counts


def do_metric_reduction(f, reduction: str = "mean") -> tuple[mx.array, mx.array]:
    """Reduce a (batch, class, ...) table of scores, leaving out NaN entries.

    NaN marks a score that does not exist (e.g. a class absent from the
    ground truth); it counts neither in sums nor in means, and a mean over
    nothing is 0.

    Args:
        f (array): Scores, batch first then class.
        reduction (str): ``'none'``, ``'mean'`` (over classes, then over the
            batch items that have any score), ``'sum'``, ``'mean_batch'``,
            ``'sum_batch'`` (over the batch, per class), ``'mean_channel'`` or
            ``'sum_channel'`` (over classes, per batch item). Default:
            ``'mean'``.

    Returns:
        tuple: The reduced scores and the number of non-NaN entries behind
        each (for ``'mean'``, the number of batch items with any score), as
        float32 arrays.
    """
    reduction = check_choice(reduction, "reduction", REDUCTIONS)
    values = np.asarray(f, dtype=np.float64)
    if values.ndim < 2:
        raise ValueError(f"`f` must be (batch, class, ...), got shape {values.shape}")
    valid = ~np.isnan(values)
    if reduction == "none":
        out, counts = values, valid.astype(np.float64)
    elif reduction == "mean":
        per_item, per_item_counts = _nan_mean(values, valid, axis=1)
        out, counts = _nan_mean(per_item, per_item_counts > 0, axis=0)
    elif reduction == "sum":
        out, counts = np.where(valid, values, 0.0).sum(axis=(0, 1)), valid.sum(axis=(0, 1)).astype(np.float64)
    elif reduction in ("mean_batch", "mean_channel"):
        out, counts = _nan_mean(values, valid, axis=0 if reduction == "mean_batch" else 1)
    else:
        axis = 0 if reduction == "sum_batch" else 1
        out, counts = np.where(valid, values, 0.0).sum(axis=axis), valid.sum(axis=axis).astype(np.float64)
    return mx.array(np.asarray(out, dtype=np.float32)), mx.array(np.asarray(counts, dtype=np.float32))
