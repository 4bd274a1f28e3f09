"""Scoring on the held-out slab: the network by sliding windows, the threshold baseline, Dice and HD95.

Each validation copy is a fixed corrupted copy of the whole volume.  The
network predicts the slab plus half a training patch of image context
above and below it, by ``lucid_mlx.inferers.sliding_window_inference``; only the
slab's voxels are scored.  Scores come from ``lucid_mlx.metrics`` (MONAI's
conventions, background excluded) per copy and are averaged over the
copies, as MONAI's ``DiceMetric(reduction="mean_batch")`` does.

On several ranks each rank scores its share of the copies and the sums of
the scores and their counts are added across ranks
(``lucid_mlx.distributed.reduce_sum``), so every rank ends with the same
numbers as one process scoring all the copies.
"""

from __future__ import annotations

import warnings

import numpy as np

from augment import corrupt
from brain_data import Volume
from lucid_mlx import distributed as dist
from lucid_mlx.metrics import compute_dice, compute_hausdorff_distance
from network import segment
from threshold_baseline import ThresholdBaseline


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(1, K, *spatial) float32 one-hot of a label map, as MONAI's metrics take it."""
    return (labels[None] == np.arange(n_classes).reshape(-1, *(1,) * labels.ndim)).astype(np.float32)[None]


def dice_hd95(pred: np.ndarray, truth: np.ndarray, n_classes: int, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Dice and HD95 (in the units of ``spacing``) per foreground class of one label map.

    Dice follows MONAI's ``compute_dice`` with ``ignore_empty=False``: a
    class absent from the truth scores 1 if the prediction has none of it
    either, else 0.  HD95 is NaN where the prediction or the truth has no
    voxel of the class (MONAI's rule for a percentile).
    """
    dice = compute_dice(pred[None, None], truth[None, None], include_background=False,
                        num_classes=n_classes, ignore_empty=False)
    with warnings.catch_warnings():  # an empty class warns; its NaN is reported as n/a instead
        warnings.simplefilter("ignore")
        hd = compute_hausdorff_distance(one_hot(pred, n_classes), one_hot(truth, n_classes),
                                        include_background=False, percentile=95, spacing=tuple(spacing))
    return np.array(dice)[0].astype(np.float64), np.array(hd)[0].astype(np.float64)


class Scores:
    """Per-class sums of Dice and HD95 over copies, reduced across ranks into means."""

    def __init__(self, n_foreground: int):
        self.dice = np.zeros(n_foreground)
        self.hd = np.zeros(n_foreground)
        self.hd_count = np.zeros(n_foreground)
        self.copies = 0.0

    def add(self, dice: np.ndarray, hd: np.ndarray) -> None:
        self.dice += dice
        self.hd += np.nan_to_num(hd, nan=0.0)
        self.hd_count += ~np.isnan(hd)
        self.copies += 1

    def reduced(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean Dice and mean HD95 per class over every rank's copies (HD95 NaN where no copy had one)."""
        total = dist.reduce_sum({"dice": self.dice, "hd": self.hd, "hd_count": self.hd_count,
                                 "copies": self.copies})
        with np.errstate(invalid="ignore", divide="ignore"):
            return total["dice"] / total["copies"], np.where(total["hd_count"] > 0,
                                                              total["hd"] / total["hd_count"], np.nan)


class Validation:
    """Fixed corrupted copies of the volume, scored on the held-out slab.

    Every rank draws every copy (the same seed), so the outputs can show
    copy 0 on rank 0, and scores its own share of them.

    Attributes:
        images: the corrupted copies, each (X, Y, Z) like the volume.
        baseline_dice, baseline_hd95: the threshold baseline's mean scores per foreground class.
    """

    def __init__(self, volume: Volume, copies: int, roi: int, context: int, overlap: float, sw_batch: int,
                 tta: str, seed: int):
        rng = np.random.default_rng(seed + 1_000_003)  # apart from the training stream
        self.volume, self.k = volume, len(volume.class_names)
        self.roi, self.overlap, self.sw_batch, self.tta = roi, overlap, sw_batch, tta
        self.images = [corrupt(volume.image, rng) for _ in range(copies)]
        self.mine = list(dist.shard_indices(copies))
        z0, z1 = volume.slab
        # ``context`` slices of image on each side (half a training patch:
        # what the network saw around a voxel in training) let it see past
        # the slab's edge slices; only the slab is scored.
        self.window = slice(max(0, z0 - context), min(volume.image.shape[2], z1 + context))
        self.inner = slice(z0 - self.window.start, z1 - self.window.start)
        self.truth = volume.labels[:, :, z0:z1]
        train_mask = np.ones(volume.image.shape, bool)
        train_mask[:, :, z0:z1] = False
        scores = Scores(self.k - 1)
        for i in self.mine:
            image = self.images[i]
            fitted = ThresholdBaseline(image, volume.labels, train_mask, self.k)
            scores.add(*dice_hd95(fitted.predict(image[:, :, z0:z1]), self.truth, self.k, volume.spacing))
        self.baseline_dice, self.baseline_hd95 = scores.reduced()

    def predict_slab(self, model, index: int) -> np.ndarray:
        """The model's class indices on the slab of copy ``index``."""
        return segment(model, self.images[index][:, :, self.window], self.roi, self.overlap,
                       self.sw_batch, self.tta)[:, :, self.inner]

    def score(self, model) -> tuple[np.ndarray, np.ndarray]:
        """The model's mean Dice and HD95 per foreground class over the copies (eval mode)."""
        model.eval()
        scores = Scores(self.k - 1)
        for i in self.mine:
            scores.add(*dice_hd95(self.predict_slab(model, i), self.truth, self.k, self.volume.spacing))
        return scores.reduced()
