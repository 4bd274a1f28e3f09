"""Making every rank hold the same model, and checking that they do.

Data-parallel training keeps the ranks identical only if they start
identical and apply identical updates.  Seeding every rank alike gives the
same initial weights, but nothing warns when that fails (a rank-dependent
seed, a checkpoint loaded on one rank only, collectives issued in different
orders, which MLX sums silently wrong).  :func:`broadcast_parameters` makes
the start identical; :func:`parameters_in_sync` checks it cheaply at any
point.
"""

from __future__ import annotations

import hashlib
from typing import Any, Optional

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from .. import _args
from .failfast import deadline
from .group import Group, get_group

# Odd 63-bit multiplier (from the golden ratio) that makes the checksum depend on positions.
_MIX = 0x1E3779B97F4A7C15


def _flat(tree: Any) -> list[tuple[str, mx.array]]:
    if isinstance(tree, nn.Module):
        tree = tree.parameters()
    if isinstance(tree, mx.array):
        return [("", tree)]
    if not isinstance(tree, (dict, list, tuple)):
        raise TypeError(f"expected an mlx.nn.Module, an mlx.core.array or a dict, list or tuple "
                        f"of arrays, got {type(tree).__name__}")
    flat = tree_flatten(tree)
    for name, value in flat:
        if not isinstance(value, mx.array):
            raise TypeError(f"`{name}` is a {type(value).__name__}, not an mlx.core.array")
    return flat


def _gather_rows(row: mx.array, g: Group, what: str) -> np.ndarray:
    """Every rank's ``row`` (uint64) as a (size, len) NumPy array."""
    with deadline(None, what):
        return np.array(mx.distributed.all_gather(row[None], group=g, stream=mx.cpu))


def _structure_row(flat: list[tuple[str, mx.array]]) -> mx.array:
    text = "\n".join(f"{name}:{tuple(a.shape)}:{a.dtype}" for name, a in flat)
    digest = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    return mx.array([len(flat), digest >> 1], dtype=mx.uint64)


def _check_same_structure(flat, g: Group, what: str) -> None:
    """Raise on every rank alike unless all ranks hold the same names, shapes and dtypes.

    The collectives that follow need equal sizes on every rank; with
    different sizes they would hang or mix up data.
    """
    rows = _gather_rows(_structure_row(flat), g, what)
    if not (rows == rows[0]).all():
        differing = [r for r in range(len(rows)) if not (rows[r] == rows[0]).all()]
        raise RuntimeError(f"{what}: the ranks hold different sets of arrays (names, shapes or "
                           f"dtypes): ranks {differing} differ from rank 0 ({len(flat)} arrays "
                           f"here, on rank {g.rank()})")


def broadcast(tree: Any, root: int = 0, *, group: Optional[Group] = None) -> Any:
    """Rank ``root``'s values of a tree of arrays, on every rank.

    MLX has no broadcast primitive: each dtype's arrays are packed into one
    buffer, which is ``all_sum``-ed with zeros on every rank but ``root``,
    so the values arrive bit for bit (a ``-0.0`` becomes ``0.0``).

    Args:
        tree: An ``mx.array`` or a dict, list or tuple of them, with the same
            names, shapes and dtypes on every rank.
        root (int): The rank whose values are kept. Default: ``0``.
        group (Group, optional): Default: the global group.

    Returns:
        The same structure holding root's values (evaluated).
    """
    g = get_group(group)
    _args.check_int(root, "root", minimum=0)
    if root >= g.size():
        raise ValueError(f"`root` must be < the group size (={g.size()}), got {root}")
    flat = _flat(tree)
    if g.size() == 1:
        return tree
    _check_same_structure(flat, g, "broadcast")
    is_root = g.rank() == root
    out = [None] * len(flat)
    by_dtype: dict[mx.Dtype, list[int]] = {}
    for i, (_, a) in enumerate(flat):
        by_dtype.setdefault(a.dtype, []).append(i)
    with deadline(None, "broadcast"):
        for dtype, indices in by_dtype.items():
            # bool travels as uint8: a sum of bools is not an arithmetic sum on every backend.
            wire = mx.uint8 if dtype == mx.bool_ else dtype
            buf = mx.concatenate([flat[i][1].reshape(-1).astype(wire) for i in indices])
            if not is_root:
                buf = mx.zeros_like(buf)
            buf = mx.distributed.all_sum(buf, group=g, stream=mx.cpu)
            offset = 0
            for i in indices:
                a = flat[i][1]
                out[i] = buf[offset:offset + a.size].reshape(a.shape).astype(dtype)
                offset += a.size
        mx.eval(out)
    if isinstance(tree, mx.array):
        return out[0]
    return tree_unflatten([(name, a) for (name, _), a in zip(flat, out)])


def broadcast_parameters(model: nn.Module, root: int = 0, *,
                         group: Optional[Group] = None) -> nn.Module:
    """Copy rank ``root``'s parameters and buffers into ``model`` on every rank.

    Every array of the model moves, frozen ones included (running
    statistics, ``num_batches_tracked``).  Call it after building or
    loading the model and before creating the optimizer state.

    Args:
        model (Module): The same architecture on every rank.
        root (int): The rank whose values are kept. Default: ``0``.
        group (Group, optional): Default: the global group.

    Returns:
        Module: ``model``, updated in place.

    Example:
        >>> model = broadcast_parameters(UNet3d(...))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be an mlx.nn.Module, got {type(model).__name__}")
    if get_group(group).size() > 1:
        model.update(broadcast(model.parameters(), root, group=group))
    return model


def _checksum(a: mx.array) -> mx.array:
    """Two uint64 sums of the bits of ``a``, plain and position-weighted (exact, order-free)."""
    a = a.reshape(-1)
    if a.dtype == mx.bool_:
        bits = a.astype(mx.uint64)
    else:
        unsigned = {1: mx.uint8, 2: mx.uint16, 4: mx.uint32, 8: mx.uint64}[a.dtype.size]
        bits = mx.view(a, unsigned).astype(mx.uint64)
    weights = mx.arange(1, a.size + 1).astype(mx.uint64) * mx.array(_MIX, dtype=mx.uint64)
    return mx.stack([bits.sum(), (bits * weights).sum()])


def _differing(tree: Any, group: Optional[Group]) -> list[str]:
    g = get_group(group)
    flat = _flat(tree)
    if g.size() == 1:
        return []
    _check_same_structure(flat, g, "parameters_in_sync")
    if not flat:
        return []
    with mx.stream(mx.cpu):
        row = mx.concatenate([_checksum(a) for _, a in flat])
    rows = _gather_rows(row, g, "parameters_in_sync").reshape(g.size(), len(flat), 2)
    same = (rows == rows[0]).all(axis=(0, 2))
    return [name for (name, _), ok in zip(flat, same) if not ok]


def parameters_in_sync(model: Any, *, group: Optional[Group] = None) -> bool:
    """Whether every rank holds bit-identical parameters and buffers.

    Each rank reduces every array to an exact integer checksum of its bits
    (sensitive to positions), and the checksums are gathered: two small
    collectives and one pass over the weights, no weights sent.  The answer
    is the same on every rank, so it is safe to branch on.

    Args:
        model: An ``mlx.nn.Module`` (all its arrays, frozen ones included) or
            a tree of arrays (an optimizer's ``state``).
        group (Group, optional): Default: the global group.

    Returns:
        bool: ``True`` at size 1.

    Raises:
        RuntimeError: The ranks hold different sets of arrays.

    Example:
        >>> if not parameters_in_sync(model):
        ...     raise RuntimeError("ranks diverged")
    """
    return not _differing(model, group)


def check_parameters_in_sync(model: Any, *, group: Optional[Group] = None) -> None:
    """Raise ``RuntimeError`` on every rank, naming the arrays that differ, unless in sync.

    See :func:`parameters_in_sync`.
    """
    differing = _differing(model, group)
    if differing:
        shown = ", ".join(differing[:10]) + (", ..." if len(differing) > 10 else "")
        raise RuntimeError(f"the ranks hold different values of {len(differing)} arrays: "
                           f"{shown}")
