"""Doing something once for the whole job: on rank 0, after every rank is ready.

Two traps make "``if rank() == 0: save(model)``" unsafe in MLX.  Arrays are
lazy: after a data-parallel step the weights are still a graph holding an
``all_sum``, and evaluating it on rank 0 alone waits forever for the other
ranks.  And if rank 0 fails while saving, the others carry on (or wait in
their next collective) without knowing.  The helpers here first evaluate
every array they are given on every rank, then run the action on rank 0,
then share its outcome with every rank.
"""

from __future__ import annotations

import builtins
from typing import Any, Callable, Optional, TypeVar

import mlx.core as mx
import mlx.nn as nn

from .failfast import deadline
from .group import Group, get_group

R = TypeVar("R")


def _arrays(value: Any, found: list[mx.array]) -> None:
    if isinstance(value, mx.array):
        found.append(value)
    elif isinstance(value, nn.Module):
        _arrays(value.parameters(), found)
    elif isinstance(value, dict):
        for v in value.values():
            _arrays(v, found)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _arrays(v, found)


def _evaluate_everywhere(*values: Any) -> None:
    found: list[mx.array] = []
    for value in values:
        _arrays(value, found)
    if found:
        with deadline(None, "evaluating arrays before rank 0 uses them"):
            mx.eval(found)


def run_on_main(fn: Callable[..., R], *args: Any, group: Optional[Group] = None,
                **kwargs: Any) -> Optional[R]:
    """Call ``fn(*args, **kwargs)`` on rank 0 only; every rank returns when it is done.

    Every ``mx.array`` in the arguments (and the parameters of any
    ``mlx.nn.Module`` among them, or bound to ``fn`` as its ``self``) is
    evaluated on every rank first, so that pending collectives complete.
    Then rank 0 runs ``fn`` while the others wait, and the outcome is
    shared: if ``fn`` raised, rank 0 re-raises its exception and every
    other rank raises ``RuntimeError``, so no rank goes on alone.  ``fn``
    itself must not use collectives.

    Args:
        fn (callable): The action, e.g. ``lucid_mlx.save_torch_state_dict``
            or ``model.save_weights``.
        *args, **kwargs: Passed to ``fn``.
        group (Group, optional, keyword-only): Default: the global group.

    Returns:
        ``fn``'s result on rank 0, ``None`` on the other ranks.

    Example:
        >>> run_on_main(lucid_mlx.save_torch_state_dict, model, "checkpoint.pt")
        >>> run_on_main(model.save_weights, "weights.safetensors")
    """
    if not callable(fn):
        raise TypeError(f"`fn` must be callable, got {type(fn).__name__}")
    g = get_group(group)
    _evaluate_everywhere(getattr(fn, "__self__", None), args, kwargs)
    result, error = None, None
    if g.rank() == 0:
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # shared with the other ranks below, then re-raised
            error = exc
    if g.size() > 1:
        with deadline(None, f"waiting for rank 0 to run {getattr(fn, '__name__', 'fn')}"):
            failed = mx.distributed.all_sum(mx.array(float(error is not None)), group=g,
                                            stream=mx.cpu).item()
    else:
        failed = error is not None
    if error is not None:
        raise error
    if failed:
        raise RuntimeError(f"run_on_main: {getattr(fn, '__qualname__', fn)!s} raised an "
                           f"exception on rank 0 (see rank 0's output)")
    return result


def main_print(*args: Any, group: Optional[Group] = None, **kwargs: Any) -> None:
    """``print`` on rank 0 only, flushed; call it on every rank.

    Array arguments are evaluated on every rank first (see
    :func:`run_on_main` for why).

    Example:
        >>> main_print(f"epoch {epoch}: loss {reduce_mean(loss.item()):.4f}")
    """
    _evaluate_everywhere(args)
    if get_group(group).rank() == 0:
        kwargs.setdefault("flush", True)
        builtins.print(*args, **kwargs)
