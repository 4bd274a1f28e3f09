"""The correct ways to run one convolution call, per role, and how one is run on its own.

A call has two roles, each chosen on its own (by the default rule, or by
measurement, :mod:`.autotune`):

* ``forward``: the output;
* ``backward``: both first-order gradients for one cotangent.  They are one
  role, not two, because that is the unit the code runs: a conv3d's vjp
  returns both gradients from one call of ``path.grads`` (the input
  gradient of a network's first layer is computed although nothing needs
  it), and the splitter cuts one backward piece for both.  The
  second-order maps (input gradient alone, weight gradient alone, see
  :mod:`.derivatives`) follow the backward choice.

A :class:`Candidate` is a path and, when the call runs piece by piece, the
pieces.  Within a role every candidate computes the same map, so choosing
among them changes speed and rounding, never what is computed.  When a role
fits the workspace budget it runs whole: pieces exist to bound memory, a
call that fits would only add per-piece evaluations and copies.  When it
does not fit, the candidates are the pieces
sized for the budget and for :data:`BUDGET_SHARES` of it (smaller pieces,
so never above the budget): which piece size is fastest depends on the
device's caches and launch overheads (on the CPU here the 2x64x32^3
grouped layer's backward took 7.0 s in 5-plane pieces, 8.6 s in 14-plane
ones and 10.8 s plane by plane).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

import mlx.core as mx

from . import pieces, plan

if TYPE_CHECKING:
    from .._args import Pairs, Triple
    from .dispatch import ConvPath, ConvPlan

ROLES = ("forward", "backward")
# Piece sizes offered to autotuning when a role exceeds the budget: the
# pieces fitted to limit // share for each share.
BUDGET_SHARES = (1, 2, 4)


class Candidate(NamedTuple):
    """One way to run a role: ``path``, whole (``pieces`` None) or in ``pieces``.

    ``input_slabs`` (backward role, stride-1 dense pieces only) are the
    pieces of the input gradient taken by input slabs, see :mod:`.pieces`.
    """

    path: ConvPath
    pieces: plan.Pieces | None = None
    input_slabs: plan.Pieces | None = None

    @property
    def label(self) -> str:
        """A stable name: ``'depthwise'``, ``'dense in 1x8 pieces'`` (samples x planes)."""
        if self.pieces is None:
            return self.path.name
        text = f"{self.path.name} in {self.pieces.samples}x{self.pieces.planes} pieces"
        if self.input_slabs is not None:
            text += f", input gradient in {self.input_slabs.samples}x{self.input_slabs.planes} slabs"
        return text


class Call(NamedTuple):
    """The shapes and geometry of one call: everything a candidate depends on."""

    x_shape: tuple
    w_shape: tuple
    out_size: Triple
    stride: Triple
    pads: Pairs
    dilation: Triple
    groups: int

    @property
    def geometry(self) -> tuple:
        return (self.stride, self.pads, self.dilation, self.groups)


def _fit(path: ConvPath, call: Call, x_shape, w_shape, size, stride, backward: bool, itemsize: int,
         limit: int | None) -> plan.Pieces:
    own = path.workspace(x_shape, w_shape, size, stride, call.dilation, backward, itemsize)
    return plan.fit(x_shape, w_shape, size, stride, call.dilation, own, itemsize, limit, backward)


def _role_candidate(path: ConvPath, call: Call, role: str, itemsize: int, limit: int | None) -> Candidate:
    """``path`` for ``role`` with the pieces that fit ``limit`` (None pieces: it fits whole)."""
    x_shape, w_shape, out = call.x_shape, call.w_shape, call.out_size
    backward = role == "backward"
    fitted = _fit(path, call, x_shape, w_shape, out, call.stride, backward, itemsize, limit)
    if plan.covers(fitted, x_shape[0], out[0]):
        return Candidate(path)
    slabs = None
    if backward and path.grad_input_by_slabs is not None and call.stride == (1, 1, 1) and min(
            min(p) for p in plan.transposed_pads(w_shape, call.pads, call.dilation)) >= 0:
        # The input gradient as a convolution of the cotangent: its shapes.
        transposed_w = (x_shape[1], w_shape[0], *w_shape[2:])
        slabs = _fit(path, call, (x_shape[0], w_shape[0], *out), transposed_w, tuple(x_shape[2:]),
                     (1, 1, 1), True, itemsize, limit)
    return Candidate(path, fitted, slabs)


def for_role(paths: Sequence[ConvPath], call: Call, role: str, itemsize: int, limit: int | None,
             every: bool = True) -> list[Candidate]:
    """The candidates of ``role``, the default rule's first.

    ``paths`` are the correct paths for the call, the default first.  With
    ``every`` False only the default: the first path within ``limit``.
    """
    if role not in ROLES:
        raise ValueError(f"`role` must be one of {ROLES}, got {role!r}")
    result: list[Candidate] = []
    for path in paths if every else paths[:1]:
        whole = _role_candidate(path, call, role, itemsize, limit)
        options = [whole]
        if every and whole.pieces is not None:
            options += [_role_candidate(path, call, role, itemsize, limit // share)
                        for share in BUDGET_SHARES[1:]]
        for option in options:
            if option not in result:
                result.append(option)
    return result


def run_forward(candidate: Candidate, x: mx.array, w: mx.array, call: Call) -> mx.array:
    """The output of ``candidate`` (forward role) on ``x`` and ``w``."""
    if candidate.pieces is None:
        return candidate.path.forward(x, w, *call.geometry)
    return pieces.conv3d_in_pieces(assemble(candidate, Candidate(candidate.path), call), x, w,
                                   *call.geometry)


def run_backward(candidate: Candidate, x: mx.array, w: mx.array, cot: mx.array,
                 call: Call) -> tuple[mx.array, mx.array]:
    """Input and weight gradients of ``candidate`` (backward role) for cotangent ``cot``."""
    if candidate.pieces is None:
        return candidate.path.grads(x, w, cot, *call.geometry)
    return pieces.conv3d_grads_in_pieces(assemble(Candidate(candidate.path), candidate, call), x, w,
                                         cot, *call.geometry)


def trial(role: str, call: Call, dtype: mx.Dtype,
          w_dtype: mx.Dtype | None = None) -> Callable[[Candidate], Callable[[], object]]:
    """For timing: a function giving, per candidate, one run of ``role`` on fresh inputs.

    The inputs are random arrays of the call's shapes and dtypes (the
    weight's is ``w_dtype``, default ``dtype``), made once and shared by
    the candidates: timing never touches the caller's arrays
    or graph, so it cannot change what the call returns (and it works
    inside ``mx.grad``, where the caller's arrays are tracers).  They cost
    one more input, weight and (backward) output in memory while timing.
    """
    fresh: dict[str, mx.array] = {}

    def inputs() -> dict[str, mx.array]:
        if not fresh:
            keys = mx.random.split(mx.random.key(0), 3)
            n = call.x_shape[0]
            fresh["x"] = mx.random.normal(call.x_shape, key=keys[0]).astype(dtype)
            fresh["w"] = mx.random.normal(call.w_shape, key=keys[1]).astype(w_dtype or dtype)
            if role == "backward":
                out_shape = (n, call.w_shape[0], *call.out_size)
                fresh["cot"] = mx.random.normal(out_shape, key=keys[2]).astype(dtype)
            mx.eval(*fresh.values())
        return fresh

    def step(candidate: Candidate) -> Callable[[], object]:
        a = inputs()
        if role == "forward":
            return lambda: run_forward(candidate, a["x"], a["w"], call)
        return lambda: run_backward(candidate, a["x"], a["w"], a["cot"], call)

    return step


def combined(forward: ConvPath, backward: ConvPath) -> ConvPath:
    """One path whose output is ``forward``'s and whose derivatives are ``backward``'s."""
    if forward is backward:
        return forward
    from .derivatives import convolve
    from .dispatch import ConvPath

    def run(x, w, *geometry):
        return convolve(x, w, geometry, forward.forward, backward.grad_input, backward.grad_weight,
                        backward.grads)

    def workspace(x_shape, w_shape, out_size, stride, dilation, is_backward, itemsize):
        path = backward if is_backward else forward
        return path.workspace(x_shape, w_shape, out_size, stride, dilation, is_backward, itemsize)

    return ConvPath(f"{forward.name} forward, {backward.name} backward", run, backward.grads,
                    backward.grad_input, backward.grad_weight, workspace, backward.grad_input_by_slabs)


def assemble(forward: Candidate, backward: Candidate, call: Call) -> ConvPlan:
    """The plan that runs ``forward`` for the output and ``backward`` for the gradients."""
    from .dispatch import ConvPlan

    path = combined(forward.path, backward.path)
    labels = (forward.label, backward.label)
    if forward.pieces is None and backward.pieces is None:
        return ConvPlan(path, call.out_size, None, labels)
    whole = plan.Pieces(call.x_shape[0], call.out_size[0])
    split = plan.Split(forward.pieces or whole, backward.pieces or whole, backward.input_slabs)
    return ConvPlan(path, call.out_size, split, labels)
