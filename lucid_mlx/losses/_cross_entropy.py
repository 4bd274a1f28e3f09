"""Cross-entropy with ``torch.nn.CrossEntropyLoss``'s and ``BCEWithLogitsLoss``'s semantics.

``DiceCELoss`` adds one of these to its Dice term, exactly as MONAI does with
the PyTorch modules.  MLX's ``nn.losses.cross_entropy`` weighs samples, not
classes, and averages differently, so the PyTorch rules are written out:

* class-index targets: with class weights ``w``, 'mean' divides the weighted
  sum by the sum of the weights of the target classes;
* probability targets: 'mean' divides by the number of voxels, whatever the
  weights;
* label smoothing mixes in ``label_smoothing / C`` of every class.
"""

from __future__ import annotations

import mlx.core as mx


def _class_axis(weight: mx.array, ndim: int) -> mx.array:
    return weight.reshape((1, -1) + (1,) * (ndim - 2))


def cross_entropy(
    logits: mx.array,
    target: mx.array,
    weight: mx.array | None,
    reduction: str,
    label_smoothing: float,
    indices: bool,
) -> mx.array:
    """Softmax cross-entropy of (B, C, ...) logits.

    ``target`` is (B, ...) int32 class indices when ``indices``, else
    (B, C, ...) class probabilities.
    """
    num_classes = logits.shape[1]
    log_p = logits - mx.logsumexp(logits, axis=1, keepdims=True)
    if not indices:
        target = target.astype(mx.float32)
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / num_classes
        per_class = -log_p * target
        if weight is not None:
            per_class = per_class * _class_axis(weight, logits.ndim)
        per_voxel = mx.sum(per_class, axis=1)
        return mx.sum(per_voxel) if reduction == "sum" else mx.mean(per_voxel)

    picked = mx.take_along_axis(log_p, mx.expand_dims(target, 1), axis=1)[:, 0]
    voxel_weight = mx.take(weight, target) if weight is not None else None
    nll = -picked if voxel_weight is None else -picked * voxel_weight
    if reduction == "sum":
        loss = mx.sum(nll)
    else:
        loss = mx.sum(nll) / mx.sum(voxel_weight) if voxel_weight is not None else mx.mean(nll)
    if label_smoothing <= 0:
        return loss
    every_class = log_p if weight is None else log_p * _class_axis(weight, logits.ndim)
    smooth = -mx.sum(every_class, axis=1)
    if reduction == "sum":
        smooth = mx.sum(smooth)
    else:
        smooth = mx.sum(smooth) / mx.sum(voxel_weight) if voxel_weight is not None else mx.mean(smooth)
    return (1 - label_smoothing) * loss + smooth * (label_smoothing / num_classes)


def binary_cross_entropy_with_logits(
    logits: mx.array, target: mx.array, pos_weight: mx.array | None, reduction: str
) -> mx.array:
    """Sigmoid cross-entropy; ``pos_weight`` scales the positive term as in PyTorch."""
    target = target.astype(mx.float32)
    # softplus(-x) without overflow for large |x|.
    softplus_neg = mx.logaddexp(mx.zeros_like(logits), -logits)
    if pos_weight is None:
        loss = (1 - target) * logits + softplus_neg
    else:
        loss = (1 - target) * logits + ((pos_weight - 1) * target + 1) * softplus_neg
    return mx.sum(loss) if reduction == "sum" else mx.mean(loss)
