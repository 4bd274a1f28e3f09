"""The training loss: MONAI's DiceCELoss, and its exact value on the global batch from one rank's shard.

One process computes ``DiceCELoss(logits, labels)`` on the whole batch.  On
several ranks each rank holds a shard, and the gradients are averaged, so
each rank's loss must be its share of the global loss times the number of
ranks.  The two terms share differently:

* Dice (``batch=False``) is a mean over patches: a shard's mean counts in
  proportion to its number of patches;
* the class-weighted cross-entropy is PyTorch's weighted mean,
  ``sum(w[y] * nll) / sum(w[y])`` over every voxel: a shard's value counts
  in proportion to its sum of weights, ``sum(w[y])`` over its voxels.

So the terms are computed by two DiceCELoss instances (one with
``lambda_ce=0``, one with ``lambda_dice=0``) and weighted apart.  Averaging
per-shard DiceCELoss values instead, as PyTorch's DistributedDataParallel
does, normalises the cross-entropy by each shard's own weights: on the
example's tiny 2-rank test that changed the loss by 5% after four steps.
On one rank both scales are 1 and the value is DiceCELoss's.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from lucid_mlx import distributed as dist
from lucid_mlx.losses import DiceCELoss


# Measured on the held-out slab (README.md): lambda_ce 1 left CSF's Dice
# 0.02-0.03 lower and the Dice jumpier between epochs; 0.1 lower again.
LAMBDA_CE = 0.25


class ShardedDiceCELoss:
    """``DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, weight=weights,
    lambda_ce=LAMBDA_CE)``, shard-aware.

    Args:
        weights: one class weight per class, background included.
        lambda_ce: the cross-entropy's weight (the Dice term's is 1). Default: ``LAMBDA_CE``.
    """

    def __init__(self, weights: list[float], lambda_ce: float = LAMBDA_CE):
        kwargs = dict(to_onehot_y=True, softmax=True, include_background=False, weight=weights)
        self.dice = DiceCELoss(lambda_ce=0.0, **kwargs)
        self.ce = DiceCELoss(lambda_dice=0.0, lambda_ce=lambda_ce, **kwargs)
        self.weights = np.asarray(weights, dtype=np.float64)

    def scales(self, labels: np.ndarray, rank: int | None = None, size: int | None = None) -> tuple[float, float]:
        """This rank's (Dice scale, cross-entropy scale) for a global batch of label patches.

        ``rank`` and ``size`` default to this process's; the shard is
        ``lucid_mlx.distributed.shard_bounds``'s, as ``shard_batch`` cuts it.
        """
        if rank is None:
            rank, size = dist.rank(), dist.size()
        lo, hi = dist.shard_bounds(len(labels), rank=rank, size=size)
        dice_scale = (hi - lo) * size / len(labels)
        ce_scale = self.weights[labels[lo:hi]].sum() * size / self.weights[labels].sum()
        return dice_scale, ce_scale

    def __call__(self, logits: mx.array, labels: mx.array, dice_scale: mx.array, ce_scale: mx.array) -> mx.array:
        """(N, K, D, H, W) logits and (N, 1, D, H, W) labels of this rank's shard."""
        return self.dice(logits, labels) * dice_scale + self.ce(logits, labels) * ce_scale
