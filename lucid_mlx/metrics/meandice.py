"""Dice score per batch item and class, with MONAI 1.6.1's ``DiceMetric``/``compute_dice`` conventions."""

from __future__ import annotations

from typing import Sequence, Union

import mlx.core as mx
import numpy as np

from .._args import check_bool, check_choice
from .metric import ArrayLike, CumulativeIterationMetric, to_numpy
from .reduction import REDUCTIONS, do_metric_reduction


def check_pair(y_pred: np.ndarray, y: np.ndarray) -> None:
    """Shared shape checks: (B, C, *spatial) both, same batch and spatial sizes."""
    if y_pred.ndim < 3:
        raise ValueError(f"`y_pred` must be (B, C, *spatial), got shape {y_pred.shape}")
    if y.ndim != y_pred.ndim or y.shape[0] != y_pred.shape[0] or y.shape[2:] != y_pred.shape[2:]:
        raise ValueError(
            f"`y` must have the batch and spatial sizes of `y_pred`, got y_pred {y_pred.shape} and y {y.shape}"
        )


def ignore_mask(y: np.ndarray, ignore_index: int | None) -> np.ndarray | None:
    """(B, *spatial) bool mask of the voxels kept, as MONAI's ``create_ignore_mask``."""
    if ignore_index is None:
        return None
    if y.shape[1] == 1:
        return y[:, 0] != ignore_index
    if 0 <= ignore_index < y.shape[1]:
        return y[:, ignore_index] == 0
    return y.sum(axis=1) > 0


def _check_options(num_classes, ignore_index, per_component) -> None:
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise ValueError(f"`num_classes` must be None or a positive int, got {num_classes!r}")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"`ignore_index` must be None or an int, got {ignore_index!r}")
    if per_component:
        raise ValueError(
            "`per_component=True` (Dice per connected component of the ground truth) is not supported; "
            "leave it False"
        )


def _dice(y_pred: np.ndarray, y: np.ndarray, include_background: bool, ignore_empty: bool,
          num_classes: int | None, ignore_index: int | None) -> np.ndarray:
    check_pair(y_pred, y)
    n = num_classes if num_classes is not None else y_pred.shape[1]
    for name, a in (("y_pred", y_pred), ("y", y)):
        if a.shape[1] != 1 and a.shape[1] < n:
            raise ValueError(f"`{name}` has {a.shape[1]} channels, fewer than the {n} classes")
    mask = ignore_mask(y, ignore_index)
    axes = tuple(range(1, y.ndim - 1))
    scores = []
    for c in (range(0 if include_background else 1, n) if n > 1 else [1]):
        pred = (y_pred[:, 0] == c) if y_pred.shape[1] == 1 else y_pred[:, c].astype(bool)
        true = (y[:, 0] == c) if y.shape[1] == 1 else y[:, c].astype(np.float64)
        if mask is not None:
            pred, true = pred & mask, true * mask
        true = true.astype(np.float64)
        true_sum, pred_sum = true.sum(axis=axes), pred.sum(axis=axes).astype(np.float64)
        overlap = np.where(pred, true, 0.0).sum(axis=axes)
        empty = 1.0 * (true_sum + pred_sum <= 0)
        fallback = np.full_like(true_sum, np.nan) if ignore_empty else empty
        with np.errstate(divide="ignore", invalid="ignore"):
            scores.append(np.where(true_sum > 0, 2.0 * overlap / (true_sum + pred_sum), fallback))
    return np.stack(scores, axis=1).astype(np.float32)


def compute_dice(
    y_pred: ArrayLike,
    y: ArrayLike,
    include_background: bool = True,
    ignore_empty: bool = True,
    num_classes: int | None = None,
    per_component: bool = False,
    ignore_index: int | None = None,
) -> mx.array:
    """Dice score ``2 |P∩G| / (|P| + |G|)`` per batch item and class, as MONAI's ``compute_dice``.

    No activation or thresholding is applied: ``y_pred`` must already be
    binary one-hot channels or a label map (take the argmax of a network's
    scores first); any nonzero prediction counts as foreground.

    Args:
        y_pred (array): (B, C, *spatial) binary channels, or a (B, 1,
            *spatial) label map with ``num_classes``.
        y (array): The ground truth in either form (soft values allowed).
        include_background (bool): Score channel 0 too. Default: ``True``
            (MONAI's default for Dice; note that its Hausdorff distance
            defaults to ``False``).
        ignore_empty (bool): For a class absent from the ground truth, give
            NaN (so reductions skip it) if ``True``; if ``False``, 1.0 when
            the prediction is empty too, else 0.0. Default: ``True``.
        num_classes (int, optional): Number of classes, background included;
            needed when both inputs are label maps. Default: ``None``
            (``y_pred.shape[1]``).
        per_component (bool): MONAI's per-connected-component Dice; not
            supported, refused with a ``ValueError``. Default: ``False``.
        ignore_index (int, optional): Ground-truth label whose voxels are
            left out of every class. Default: ``None``.

    Returns:
        array: (B, C') float32 scores, C' the classes scored.

    Example:
        >>> pred = mx.argmax(logits, axis=1, keepdims=True)
        >>> compute_dice(pred, labels, include_background=False, num_classes=4)
    """
    check_bool(include_background, "include_background")
    check_bool(ignore_empty, "ignore_empty")
    _check_options(num_classes, ignore_index, per_component)
    scores = _dice(to_numpy(y_pred, "y_pred"), to_numpy(y, "y"), include_background, ignore_empty,
                   num_classes, ignore_index)
    return mx.array(scores)


class DiceMetric(CumulativeIterationMetric):
    """Dice score accumulated over batches, MONAI's ``DiceMetric`` on MLX or NumPy arrays.

    Call it on each batch (one-hot binary channels or label maps, see
    :func:`compute_dice`), then :meth:`aggregate` for the reduced score and
    :meth:`reset` before the next epoch.

    A class absent from an item's ground truth gets NaN with
    ``ignore_empty=True`` (the default) and is left out of every reduction;
    with ``ignore_empty=False`` it scores 1.0 if the prediction is also empty
    and 0.0 otherwise.

    Args:
        include_background (bool): Score channel 0 too. Default: ``True``, as
            MONAI's ``DiceMetric``; pass ``False`` to score only the
            foreground classes.
        reduction (str): How :meth:`aggregate` reduces the (batch, class)
            table, see :func:`do_metric_reduction`. Default: ``'mean'``.
        get_not_nans (bool): :meth:`aggregate` also returns the number of
            non-NaN scores behind each value. Default: ``False``.
        ignore_empty (bool): See above. Default: ``True``.
        num_classes (int, optional): Number of classes, background included,
            for label-map inputs. Default: ``None``.
        return_with_label (bool or list of str): With
            ``reduction='mean_batch'``, :meth:`aggregate` returns a dict
            ``{'label_i': score}`` (or keyed by the given names), each score
            rounded to 4 decimals. Default: ``False``.
        per_component (bool): Not supported (``ValueError``). Default:
            ``False``.
        ignore_index (int, optional): Ground-truth label whose voxels are
            left out. Default: ``None``.

    Example:
        >>> metric = DiceMetric(include_background=False, reduction="mean_batch", num_classes=4)
        >>> for image, labels in validation:
        ...     pred = mx.argmax(sliding_window_inference(image, 64, 4, model), axis=1, keepdims=True)
        ...     metric(pred, labels)
        >>> per_class = metric.aggregate()
        >>> metric.reset()
    """

    def __init__(
        self,
        include_background: bool = True,
        reduction: str = "mean",
        get_not_nans: bool = False,
        ignore_empty: bool = True,
        num_classes: int | None = None,
        return_with_label: Union[bool, Sequence[str]] = False,
        per_component: bool = False,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        self.include_background = check_bool(include_background, "include_background")
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)
        self.get_not_nans = check_bool(get_not_nans, "get_not_nans")
        self.ignore_empty = check_bool(ignore_empty, "ignore_empty")
        _check_options(num_classes, ignore_index, per_component)
        self.num_classes = num_classes
        if not isinstance(return_with_label, (bool, list, tuple)):
            raise TypeError(f"`return_with_label` must be a bool or a list of names, got {return_with_label!r}")
        self.return_with_label = return_with_label
        self.ignore_index = ignore_index

    def _compute(self, y_pred: np.ndarray, y: np.ndarray, **kwargs) -> np.ndarray:
        if kwargs:
            raise TypeError(f"DiceMetric takes no keyword arguments, got {sorted(kwargs)}")
        return _dice(y_pred, y, self.include_background, self.ignore_empty, self.num_classes, self.ignore_index)

    def aggregate(self, reduction: str | None = None):
        """Reduce every score since the last :meth:`reset` (``reduction`` overrides the metric's)."""
        data = self.get_buffer()
        if data is None:
            raise ValueError("DiceMetric has no scores to aggregate: call it on a batch first")
        f, not_nans = do_metric_reduction(data, reduction or self.reduction)
        if self.reduction == "mean_batch" and self.return_with_label:
            if isinstance(self.return_with_label, bool):
                first = 0 if self.include_background else 1
                names = [f"label_{i + first}" for i in range(f.shape[0])]
            else:
                names = list(self.return_with_label)
            f = {name: round(v, 4) for name, v in zip(names, f.tolist())}
        return (f, not_nans) if self.get_not_nans else f
