"""Focal loss on MLX with the arguments and results of MONAI 1.6.1's ``monai.losses.FocalLoss``."""

from __future__ import annotations

import warnings
from typing import Sequence, Union

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .._args import check_bool, check_choice, check_float
from . import _targets
from ._targets import Weight

Alpha = Union[float, Sequence[float], np.ndarray, mx.array, None]

REDUCTIONS = ("none", "mean", "sum")


def _check_alpha(alpha: Alpha) -> float | mx.array | None:
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        return check_float(alpha, "alpha", minimum=0.0, maximum=1.0)
    values = _targets.class_weight(alpha, "alpha")
    if values.ndim == 0:
        return check_float(values.item(), "alpha", minimum=0.0, maximum=1.0)
    return values


def _class_axis(values: mx.array, ndim: int) -> mx.array:
    return values.reshape((1, -1) + (1,) * (ndim - 2))


def _check_alpha_length(alpha: mx.array, num_classes: int) -> None:
    if alpha.shape[0] != num_classes:
        raise ValueError(
            f"`alpha` must have one value per class ({num_classes}, without the background when "
            f"include_background=False), got {alpha.shape[0]}"
        )


def sigmoid_focal_loss(
    input: mx.array, target: mx.array, gamma: float = 2.0, alpha: float | mx.array | None = None
) -> mx.array:
    """Element-wise sigmoid focal loss ``-alpha_t (1 - p_t)^gamma log(p_t)``.

    Args:
        input (array): (B, C, *spatial) logits.
        target (array): (B, C, *spatial) binary (or soft) targets.
        gamma (float): Focusing exponent. Default: ``2.0``.
        alpha (float or array, optional): A scalar weighs positives by ``alpha``
            and negatives by ``1 - alpha``; one value per class weighs only that
            class's positives. Default: ``None`` (no weighting).

    Returns:
        array: The unreduced loss, shaped like ``input``.
    """
    target = target.astype(mx.float32)
    log_sigmoid = lambda x: -mx.logaddexp(mx.zeros_like(x), -x)  # noqa: E731
    bce = input - input * target - log_sigmoid(input)
    # log(1 - p_t) computed from the logit, which keeps it finite where p_t rounds to 1.
    log_one_minus_pt = log_sigmoid(-input * (target * 2 - 1))
    loss = mx.exp(log_one_minus_pt * gamma) * bce
    if alpha is None:
        return loss
    if isinstance(alpha, mx.array):
        _check_alpha_length(alpha, target.shape[1])
        factor = mx.where(target == 1, _class_axis(alpha, target.ndim), mx.ones_like(target))
    else:
        factor = target * alpha + (1 - target) * (1 - alpha)
    return factor * loss


def softmax_focal_loss(
    input: mx.array, target: mx.array, gamma: float = 2.0, alpha: float | mx.array | None = None
) -> mx.array:
    """Element-wise softmax focal loss ``-alpha_c (1 - p_c)^gamma t_c log(p_c)``.

    Args:
        input (array): (B, C, *spatial) logits; the softmax runs over C.
        target (array): (B, C, *spatial) one-hot (or soft) targets.
        gamma (float): Focusing exponent. Default: ``2.0``.
        alpha (float or array, optional): A scalar gives ``1 - alpha`` to class
            0 and ``alpha`` to the others; one value per class weighs each
            class. Default: ``None`` (no weighting).

    Returns:
        array: The unreduced loss, shaped like ``input``.
    """
    target = target.astype(mx.float32)
    log_p = input - mx.logsumexp(input, axis=1, keepdims=True)
    loss = -((1 - mx.exp(log_p)) ** gamma) * log_p * target
    if alpha is None:
        return loss
    num_classes = target.shape[1]
    if isinstance(alpha, mx.array):
        _check_alpha_length(alpha, num_classes)
        factor = alpha
    else:
        factor = mx.array([1 - alpha] + [alpha] * (num_classes - 1), dtype=mx.float32)
    return _class_axis(factor, target.ndim) * loss


class FocalLoss(nn.Module):
    """Focal loss, MONAI's ``FocalLoss`` on MLX arrays.

    A cross-entropy that down-weights confident, correct voxels by
    ``(1 - p_t)^gamma`` (Lin et al., ICCV 2017).  ``input`` holds logits: a
    sigmoid (per class, multi-label) or a softmax (over classes) is applied
    inside.  With ``gamma=0`` and the sigmoid it equals binary cross-entropy
    with logits.

    Args:
        include_background (bool): If ``False``, channel 0 is left out.
            Default: ``True``.
        to_onehot_y (bool): Convert a (B, 1, ...) label map ``target`` to one
            channel per class. Default: ``False``.
        gamma (float): Focusing exponent, >= 0. Default: ``2.0``.
        alpha (float or sequence, optional): Balancing factor in [0, 1]: a
            scalar weighs positives ``alpha`` and negatives ``1 - alpha``
            (sigmoid) or class 0 ``1 - alpha`` and the others ``alpha``
            (softmax; ignored with a warning when ``include_background=False``);
            a sequence gives one factor per (kept) class. Default: ``None``.
        weight (float or sequence, optional): Per-class weights (>= 0) that
            multiply the loss; a sequence has one value per kept class.
            Default: ``None``.
        reduction (str): ``'none'`` (the (B, C, *spatial) loss), ``'mean'``
            (over every element) or ``'sum'`` (mean over space, sum over batch
            and classes, as MONAI). Default: ``'mean'``.
        use_softmax (bool): Softmax over classes instead of a sigmoid per
            class. Default: ``False``.
        ignore_index (int, optional): Label whose voxels are left out; with
            'mean' the sum is divided by the number of kept voxels. Default:
            ``None``.

    Shape:
        - input: (B, C, *spatial) logits, at least one spatial dimension.
        - target: (B, 1, *spatial) labels (with ``to_onehot_y``) or
          (B, C, *spatial).
        - output: a scalar, or (B, C', *spatial) for ``'none'`` (C' = C - 1
          without the background).

    Example:
        >>> loss = FocalLoss(to_onehot_y=True, use_softmax=True, gamma=2.0)
        >>> logits = mx.random.normal((2, 3, 8, 8, 8))
        >>> labels = mx.random.randint(0, 3, (2, 1, 8, 8, 8))
        >>> value = loss(logits, labels)
    """

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        gamma: float = 2.0,
        alpha: Alpha = None,
        weight: Weight = None,
        reduction: str = "mean",
        use_softmax: bool = False,
        ignore_index: int | None = None,
    ) -> None:
        super().__init__()
        self.include_background = check_bool(include_background, "include_background")
        self.to_onehot_y = check_bool(to_onehot_y, "to_onehot_y")
        self.gamma = check_float(gamma, "gamma", minimum=0.0)
        self.alpha = _check_alpha(alpha)
        self._class_weight = _targets.class_weight(weight, "weight")
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)
        self.use_softmax = check_bool(use_softmax, "use_softmax")
        self.ignore_index = _targets.check_ignore_index(ignore_index)

    def __call__(self, input: mx.array, target: mx.array) -> mx.array:
        """Focal loss of ``input`` logits against ``target``; see the class docstring."""
        input, target = _targets.check_input_target(input, target)
        num_classes = input.shape[1]
        original_target = target
        if self.to_onehot_y:
            if num_classes == 1:
                warnings.warn("single channel prediction, `to_onehot_y=True` ignored.", stacklevel=2)
            else:
                target = _targets.drop_ignored_labels(target, self.ignore_index, num_classes)
                target = _targets.one_hot(target, num_classes)
        if not self.include_background:
            if num_classes == 1:
                warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=2)
            else:
                target, input = target[:, 1:], input[:, 1:]
        if target.shape != input.shape:
            raise ValueError(
                f"`target` must have the shape of `input` after the one-hot conversion and background "
                f"removal, got target {tuple(target.shape)} and input {tuple(input.shape)}"
            )
        mask = _targets.ignore_mask(original_target, self.ignore_index)
        target = _targets.as_float(target)
        if mask is not None:
            input, target = input * mask, target * mask

        alpha = self.alpha
        if self.use_softmax:
            if not self.include_background and isinstance(alpha, float):
                warnings.warn("`include_background=False`, scalar `alpha` ignored when using softmax.", stacklevel=2)
                alpha = None
            loss = softmax_focal_loss(input, target, self.gamma, alpha)
        else:
            loss = sigmoid_focal_loss(input, target, self.gamma, alpha)
        if mask is not None:
            loss = loss * mask
        loss = self._weigh(loss)
        return self._reduce(loss, mask)

    def _weigh(self, loss: mx.array) -> mx.array:
        weight = self._class_weight
        if weight is None:
            return loss
        if weight.ndim == 0:
            return loss * weight
        num_classes = loss.shape[1]
        if num_classes == 1:
            raise ValueError("a per-class `weight` sequence is not supported for single-channel outputs")
        if weight.shape[0] != num_classes:
            raise ValueError(
                f"`weight` must have one value per class ({num_classes}, without the background when "
                f"include_background=False), got {weight.shape[0]}"
            )
        return loss * _class_axis(weight, loss.ndim)

    def _reduce(self, loss: mx.array, mask: mx.array | None) -> mx.array:
        eps = float(np.finfo(np.float32).eps)
        if self.reduction == "none":
            return loss
        spatial = tuple(range(2, loss.ndim))
        if self.reduction == "sum":
            # MONAI averages over space before summing, to stay close to BCE's scale.
            if mask is None:
                return mx.sum(mx.mean(loss, axis=spatial))
            kept = mx.maximum(mx.sum(mask, axis=spatial, keepdims=True), eps)
            return mx.sum(mx.sum(loss, axis=spatial, keepdims=True) / kept)
        if mask is None:
            return mx.mean(loss)
        return mx.sum(loss) / mx.maximum(mx.sum(mask), eps)
