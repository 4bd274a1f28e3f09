"""Dice losses on MLX with the arguments and results of MONAI 1.6.1's ``monai.losses.dice``.

``DiceLoss``, ``DiceCELoss`` (Dice + cross-entropy) and ``DiceFocalLoss``
(Dice + focal).  Each takes the same arguments as its MONAI namesake and
gives the same value and gradient (checked against MONAI in
``tests/losses/test_dice.py``); where MONAI raises an ``AssertionError`` on
mismatched shapes, these raise a ``ValueError``.
"""

from __future__ import annotations

import warnings
from typing import Callable, Optional

import mlx.core as mx
import mlx.nn as nn

from .._args import check_bool, check_choice, check_float
from . import _targets
from ._cross_entropy import binary_cross_entropy_with_logits, cross_entropy
from ._targets import Weight
from .focal_loss import REDUCTIONS, Alpha, FocalLoss


def _activate(x: mx.array, sigmoid: bool, softmax: bool, other_act: Optional[Callable]) -> mx.array:
    if sigmoid:
        x = mx.sigmoid(x)
    if softmax:
        if x.shape[1] == 1:
            warnings.warn("single channel prediction, `softmax=True` ignored.", stacklevel=3)
        else:
            x = mx.softmax(x, axis=1)
    if other_act is not None:
        x = other_act(x)
        if not isinstance(x, mx.array):
            raise TypeError(f"`other_act` must return an mlx.core.array, got {type(x).__name__}")
    return x


def _overlaps(x: mx.array, t: mx.array, axes: tuple[int, ...], squared: bool, soft_label: bool):
    """True positives, false positives and false negatives summed over ``axes``.

    The plain sums are MONAI's original formulas; the norm-based ones (for
    squared predictions or soft labels) are Wang et al.'s, which agree with
    them on hard labels and stay correct on soft ones.
    """
    if not squared and not soft_label:
        tp = mx.sum(x * t, axis=axes)
        return tp, mx.sum(x, axis=axes) - tp, mx.sum(t, axis=axes) - tp
    if squared:
        pred, ground, diff = (mx.sum(v * v, axis=axes) for v in (x, t, x - t))
    else:
        pred, ground, diff = (mx.sum(mx.abs(v), axis=axes) for v in (x, t, x - t))
    tp = (pred + ground - diff) / 2
    return tp, pred - tp, ground - tp


class DiceLoss(nn.Module):
    """Soft Dice (or Jaccard) loss, MONAI's ``DiceLoss`` on MLX arrays.

    For each batch item and class, ``1 - (2 |X∩Y| + smooth_nr) / (|X| + |Y| +
    smooth_dr)`` over the spatial dimensions (over batch and space with
    ``batch=True``), then weighted and reduced.  It supports multi-class
    (``softmax``) and multi-label (``sigmoid``) tasks.

    Args:
        include_background (bool): If ``False``, channel 0 is left out.
            Default: ``True``.
        to_onehot_y (bool): Convert a (B, 1, ...) label map ``target`` to one
            channel per class. Default: ``False``.
        sigmoid (bool): Apply a sigmoid to ``input``. Default: ``False``.
        softmax (bool): Apply a softmax over classes to ``input``. Default:
            ``False``.
        other_act (callable, optional): Another activation applied to
            ``input`` (e.g. ``mx.tanh``); at most one of ``sigmoid``,
            ``softmax`` and ``other_act``. Default: ``None``.
        squared_pred (bool): Square predictions and targets in the
            denominator. Default: ``False``.
        jaccard (bool): Soft Jaccard (IoU) instead of Dice. Default: ``False``.
        reduction (str): ``'none'`` (shape (B, C, 1, ...)), ``'mean'`` or
            ``'sum'``. Default: ``'mean'``.
        smooth_nr (float): Added to the numerator. Default: ``1e-5``.
        smooth_dr (float): Added to the denominator. Default: ``1e-5``.
        batch (bool): Sum over the batch before dividing (one value per
            class). Default: ``False``.
        weight (float or sequence, optional): Per-class weights (>= 0); a
            sequence has one value per kept class (without the background when
            ``include_background=False``). Default: ``None``.
        soft_label (bool): Use the formulation that is correct for soft
            (non-binary) targets. Default: ``False``.
        ignore_index (int, optional): Label whose voxels are left out of
            every class. Default: ``None``.

    Shape:
        - input: (B, C, *spatial) scores, at least one spatial dimension.
        - target: (B, 1, *spatial) labels (with ``to_onehot_y``) or
          (B, C, *spatial).
        - output: a scalar, or (B, C', 1, ...) for ``'none'`` ((C', 1, ...)
          with ``batch=True``).

    Example:
        >>> loss = DiceLoss(to_onehot_y=True, softmax=True)
        >>> logits = mx.random.normal((2, 3, 16, 16, 16))
        >>> labels = mx.random.randint(0, 3, (2, 1, 16, 16, 16))
        >>> grad = mx.grad(lambda x: loss(x, labels))(logits)
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Optional[Callable] = None,
        squared_pred: bool = False,
        jaccard: bool = False,
        reduction: str = "mean",
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        weight: Weight = None,
        soft_label: bool = False,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        self.include_background = check_bool(include_background, "include_background")
        self.to_onehot_y = check_bool(to_onehot_y, "to_onehot_y")
        self.sigmoid = check_bool(sigmoid, "sigmoid")
        self.softmax = check_bool(softmax, "softmax")
        _targets.check_other_act(other_act, sigmoid, softmax)
        self.other_act = other_act
        self.squared_pred = check_bool(squared_pred, "squared_pred")
        self.jaccard = check_bool(jaccard, "jaccard")
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)
        self.smooth_nr = check_float(smooth_nr, "smooth_nr")
        self.smooth_dr = check_float(smooth_dr, "smooth_dr")
        self.batch = check_bool(batch, "batch")
        self._class_weight = _targets.class_weight(weight, "weight")
        self.soft_label = check_bool(soft_label, "soft_label")
        self.ignore_index = _targets.check_ignore_index(ignore_index)

    def __call__(self, input: mx.array, target: mx.array) -> mx.array:
        """Dice loss of ``input`` against ``target``; see the class docstring."""
        input, target = _targets.check_input_target(input, target)
        return self._loss(input, target)

    def _loss(self, input: mx.array, target: mx.array) -> mx.array:
        input = _activate(input, self.sigmoid, self.softmax, self.other_act)
        num_classes = input.shape[1]
        original_target = target
        if self.to_onehot_y:
            if num_classes == 1:
                warnings.warn("single channel prediction, `to_onehot_y=True` ignored.", stacklevel=3)
            else:
                target = _targets.drop_ignored_labels(target, self.ignore_index, num_classes)
                target = _targets.one_hot(target, num_classes)
        if not self.include_background:
            if num_classes == 1:
                warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=3)
            else:
                target, input = target[:, 1:], input[:, 1:]
        if target.shape != input.shape:
            raise ValueError(
                f"`target` must have the shape of `input` after the one-hot conversion and background "
                f"removal, got target {tuple(target.shape)} and input {tuple(input.shape)} "
                "(a label map needs to_onehot_y=True)"
            )
        target = _targets.as_float(target)
        mask = _targets.ignore_mask(original_target, self.ignore_index)
        if mask is not None:
            input, target = input * mask, target * mask

        axes = tuple(range(2, input.ndim))
        if self.batch:
            axes = (0,) + axes
        tp, fp, fn = _overlaps(input, target, axes, self.squared_pred, self.soft_label)
        if not self.jaccard:
            fp, fn = fp * 0.5, fn * 0.5
        f = 1 - (2 * tp + self.smooth_nr) / (2 * (tp + fp + fn) + self.smooth_dr)

        weight = self._class_weight
        kept_classes = target.shape[1]
        if weight is not None and kept_classes != 1:
            if weight.ndim == 1 and weight.shape[0] != kept_classes:
                raise ValueError(
                    f"`weight` must have one value per class ({kept_classes}, without the background "
                    f"when include_background=False), got {weight.shape[0]}"
                )
            f = f * weight
        if self.reduction == "mean":
            return mx.mean(f)
        if self.reduction == "sum":
            return mx.sum(f)
        return _targets.none_shape(f, input.ndim)


class DiceCELoss(nn.Module):
    """Dice loss plus cross-entropy, MONAI's ``DiceCELoss`` on MLX arrays.

    ``lambda_dice * DiceLoss + lambda_ce * CE`` where CE is PyTorch's
    ``CrossEntropyLoss`` on the raw logits for more than one channel (class
    indices for a label-map target, class probabilities for a one-hot one)
    and ``BCEWithLogitsLoss`` for one channel.  ``sigmoid``/``softmax``/
    ``other_act`` act on the Dice term only.

    Args:
        include_background, to_onehot_y, sigmoid, softmax, other_act,
        squared_pred, jaccard, smooth_nr, smooth_dr, batch: As
            :class:`DiceLoss`.
        reduction (str): ``'mean'`` or ``'sum'``, for both terms (``'none'``
            is refused: the terms have different shapes). Default: ``'mean'``.
        weight (sequence, optional): One weight (>= 0) per input channel,
            background included: the class weights of the cross-entropy (the
            ``pos_weight`` of the binary one) and of the Dice term (without
            entry 0 when ``include_background=False``). Default: ``None``.
        lambda_dice (float): Weight of the Dice term, >= 0. Default: ``1.0``.
        lambda_ce (float): Weight of the cross-entropy term, >= 0. Default:
            ``1.0``.
        label_smoothing (float): Cross-entropy label smoothing in [0, 1]
            (multi-channel only). Default: ``0.0``.

    Shape:
        - input: (B, C, *spatial) logits.
        - target: (B, 1, *spatial) labels or (B, C, *spatial) one-hot.
        - output: a scalar.

    Example:
        >>> loss = DiceCELoss(to_onehot_y=True, softmax=True)
        >>> logits = mx.random.normal((2, 4, 16, 16, 16))
        >>> labels = mx.random.randint(0, 4, (2, 1, 16, 16, 16))
        >>> value, grad = mx.value_and_grad(lambda x: loss(x, labels))(logits)
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Optional[Callable] = None,
        squared_pred: bool = False,
        jaccard: bool = False,
        reduction: str = "mean",
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        weight: Weight = None,
        lambda_dice: float = 1.0,
        lambda_ce: float = 1.0,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        reduction = check_choice(reduction, "reduction", ("mean", "sum"))
        ce_weight = _targets.class_weight(weight, "weight")
        dice_weight = ce_weight
        if ce_weight is not None and not include_background:
            if ce_weight.ndim == 0:
                raise ValueError(
                    "`weight` must be a sequence with one value per input channel when "
                    f"include_background=False (its entry 0 is dropped for Dice), got {ce_weight.item()!r}"
                )
            dice_weight = ce_weight[1:] if ce_weight.shape[0] > 1 else None
        self.dice = DiceLoss(
            include_background=include_background,
            to_onehot_y=to_onehot_y,
            sigmoid=sigmoid,
            softmax=softmax,
            other_act=other_act,
            squared_pred=squared_pred,
            jaccard=jaccard,
            reduction=reduction,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            batch=batch,
            weight=dice_weight,
        )
        self.reduction = reduction
        self._ce_weight = ce_weight
        self.lambda_dice = check_float(lambda_dice, "lambda_dice", minimum=0.0)
        self.lambda_ce = check_float(lambda_ce, "lambda_ce", minimum=0.0)
        self.label_smoothing = check_float(label_smoothing, "label_smoothing", minimum=0.0, maximum=1.0)

    def __call__(self, input: mx.array, target: mx.array) -> mx.array:
        """Weighted sum of the Dice and cross-entropy terms; see the class docstring."""
        input, target = _targets.check_input_target(input, target)
        self._check_weight(input.shape[1])
        dice = self.dice._loss(input, target)
        return self.lambda_dice * dice + self.lambda_ce * self._ce(input, target)

    def _check_weight(self, num_classes: int) -> None:
        weight = self._ce_weight
        # PyTorch's cross-entropy needs one weight per class; a scalar only makes
        # sense as the binary loss's pos_weight.
        if weight is not None and num_classes > 1 and (weight.ndim == 0 or weight.shape[0] != num_classes):
            given = "a scalar" if weight.ndim == 0 else f"{weight.shape[0]} values"
            raise ValueError(f"`weight` must have one value per input channel ({num_classes}), got {given}")
        if weight is not None and num_classes == 1 and weight.size != 1:
            raise ValueError(f"`weight` for a single-channel input must be one value, got {weight.size}")

    def _ce(self, input: mx.array, target: mx.array) -> mx.array:
        num_classes = input.shape[1]
        weight = self._ce_weight
        if num_classes == 1:
            return binary_cross_entropy_with_logits(input, target, weight, self.reduction)
        indices = target.shape[1] == 1
        if indices:
            target = _targets.class_indices(target, num_classes)
        return cross_entropy(input, target, weight, self.reduction, self.label_smoothing, indices)


class DiceFocalLoss(nn.Module):
    """Dice loss plus focal loss, MONAI's ``DiceFocalLoss`` on MLX arrays.

    ``lambda_dice * DiceLoss + lambda_focal * FocalLoss``; the focal term
    takes the raw logits through a sigmoid (MONAI's default), while
    ``sigmoid``/``softmax``/``other_act`` act on the Dice term only.

    Args:
        include_background, to_onehot_y, sigmoid, softmax, other_act,
        squared_pred, jaccard, smooth_nr, smooth_dr, batch: As
            :class:`DiceLoss`.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``, for both terms.
            Default: ``'mean'``.
        gamma (float): Focal exponent. Default: ``2.0``.
        weight (float or sequence, optional): Per-class weights for both terms
            (one per kept class). Default: ``None``.
        lambda_dice (float): Weight of the Dice term, >= 0. Default: ``1.0``.
        lambda_focal (float): Weight of the focal term, >= 0. Default: ``1.0``.
        alpha (float or sequence, optional): The focal loss's balancing
            factor, see :class:`FocalLoss`. Default: ``None``.

    Shape:
        - input: (B, C, *spatial) logits.
        - target: (B, 1, *spatial) labels or (B, C, *spatial) one-hot.
        - output: a scalar, or (B, C', *spatial) for ``'none'``.

    Example:
        >>> loss = DiceFocalLoss(to_onehot_y=True, softmax=True, gamma=2.0)
        >>> logits = mx.random.normal((1, 3, 16, 16, 16))
        >>> labels = mx.random.randint(0, 3, (1, 1, 16, 16, 16))
        >>> value = loss(logits, labels)
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act: Optional[Callable] = None,
        squared_pred: bool = False,
        jaccard: bool = False,
        reduction: str = "mean",
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        gamma: float = 2.0,
        weight: Weight = None,
        lambda_dice: float = 1.0,
        lambda_focal: float = 1.0,
        alpha: Alpha = None,
    ) -> None:
        super().__init__()
        self.dice = DiceLoss(
            include_background=include_background,
            sigmoid=sigmoid,
            softmax=softmax,
            other_act=other_act,
            squared_pred=squared_pred,
            jaccard=jaccard,
            reduction=reduction,
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            batch=batch,
            weight=weight,
        )
        self.focal = FocalLoss(
            include_background=include_background,
            gamma=gamma,
            weight=weight,
            alpha=alpha,
            reduction=reduction,
        )
        self.to_onehot_y = check_bool(to_onehot_y, "to_onehot_y")
        self.lambda_dice = check_float(lambda_dice, "lambda_dice", minimum=0.0)
        self.lambda_focal = check_float(lambda_focal, "lambda_focal", minimum=0.0)

    def __call__(self, input: mx.array, target: mx.array) -> mx.array:
        """Weighted sum of the Dice and focal terms; see the class docstring."""
        input, target = _targets.check_input_target(input, target)
        if self.to_onehot_y:
            if input.shape[1] == 1:
                warnings.warn("single channel prediction, `to_onehot_y=True` ignored.", stacklevel=2)
            else:
                target = _targets.one_hot(target, input.shape[1])
        dice = self.dice._loss(input, target)
        return self.lambda_dice * dice + self.lambda_focal * self.focal(input, target)
