"""The intensity-threshold baseline the U-Net must beat.

The baseline orders the classes by median intensity and cuts the intensity
axis with K-1 thresholds.  It is given every advantage the U-Net lacks:
its thresholds are fitted, with the labels, on the training region *of the
very corrupted volume being evaluated*, so it has already seen that
volume's gamma and noise level; only the bias field's variation along z
and the voxel-wise noise are left to defeat it.
"""

from __future__ import annotations

import numpy as np

from metrics import dice_scores

_BINS = 256


class ThresholdBaseline:
    """K-1 intensity thresholds maximising the mean foreground Dice.

    Args:
        image: a (corrupted) volume.
        labels: its class indices.
        mask: the voxels to fit on (the training region).
        n_classes: K.
    """

    def __init__(self, image: np.ndarray, labels: np.ndarray, mask: np.ndarray, n_classes: int):
        values, truth = image[mask], labels[mask]
        lo, hi = np.percentile(values, [0.1, 99.9])
        self.edges = np.linspace(lo, hi, _BINS + 1)[1:-1]
        bins = np.digitize(values, self.edges)
        # hist[c, b]: voxels of class c in intensity bin b; every candidate
        # threshold set is then scored from cumulative sums, not voxels.
        hist = np.zeros((n_classes, _BINS))
        np.add.at(hist, (truth, bins), 1)
        medians = [np.median(values[truth == c]) if (truth == c).any() else np.inf for c in range(n_classes)]
        self.order = np.argsort(medians, kind="stable")
        self.cuts = self._fit(hist, n_classes)

    def _score(self, hist, cuts):
        counts = np.zeros((hist.shape[0], 3))
        bounds = [0, *cuts, _BINS]
        for i, c in enumerate(self.order):
            inside = hist[:, bounds[i]:bounds[i + 1]].sum(1)
            counts[c] = inside[c], inside.sum(), hist[c].sum()
        return dice_scores(counts)[1:].mean()

    def _fit(self, hist, n_classes):
        # Start at evenly spread cuts, then coordinate ascent: move one cut at
        # a time to its best bin between its neighbours, until nothing moves.
        cuts = [round(_BINS * (i + 1) / n_classes) for i in range(n_classes - 1)]
        for _ in range(10):
            moved = False
            for i in range(len(cuts)):
                lo = cuts[i - 1] + 1 if i > 0 else 1
                hi = cuts[i + 1] if i + 1 < len(cuts) else _BINS
                best = max(range(lo, hi), key=lambda b: self._score(hist, cuts[:i] + [b] + cuts[i + 1:]))
                moved |= best != cuts[i]
                cuts[i] = best
            if not moved:
                break
        return cuts

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Class indices for every voxel of ``image``."""
        rank = np.digitize(np.digitize(image, self.edges), self.cuts)
        return self.order[rank].astype(np.uint8)
