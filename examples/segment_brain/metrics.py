"""Dice, the example's one metric, from voxel counts.

Kept apart from the baseline and the training script so that a library
metric (e.g. a MONAI-style DiceMetric) can replace these two functions in
one place.
"""

from __future__ import annotations

import numpy as np


def dice_counts(pred: np.ndarray, truth: np.ndarray, n_classes: int) -> np.ndarray:
    """Per class: (intersection, predicted voxels, true voxels), shape (K, 3).

    Counts, not scores, so several volumes can be pooled before dividing.
    """
    joint = np.bincount(truth.ravel().astype(np.int64) * n_classes + pred.ravel(),
                        minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    return np.stack([np.diag(joint), joint.sum(0), joint.sum(1)], axis=1).astype(np.float64)


def dice_scores(counts: np.ndarray) -> np.ndarray:
    """Dice per class from ``dice_counts``; 1 where a class is absent from both."""
    inter, pred, true = counts.T
    total = pred + true
    return np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)
