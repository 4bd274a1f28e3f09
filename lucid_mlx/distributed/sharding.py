"""Splitting a dataset or a batch between ranks.

Shards are contiguous and in rank order, so concatenating every rank's shard
gives back the input.  When the length does not divide by the number of
ranks, the first ``length % size`` ranks get one item more (NumPy's
``array_split`` rule).  A training loop must run the same number of steps on
every rank (each step's collectives pair up across ranks), so for training
data choose ``remainder="drop"`` or ``"pad"``; ``"keep"`` suits evaluation,
where :func:`lucid_mlx.distributed.reduce_sum` of the counts makes metrics
exact over uneven shards.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, TypeVar

import mlx.core as mx
import numpy as np

from .. import _args
from .group import get_group

T = TypeVar("T")
_REMAINDERS = ("keep", "drop", "pad")


def _rank_size(rank: Optional[int], size: Optional[int]) -> tuple[int, int]:
    if (rank is None) != (size is None):
        raise ValueError(f"give both `rank` and `size` or neither, got rank={rank!r}, "
                         f"size={size!r}")
    if rank is None:
        g = get_group()
        return g.rank(), g.size()
    _args.check_int(size, "size", minimum=1)
    _args.check_int(rank, "rank", minimum=0)
    if rank >= size:
        raise ValueError(f"`rank` must be < `size` (={size}), got {rank}")
    return rank, size


def shard_bounds(length: int, *, rank: Optional[int] = None,
                 size: Optional[int] = None) -> tuple[int, int]:
    """``(start, stop)`` of this rank's contiguous share of ``length`` items.

    Args:
        length (int): Number of items to share.
        rank, size (int, optional): Default: this process's rank and the group size.

    Example:
        >>> [shard_bounds(5, rank=r, size=2) for r in range(2)]
        [(0, 3), (3, 5)]
    """
    _args.check_int(length, "length", minimum=0)
    rank, size = _rank_size(rank, size)
    base, extra = divmod(length, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def shard_indices(length: int, *, remainder: str = "keep", rank: Optional[int] = None,
                  size: Optional[int] = None) -> range | list[int]:
    """The indices of the items this rank takes out of ``length``.

    Args:
        length (int): Number of items.
        remainder (str): What to do with ``length % size`` items:
            ``"keep"`` gives them to the first ranks (uneven shards);
            ``"drop"`` leaves the last ones out, every rank taking
            ``length // size``; ``"pad"`` repeats items from the start,
            every rank taking ``ceil(length / size)``, as PyTorch's
            ``DistributedSampler``. Default: ``"keep"``.
        rank, size (int, optional): Default: this process's rank and the group size.

    Returns:
        range or list[int]: a ``range`` except when ``"pad"`` wraps around.

    Example:
        >>> [list(shard_indices(5, remainder="pad", rank=r, size=2)) for r in range(2)]
        [[0, 1, 2], [3, 4, 0]]
    """
    if not isinstance(remainder, str) or remainder not in _REMAINDERS:
        raise ValueError(f"`remainder` must be one of {_REMAINDERS}, got {remainder!r}")
    _args.check_int(length, "length", minimum=0)
    rank, size = _rank_size(rank, size)
    if remainder == "keep":
        return range(*shard_bounds(length, rank=rank, size=size))
    per_rank = length // size if remainder == "drop" else -(-length // size)
    start = rank * per_rank
    if length == 0 or start + per_rank <= length:
        return range(start, start + per_rank)
    return [i % length for i in range(start, start + per_rank)]


def shard_sequence(items: Sequence[T], *, remainder: str = "keep", rank: Optional[int] = None,
                   size: Optional[int] = None) -> Sequence[T]:
    """This rank's share of a sequence (a list of files, a dataset, an index array).

    Slices keep the input's type (``list``, ``tuple``, ``range``, NumPy or
    MLX array); when ``remainder="pad"`` wraps around, the result is a list.

    Args:
        items (Sequence): Anything with ``len`` and integer indexing and slicing.
        remainder (str): ``"keep"``, ``"drop"`` or ``"pad"``, see
            :func:`shard_indices`. Default: ``"keep"``.
        rank, size (int, optional): Default: this process's rank and the group size.

    Example:
        >>> files = sorted(glob.glob("scans/*.nii.gz"))
        >>> for path in shard_sequence(files, remainder="pad"): ...
    """
    try:
        length = len(items)
    except TypeError:
        raise TypeError(f"`items` must be a sequence with a length, got "
                        f"{type(items).__name__}") from None
    indices = shard_indices(length, remainder=remainder, rank=rank, size=size)
    if isinstance(indices, range):
        return items[indices.start:indices.stop]
    return [items[i] for i in indices]


def shard_batch(batch: Any, *, axis: int = 0, rank: Optional[int] = None,
                size: Optional[int] = None) -> Any:
    """This rank's contiguous part of a global batch, uneven splits allowed.

    Args:
        batch: An ``mx.array`` or NumPy array, or a tuple, list or dict of
            them with the same length along ``axis`` (inputs and targets).
        axis (int): The batch axis. Default: ``0``.
        rank, size (int, optional): Default: this process's rank and the group size.

    Returns:
        The same structure holding this rank's slices.

    With uneven shards, make each rank's loss its sum over its items times
    ``size / global_count``: after ``nn.average_gradients`` divides by
    ``size``, the step follows the gradient of the global batch's mean
    loss, as one process would.

    Example:
        >>> x, y = shard_batch((images, labels))  # 8 samples on 2 ranks: 4 each
    """
    _args.check_int(axis, "axis")
    leaves = list(batch.values()) if isinstance(batch, dict) else (
        list(batch) if isinstance(batch, (tuple, list)) else [batch])
    if not leaves:
        raise ValueError("`batch` is empty: give an array or a tuple, list or dict of arrays")
    lengths = set()
    for leaf in leaves:
        if not isinstance(leaf, (mx.array, np.ndarray)):
            raise TypeError(f"`batch` must hold mlx or NumPy arrays, got {type(leaf).__name__}")
        if not -leaf.ndim <= axis < leaf.ndim:
            raise ValueError(f"`axis` (={axis}) is out of range for an array of shape "
                             f"{tuple(leaf.shape)}")
        lengths.add(leaf.shape[axis])
    if len(lengths) != 1:
        raise ValueError(f"the arrays in `batch` differ in length along axis {axis}: "
                         f"{sorted(lengths)}")
    start, stop = shard_bounds(lengths.pop(), rank=rank, size=size)

    def take(leaf):
        index = [slice(None)] * leaf.ndim
        index[axis] = slice(start, stop)
        return leaf[tuple(index)]

    if isinstance(batch, dict):
        return {k: take(v) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(take(v) for v in batch)
    return take(batch)
