"""Sums and means of metrics across ranks.

Every value of a call travels in one ``all_sum`` of float64 on the CPU
stream: float32 would round voxel counts above 2**24, and a float64 sum
gives the same answer on every rank.  The results are plain Python floats
(or arrays of the input's dtype), identical on every rank.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, Optional

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from .failfast import deadline
from .group import Group, get_group


def _leaves(values: Any) -> tuple[list[tuple[str, Any]], bool]:
    if isinstance(values, (dict, list, tuple)):
        flat, is_tree = tree_flatten(values), True
    else:
        flat, is_tree = [("", values)], False
    for name, value in flat:
        if isinstance(value, bool) or not isinstance(value, (Real, mx.array, np.ndarray)):
            raise TypeError(f"metric values must be numbers or arrays, got {value!r} "
                            f"({type(value).__name__})" + (f" at `{name}`" if name else ""))
    return flat, is_tree


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, mx.array) and value.dtype == mx.bfloat16:
        value = value.astype(mx.float32)  # NumPy has no bfloat16
    return np.asarray(value, dtype=np.float64)


def _all_sum_float64(flat: list[tuple[str, Any]], extra: list[float],
                     g: Group) -> tuple[list[np.ndarray], np.ndarray]:
    parts = [_to_numpy(v).reshape(-1) for _, v in flat]
    buf = np.concatenate(parts + [np.asarray(extra, dtype=np.float64)])
    if g.size() > 1:
        with deadline(None, "a metric reduction"):
            # mx.array(float64 NumPy) would silently make float32.
            total = mx.distributed.all_sum(mx.array(buf, dtype=mx.float64), group=g,
                                           stream=mx.cpu)
            buf = np.array(total)
    sums, offset = [], 0
    for part in parts:
        sums.append(buf[offset:offset + part.size])
        offset += part.size
    return sums, buf[offset:]


def _rebuild(flat, sums, is_tree):
    out = []
    for (name, value), total in zip(flat, sums):
        if isinstance(value, mx.array):
            out.append((name, mx.array(total.reshape(value.shape)).astype(value.dtype)))
        elif isinstance(value, np.ndarray):
            out.append((name, total.reshape(value.shape).astype(value.dtype)))
        else:
            out.append((name, float(total[0])))
    return tree_unflatten(out) if is_tree else out[0][1]


def reduce_sum(values: Any, *, group: Optional[Group] = None) -> Any:
    """The sum over all ranks of a metric or a tree of metrics.

    Args:
        values: A number, an ``mx.array`` or NumPy array, or a dict, list or
            tuple of them, with the same structure and shapes on every rank.
        group (Group, optional): Default: the global group.

    Returns:
        The same structure: Python floats for numbers, arrays of the input's
        dtype for arrays (evaluated, cast back from float64).

    Example:
        >>> totals = reduce_sum({"correct": correct, "voxels": voxels})
        >>> accuracy = totals["correct"] / totals["voxels"]
    """
    flat, is_tree = _leaves(values)
    sums, _ = _all_sum_float64(flat, [], get_group(group))
    return _rebuild(flat, sums, is_tree)


def reduce_mean(values: Any, count: Optional[float] = None, *,
                group: Optional[Group] = None) -> Any:
    """The mean over all ranks of a metric or a tree of metrics.

    Without ``count`` every rank weighs the same.  With uneven shards give
    each rank's number of items as ``count`` and each value as the mean over
    those items: the result is then the mean over all items, as one process
    would compute it.

    Args:
        values: As for :func:`reduce_sum`.
        count (float, optional): This rank's weight, e.g. its number of
            validation volumes; ``0`` for a rank without items. Default: ``None``.
        group (Group, optional): Default: the global group.

    Returns:
        The same structure as ``values``.

    Raises:
        TypeError: ``count`` is not a number.
        ValueError: ``count`` is negative, or zero on every rank.

    Example:
        >>> mean_dice = reduce_mean(local_mean_dice, count=len(my_volumes))
    """
    flat, is_tree = _leaves(values)
    g = get_group(group)
    if count is None:
        sums, _ = _all_sum_float64(flat, [], g)
        return _rebuild(flat, [s / g.size() for s in sums], is_tree)
    if isinstance(count, bool) or not isinstance(count, Real):
        raise TypeError(f"`count` must be a number or None, got {count!r} "
                        f"({type(count).__name__})")
    if not count >= 0:  # also refuses NaN
        raise ValueError(f"`count` must be >= 0, got {count!r}")
    # A rank without items may hold a NaN mean; it must not reach the sum.
    weighted = [(name, _to_numpy(v) * count if count else np.zeros_like(_to_numpy(v)))
                for name, v in flat]
    sums, (total,) = _all_sum_float64(weighted, [float(count)], g)
    if total == 0:
        raise ValueError("reduce_mean: `count` is 0 on every rank, so there is nothing to "
                         "average")
    return _rebuild(flat, [s / total for s in sums], is_tree)
