"""Evaluation in steps, for the memory-bounded paths (the splitter, depthwise sums).

On the CPU, MLX allocates each operation's output when it schedules the
operation, ahead of the thread that computes it, so a lazy graph of many
large intermediates holds most of them at once: a 27-term sum of
2x64x32^3 arrays peaked at 256 MiB unfused against 48 MiB fused.  Under
``mx.grad`` or ``mx.vjp`` MLX also runs ``mx.compile``d functions unfused
(their inputs are tracers) and keeps every evaluated intermediate alive
until the transformation returns.  The memory-bounded paths therefore
evaluate in steps (:func:`eval_step`) and copy each step's result out of its
graph (:func:`detached`).
"""

from __future__ import annotations

import mlx.core as mx


def eval_step(arrays: list[mx.array], lazy: bool) -> bool:
    """Evaluate ``arrays`` now unless a transformation forbids it; returns the new ``lazy``.

    ``mx.eval`` is refused while ``mx.compile`` or ``mx.vmap`` traces a
    function; the caller then keeps building one lazy graph (``lazy`` is
    True from then on), which gives the same numbers.
    """
    if lazy:
        return True
    try:
        mx.eval(*arrays)
    except ValueError as err:
        # The message MLX 0.32 gives for eval under compile or vmap tracing.
        if "transformations" not in str(err):
            raise
        return True
    return False


def detached(a: mx.array) -> mx.array:
    """An evaluated array's values as a new array with no graph.

    Arrays made while a vjp is traced stay tracers, and ``mx.eval`` keeps a
    tracer's graph: in the split 64^3 layer every piece's padded copies and
    patches (230 MiB per 15-plane piece) stayed alive until the vjp
    returned, 1.35 GB in all.  Copying the values out drops that graph.  The
    price is that such values cannot be differentiated again.
    """
    if a.dtype == mx.bfloat16:  # no buffer-protocol format for bfloat16
        return mx.array(memoryview(a.astype(mx.float32))).astype(mx.bfloat16)
    return mx.array(memoryview(a))
