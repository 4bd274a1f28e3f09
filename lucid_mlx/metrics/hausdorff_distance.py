"""Hausdorff distance (and its percentiles, e.g. HD95) in physical units, as MONAI 1.6.1's.

Surfaces are the voxels of a mask that its binary erosion (6-neighbour in
3-D) removes; distances go from each surface voxel of one mask to the
nearest surface voxel of the other, scaled by the voxel ``spacing`` (SciPy's
exact Euclidean distance transform, equal to MONAI's KD-tree search).  SciPy
is imported only when a distance is computed; it is not a dependency of
lucid_mlx (install ``lucid_mlx[examples]`` or ``scipy>=1.10``).
"""

from __future__ import annotations

import warnings
from typing import Sequence, Union

import mlx.core as mx
import numpy as np

from .._args import check_bool, check_choice, check_float
from .meandice import check_pair, ignore_mask
from .metric import ArrayLike, CumulativeIterationMetric, to_numpy
from .reduction import REDUCTIONS, do_metric_reduction

Spacing = Union[float, Sequence[float], Sequence[Sequence[float]], np.ndarray, None]
DISTANCE_METRICS = ("euclidean", "chessboard", "taxicab")


def _ndimage():
    try:
        import scipy.ndimage as ndimage
    except ImportError as err:
        raise ImportError(
            "the Hausdorff distance needs SciPy, which lucid_mlx does not install by default: "
            "pip install 'lucid_mlx[examples]' (or scipy>=1.10)"
        ) from err
    return ndimage


def _spacings(spacing: Spacing, batch: int, ndim: int) -> list[tuple[float, ...] | None]:
    """One spacing per batch item, from MONAI's accepted forms."""
    if spacing is None:
        return [None] * batch
    if isinstance(spacing, (int, float)) and not isinstance(spacing, bool):
        return [(check_float(spacing, "spacing", minimum=0.0),) * ndim] * batch
    items = list(np.asarray(spacing, dtype=object)) if isinstance(spacing, np.ndarray) else spacing
    if not isinstance(items, (list, tuple)) or not items:
        raise TypeError(f"`spacing` must be a number, a sequence of {ndim} numbers or one sequence per batch "
                        f"item, got {spacing!r}")
    nested = isinstance(items[0], (list, tuple, np.ndarray))
    per_item = items if nested else [items] * batch
    if len(per_item) != batch:
        raise ValueError(f"`spacing` as one sequence per batch item needs {batch} of them, got {len(per_item)}")
    out = []
    for s in per_item:
        s = list(s) if isinstance(s, (list, tuple, np.ndarray)) else [s]
        if len(s) == 1 and nested:
            s = s * ndim
        if len(s) != ndim:
            raise ValueError(f"`spacing` needs {ndim} values (one per spatial dimension), got {spacing!r}")
        out.append(tuple(check_float(float(v) if isinstance(v, np.number) else v, "spacing") for v in s))
        if min(out[-1]) <= 0:
            raise ValueError(f"`spacing` values must be > 0, got {spacing!r}")
    return out


def _surfaces(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Surface voxels of both masks, cropped to their joint bounding box plus one voxel."""
    union = pred | true
    if not union.any():
        return pred, true
    box = tuple(slice(max(int(idx.min()) - 1, 0), int(idx.max()) + 2) for idx in np.nonzero(union))
    pred, true = pred[box], true[box]
    erode = _ndimage().binary_erosion  # border_value 0: a mask touching the border has a surface there
    return erode(pred) ^ pred, erode(true) ^ true


def _distances(src: np.ndarray, dst: np.ndarray, metric: str, spacing) -> np.ndarray:
    """Distance from each surface voxel of ``src`` to the surface of ``dst`` (MONAI's rules when one is empty)."""
    if not dst.any():
        return np.full(int(src.sum()), np.inf)
    if not src.any():
        # MONAI returns one infinite distance per voxel of the other surface here.
        return np.full(int(dst.sum()), np.inf)
    ndimage = _ndimage()
    if metric == "euclidean":
        field = ndimage.distance_transform_edt(~dst, sampling=spacing)
    else:
        field = ndimage.distance_transform_cdt(~dst, metric=metric)
    return np.asarray(field, dtype=np.float64)[src]


def _summary(distances: np.ndarray, percentile: float | None) -> float:
    if distances.size == 0:
        return np.nan
    if not percentile:  # None, or 0 as MONAI reads it
        return float(distances.max())
    if np.isinf(distances).any():
        # MONAI interpolates between infinite distances, which gives NaN.
        return np.nan
    return float(np.percentile(distances, percentile))


def _hausdorff(y_pred: np.ndarray, y: np.ndarray, include_background: bool, distance_metric: str,
               percentile: float | None, directed: bool, spacing: Spacing, ignore_index: int | None) -> np.ndarray:
    check_pair(y_pred, y)
    # Checked before the background goes: MONAI would pair a 1-channel y with
    # y_pred's first foreground class.
    if y_pred.shape != y.shape:
        raise ValueError(f"`y_pred` and `y` must both be one channel per class, got {y_pred.shape} and {y.shape}")
    # As MONAI, class numbers (for ignore_index and warnings) start at 1 without the
    # background even when a single channel is kept.
    offset = 0 if include_background else 1
    if not include_background and y.shape[1] > 1:
        y_pred, y = y_pred[:, 1:], y[:, 1:]
    # As MONAI, a voxel is foreground where the value is exactly 1.
    pred_masks, true_masks = (a if a.dtype == bool else a == 1 for a in (y_pred, y))
    spacings = _spacings(spacing, y.shape[0], y.ndim - 2)
    out = np.empty(y.shape[:2], dtype=np.float32)
    for b, c in np.ndindex(*y.shape[:2]):
        label = c + offset
        if ignore_index is not None and label == ignore_index:
            out[b, c] = np.nan
            continue
        pred, true = _surfaces(pred_masks[b, c], true_masks[b, c])
        for name, surface in (("ground truth", true), ("prediction", pred)):
            if not surface.any():
                warnings.warn(f"the {name} of class {label} is all 0, this may result in nan/inf distance.",
                              stacklevel=3)
        directions = [(pred, true)] if directed else [(pred, true), (true, pred)]
        values = [_summary(_distances(s, d, distance_metric, spacings[b]), percentile) for s, d in directions]
        out[b, c] = np.nan if np.isnan(values).any() else max(values)
    return out


def _check_options(distance_metric, percentile, directed, ignore_index):
    check_choice(distance_metric, "distance_metric", DISTANCE_METRICS)
    if percentile is not None:
        check_float(percentile, "percentile", minimum=0.0, maximum=100.0)
    check_bool(directed, "directed")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"`ignore_index` must be None or an int, got {ignore_index!r}")


def compute_hausdorff_distance(
    y_pred: ArrayLike,
    y: ArrayLike,
    include_background: bool = False,
    distance_metric: str = "euclidean",
    percentile: float | None = None,
    directed: bool = False,
    spacing: Spacing = None,
    ignore_index: int | None = None,
) -> mx.array:
    """Hausdorff distance per batch item and class, as MONAI's ``compute_hausdorff_distance``.

    The symmetric distance is the larger of the two directed ones; each
    directed one is the maximum (or the ``percentile``-th percentile, e.g.
    95 for HD95) of the surface-to-surface distances, in the units of
    ``spacing`` (millimetres for a NIfTI's voxel sizes).

    Empty masks follow MONAI: both empty gives NaN; exactly one empty gives
    ``inf`` for the maximum and NaN for a percentile.  NaN scores are left
    out by :func:`do_metric_reduction`.

    Args:
        y_pred (array): (B, C, *spatial) binary one-hot prediction (1 is
            foreground, anything else background).
        y (array): (B, C, *spatial) binary one-hot ground truth.
        include_background (bool): Score channel 0 too. Default: ``False``.
        distance_metric (str): ``'euclidean'`` (uses ``spacing``),
            ``'chessboard'`` or ``'taxicab'`` (in voxels). Default:
            ``'euclidean'``.
        percentile (float, optional): In [0, 100]; ``None`` (or 0, as in
            MONAI) takes the maximum. Default: ``None``.
        directed (bool): Only prediction-to-ground-truth distances. Default:
            ``False``.
        spacing (float or sequence, optional): Voxel size: one number, one
            per spatial dimension, or one such sequence per batch item.
            Default: ``None`` (1 per axis).
        ignore_index (int, optional): Class index whose scores are NaN.
            Default: ``None``.

    Returns:
        array: (B, C') float32 distances.

    Example:
        >>> hd95 = compute_hausdorff_distance(pred_onehot, true_onehot, percentile=95, spacing=(1.0, 1.0, 1.2))
    """
    check_bool(include_background, "include_background")
    _check_options(distance_metric, percentile, directed, ignore_index)
    scores = _hausdorff(to_numpy(y_pred, "y_pred"), to_numpy(y, "y"), include_background, distance_metric,
                        percentile, directed, spacing, ignore_index)
    return mx.array(scores)


class HausdorffDistanceMetric(CumulativeIterationMetric):
    """Hausdorff distance accumulated over batches, MONAI's ``HausdorffDistanceMetric``.

    Call it on each batch with one-hot binary ``y_pred`` and ``y`` (and the
    voxel ``spacing`` as a keyword), then :meth:`aggregate`.  See
    :func:`compute_hausdorff_distance` for the distance and its empty-mask
    values.

    Args:
        include_background (bool): Score channel 0 too. Default: ``False``.
        distance_metric (str): ``'euclidean'``, ``'chessboard'`` or
            ``'taxicab'``. Default: ``'euclidean'``.
        percentile (float, optional): e.g. ``95`` for HD95. Default: ``None``
            (the maximum).
        directed (bool): Only prediction-to-ground-truth. Default: ``False``.
        reduction (str): See :func:`do_metric_reduction`. Default: ``'mean'``.
        get_not_nans (bool): :meth:`aggregate` also returns the counts of
            non-NaN scores. Default: ``False``.
        ignore_index (int, optional): Voxels of this ground-truth class are
            removed from every mask, and the class scores NaN. Default:
            ``None``.

    Example:
        >>> hd95 = HausdorffDistanceMetric(percentile=95, reduction="mean_batch")
        >>> hd95(pred_onehot, true_onehot, spacing=(1.0, 1.0, 1.0))
        >>> per_class_mm = hd95.aggregate()
    """

    def __init__(
        self,
        include_background: bool = False,
        distance_metric: str = "euclidean",
        percentile: float | None = None,
        directed: bool = False,
        reduction: str = "mean",
        get_not_nans: bool = False,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        self.include_background = check_bool(include_background, "include_background")
        _check_options(distance_metric, percentile, directed, ignore_index)
        self.distance_metric, self.percentile, self.directed = distance_metric, percentile, directed
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)
        self.get_not_nans = check_bool(get_not_nans, "get_not_nans")
        self.ignore_index = ignore_index

    def _compute(self, y_pred: np.ndarray, y: np.ndarray, spacing: Spacing = None, **kwargs) -> np.ndarray:
        if kwargs:
            raise TypeError(f"HausdorffDistanceMetric takes only the `spacing` keyword, got {sorted(kwargs)}")
        check_pair(y_pred, y)
        mask = ignore_mask(y, self.ignore_index)
        if mask is not None:
            y_pred, y = y_pred * mask[:, None], y * mask[:, None]
        return _hausdorff(y_pred, y, self.include_background, self.distance_metric, self.percentile,
                          self.directed, spacing, self.ignore_index)

    def aggregate(self, reduction: str | None = None):
        """Reduce every distance since the last :meth:`reset` (``reduction`` overrides the metric's)."""
        data = self.get_buffer()
        if data is None:
            raise ValueError("HausdorffDistanceMetric has no scores to aggregate: call it on a batch first")
        f, not_nans = do_metric_reduction(data, reduction or self.reduction)
        return (f, not_nans) if self.get_not_nans else f
