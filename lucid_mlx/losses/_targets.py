"""Checking loss inputs and turning label maps, ignore labels and weights into arrays.

The losses take MONAI's layouts: ``input`` is (B, C, *spatial) scores and
``target`` is either a label map (B, 1, *spatial) or one channel per class
(B, C, *spatial).  Label values are read back to the host once (one
synchronisation) so that a label outside ``[0, C)`` is an error rather than
an all-zero one-hot row, which would silently drop the voxel from the loss;
inside ``mx.compile`` nothing can be read back and the check is skipped.
"""

from __future__ import annotations

from typing import Sequence, Union

import mlx.core as mx
import numpy as np

from .._args import FLOAT_DTYPES

Weight = Union[float, int, Sequence[float], np.ndarray, mx.array, None]


def check_input_target(input, target) -> tuple[mx.array, mx.array]:
    """``input`` as float32 and ``target`` as given, after the shape checks MONAI's losses share."""
    if not isinstance(input, mx.array):
        raise TypeError(f"`input` must be an mlx.core.array, got {type(input).__name__}")
    if not isinstance(target, mx.array):
        raise TypeError(f"`target` must be an mlx.core.array, got {type(target).__name__}")
    if input.dtype not in FLOAT_DTYPES:
        raise TypeError(f"`input` must be float32, float16 or bfloat16 scores, got {input.dtype}")
    if input.ndim < 3:
        raise ValueError(
            f"`input` must be (B, C, *spatial) with at least one spatial dimension, "
            f"got shape {tuple(input.shape)}"
        )
    if target.ndim != input.ndim:
        raise ValueError(
            f"`target` must have as many dimensions as `input` (a label map is (B, 1, *spatial)), "
            f"got input {tuple(input.shape)} and target {tuple(target.shape)}"
        )
    if target.shape[0] != input.shape[0] or target.shape[2:] != input.shape[2:]:
        raise ValueError(
            f"`target` must have the batch and spatial sizes of `input`, "
            f"got input {tuple(input.shape)} and target {tuple(target.shape)}"
        )
    if target.shape[1] not in (1, input.shape[1]):
        raise ValueError(
            f"`target` must have 1 channel (a label map) or as many channels as `input` "
            f"({input.shape[1]}), got input {tuple(input.shape)} and target {tuple(target.shape)}"
        )
    # Sums over a whole volume overflow float16; MONAI's focal loss also casts to float.
    return input.astype(mx.float32), target


def as_float(target: mx.array) -> mx.array:
    return target.astype(mx.float32)


def _host_values(summary: mx.array) -> np.ndarray | None:
    """``summary`` read back to the host, or None while ``mx.compile``/``mx.vmap`` traces (no eval allowed)."""
    try:
        return np.array(summary)
    except ValueError as err:
        # MLX 0.32's refusal to evaluate during a traced transformation.
        if "transformations" not in str(err):
            raise
        return None


def _labels(labels: mx.array, num_classes: int, name: str) -> mx.array:
    """An integer (B, 1, ...) label map, checked to lie in ``[0, num_classes)``.

    Under ``mx.compile`` the values cannot be read, so the check is skipped
    there (labels outside the range then belong to no class).
    """
    if labels.shape[1] != 1:
        raise ValueError(
            f"`{name}` must be a label map with 1 channel to be converted to classes, "
            f"got shape {tuple(labels.shape)}"
        )
    fractional = mx.any(labels != mx.floor(labels)) if mx.issubdtype(labels.dtype, mx.floating) else mx.array(False)
    labels = labels.astype(mx.int32)
    values = _host_values(mx.stack([mx.min(labels), mx.max(labels), fractional.astype(mx.int32)]))
    if values is None:
        return labels
    lo, hi, has_fraction = (int(v) for v in values)
    if has_fraction:
        raise ValueError(f"`{name}` is a label map and must hold whole numbers, got fractional values")
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"`{name}` labels must lie in [0, {num_classes - 1}] for {num_classes} classes, "
            f"got values in [{lo}, {hi}]"
        )
    return labels


def one_hot(labels: mx.array, num_classes: int, name: str = "target") -> mx.array:
    """(B, 1, *spatial) labels -> (B, num_classes, *spatial) float32 indicators."""
    labels = _labels(labels, num_classes, name)
    classes = mx.arange(num_classes, dtype=mx.int32).reshape((1, num_classes) + (1,) * (labels.ndim - 2))
    return (labels == classes).astype(mx.float32)


def class_indices(labels: mx.array, num_classes: int, name: str = "target") -> mx.array:
    """(B, 1, *spatial) labels -> (B, *spatial) int32 class indices."""
    return _labels(labels, num_classes, name)[:, 0]


def drop_ignored_labels(target: mx.array, ignore_index: int | None, num_classes: int) -> mx.array:
    """Relabel a sentinel ``ignore_index`` (outside the classes) to 0 before one-hot encoding.

    The voxels keep no weight: the ignore mask, built from the original
    target, zeroes them afterwards.
    """
    if ignore_index is None or 0 <= ignore_index < num_classes:
        return target
    return mx.where(target == ignore_index, mx.zeros_like(target), target)


def ignore_mask(target: mx.array, ignore_index: int | None) -> mx.array | None:
    """(B, 1, *spatial) float32 mask, 0 where the target says "ignore", or None.

    A label map is compared with ``ignore_index``; for one channel per class,
    an index naming a class masks that class's voxels and any other value
    masks the voxels that belong to no class.
    """
    if ignore_index is None:
        return None
    if target.shape[1] == 1:
        return (target != ignore_index).astype(mx.float32)
    if 0 <= ignore_index < target.shape[1]:
        return 1.0 - as_float(target[:, ignore_index : ignore_index + 1])
    return (mx.sum(as_float(target), axis=1, keepdims=True) > 0).astype(mx.float32)


def class_weight(weight: Weight, name: str = "weight") -> mx.array | None:
    """None, or a non-negative float32 scalar or 1-D array of per-class weights."""
    if weight is None:
        return None
    if isinstance(weight, bool):
        raise TypeError(f"`{name}` must be a number, a sequence of numbers or an array, got {weight!r}")
    if isinstance(weight, (int, float)):
        values = np.asarray(weight, dtype=np.float64)
    elif isinstance(weight, (list, tuple, np.ndarray, mx.array)):
        try:
            values = np.asarray(weight, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"`{name}` must hold numbers, got {weight!r}") from err
    else:
        raise TypeError(
            f"`{name}` must be a number, a sequence of numbers or an array, got {type(weight).__name__}"
        )
    if values.ndim > 1:
        raise ValueError(f"`{name}` must be a number or 1-D, got shape {values.shape}")
    if values.size == 0 and values.ndim == 1:
        raise ValueError(f"`{name}` must not be empty")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"`{name}` values must be finite and no less than 0, got {values.tolist()}")
    return mx.array(values.astype(np.float32))


def check_other_act(other_act, sigmoid: bool, softmax: bool) -> None:
    if other_act is not None and not callable(other_act):
        raise TypeError(f"`other_act` must be None or callable, got {type(other_act).__name__}")
    if int(sigmoid) + int(softmax) + int(other_act is not None) > 1:
        raise ValueError(
            "`sigmoid`, `softmax` and `other_act` are exclusive: set at most one, "
            f"got sigmoid={sigmoid}, softmax={softmax}, other_act={other_act!r}"
        )


def check_ignore_index(ignore_index) -> int | None:
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"`ignore_index` must be None or an int, got {ignore_index!r}")
    return ignore_index


def none_shape(per_class: mx.array, ndim: int) -> mx.array:
    """Reshape per-(batch, class) values to broadcast against (B, C, *spatial), as MONAI's 'none'."""
    return per_class.reshape(tuple(per_class.shape[:2]) + (1,) * (ndim - 2))
