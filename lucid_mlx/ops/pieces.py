"""Run one conv3d piece by piece, as its :class:`~.dispatch.ConvPlan` says.

Splitting the lazy graph alone does not bound memory: MLX's scheduler
allocates every piece's unfold buffer before the first one finishes (16
slabs of a 1x32x64^3 k=3 layer still peaked at 1.0 GB forward).  So the
pieces run inside an ``mx.custom_function`` whose forward and vjp evaluate
piece by piece: forward peak 121 MiB instead of 963 MiB at the same speed.
The gradients sum per-piece weight gradients in float32, each piece's taken
by the plan's path (``path.grads``).  For a stride-1 dense convolution it
computes the input gradient by input slabs, each a convolution of a
cotangent window with the flipped kernel (:func:`_vjp_by_input_slabs`; its
time and peak against ``mx.conv3d`` are the 1x32x64x64x64 rows of the
README's benchmark table); otherwise it adds the overlapping input-gradient
halos of the pieces (1.13x the time there, as each 8-plane piece recomputes
2 halo planes).

``mx.eval`` is refused while ``mx.compile`` (or ``mx.vmap``) traces a
function.  Then the pieces stay in one lazy graph: the results are the same
but the peak is only what MLX's scheduler gives (``mx.set_memory_limit``
makes it wait for running work when active memory passes the limit: 350
MiB instead of 1011 MiB for 16 lazy slabs with a 300 MiB limit).

Each piece's values are copied out of its graph (see :mod:`.stepwise`), so
the forward, the input gradient and the weight gradient are three custom
functions whose derivatives are written in terms of one another
(:mod:`.derivatives`): second derivatives are right and memory-bounded too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mlx.core as mx

from .._args import Pairs, Triple
from . import plan
from .derivatives import RawConv, differentiable
from .stepwise import detached, eval_step

if TYPE_CHECKING:
    from .dispatch import ConvPlan


def conv3d_in_pieces(conv_plan: ConvPlan, x: mx.array, w: mx.array, stride: Triple, pads: Pairs,
                     dilation: Triple, groups: int) -> mx.array:
    """The convolution of ``conv_plan.path``, computed piece by piece within its split."""
    run = _Pieces(conv_plan, x.shape, w.shape, stride, pads, dilation, groups)
    return differentiable(RawConv(
        forward=run.forward,
        grad_input=lambda g, w: run.by_output_slabs(None, w, g)[0] if conv_plan.split.input_slabs
        is None else run.grad_input_by_slabs(g, w),
        grad_weight=lambda x, g: run.by_output_slabs(x, None, g)[1],
        grads=run.grads,
    ))(x, w)


def conv3d_grads_in_pieces(conv_plan: ConvPlan, x: mx.array, w: mx.array, cot: mx.array,
                           stride: Triple, pads: Pairs, dilation: Triple,
                           groups: int) -> tuple[mx.array, mx.array]:
    """Both gradients for cotangent ``cot``, piece by piece: what the vjp of
    :func:`conv3d_in_pieces` computes (autotuning times it on its own)."""
    run = _Pieces(conv_plan, x.shape, w.shape, stride, pads, dilation, groups)
    return run.grads(x, w, cot)


class _Pieces:
    """The pieces of one convolution: forward, and gradients by output or input slabs."""

    def __init__(self, conv_plan: ConvPlan, x_shape, w_shape, stride: Triple, pads: Pairs,
                 dilation: Triple, groups: int):
        self.path, self.out_size, self.split = conv_plan.path, conv_plan.out_size, conv_plan.split
        self.x_shape, self.w_shape = tuple(x_shape), tuple(w_shape)
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups
        # What slabs of output depth read: depth, KD, stride, low pad, dilation.
        self.geometry = (x_shape[2], w_shape[2], stride[0], pads[0][0], dilation[0])

    def _pads(self, slab: plan.Slab) -> Pairs:
        return ((slab.pad_lo, slab.pad_hi), *self.pads[1:])  # type: ignore[return-value]

    def _args(self, slab: plan.Slab):
        return (self.stride, self._pads(slab), self.dilation, self.groups)

    def forward(self, x: mx.array, w: mx.array) -> mx.array:
        n, c_out, out_d = x.shape[0], w.shape[0], self.out_size[0]
        pieces = self.split.forward
        lazy, chunks_out = False, []
        for n0, n1 in plan.chunks(n, pieces.samples):
            parts = []
            for slab in plan.slabs(out_d, pieces.planes, *self.geometry):
                if slab.b <= slab.a:  # the slab sees only padding
                    parts.append(mx.zeros((n1 - n0, c_out, slab.d1 - slab.d0, *self.out_size[1:]),
                                          dtype=x.dtype))
                    continue
                parts.append(self.path.forward(x[n0:n1, :, slab.a:slab.b], w, *self._args(slab)))
                lazy = eval_step(parts[-1:], lazy)
            chunks_out.append(mx.concatenate(parts, axis=2))
        return mx.concatenate(chunks_out, axis=0)

    def grads(self, x: mx.array, w: mx.array, cot: mx.array) -> tuple[mx.array, mx.array]:
        if self.split.input_slabs is not None:
            return self.grad_input_by_slabs(cot, w), self.by_output_slabs(x, None, cot)[1]
        return self.by_output_slabs(x, w, cot)

    def by_output_slabs(self, x: mx.array | None, w: mx.array | None, cot: mx.array):
        """(input gradient, weight gradient) summed over output slabs; ``None`` for the
        gradient whose other operand is not given."""
        n, depth, out_d = self.x_shape[0], self.x_shape[2], self.out_size[0]
        c_in, plane_shape = self.x_shape[1], self.x_shape[3:]
        want_gx, want_gw = w is not None, x is not None
        dtype = (x if x is not None else w).dtype
        lazy = False
        gw = mx.zeros(self.w_shape, dtype=mx.float32) if want_gw else None
        gx_chunks = []
        for n0, n1 in plan.chunks(n, self.split.backward.samples):
            nb = n1 - n0

            def zeros(planes: int) -> mx.array:
                return mx.zeros((nb, c_in, planes, *plane_shape), dtype=mx.float32)

            # ``acc`` holds the input gradient of planes [acc_start, ...) that
            # later pieces may still add to; pieces come by increasing window
            # start and end, so planes before a piece's start are final.
            done, acc, acc_start = [], None, 0
            for slab in plan.slabs(out_d, self.split.backward.planes, *self.geometry):
                a, b = slab.a, slab.b
                if b <= a:
                    continue
                fresh = len(done)
                cots = cot[n0:n1, :, slab.d0:slab.d1]
                xs_shape = (nb, c_in, b - a, *plane_shape)
                if want_gx and want_gw:
                    gxs, gws = self.path.grads(x[n0:n1, :, a:b], w, cots, *self._args(slab))
                elif want_gx:
                    gxs, gws = self.path.grad_input(cots, w, xs_shape, *self._args(slab)), None
                else:
                    gxs = None
                    gws = self.path.grad_weight(x[n0:n1, :, a:b], cots, self.w_shape, *self._args(slab))
                if gws is not None:
                    gw = gw + gws.astype(mx.float32)
                if gxs is not None:
                    gxs = gxs.astype(mx.float32)
                    if acc is None:
                        done += [zeros(a)] if a else []
                    else:
                        acc_end = acc_start + acc.shape[2]
                        if a >= acc_end:
                            done += [acc, zeros(a - acc_end)] if a > acc_end else [acc]
                        else:
                            done.append(acc[:, :, : a - acc_start])
                            overlap = acc_end - a
                            gxs = mx.concatenate(
                                [gxs[:, :, :overlap] + acc[:, :, a - acc_start:], gxs[:, :, overlap:]],
                                axis=2)
                    acc, acc_start = gxs, a
                live = [a_ for a_ in (gw, acc) if a_ is not None]
                lazy = eval_step(live + done, lazy)
                if not lazy:
                    gw = None if gw is None else detached(gw)
                    acc = None if acc is None else detached(acc)
                    done[fresh:] = [detached(part) for part in done[fresh:]]
            if not want_gx:
                continue
            if acc is None:
                gx_chunks.append(zeros(depth))
                continue
            done.append(acc)
            tail = depth - (acc_start + acc.shape[2])
            if tail:
                done.append(zeros(tail))
            gx_chunks.append(mx.concatenate(done, axis=2))
        gx = mx.concatenate(gx_chunks, axis=0).astype(dtype) if want_gx else None
        return gx, None if gw is None else gw.astype(dtype)

    def grad_input_by_slabs(self, cot: mx.array, w: mx.array) -> mx.array:
        """The input gradient of a stride-1 convolution without overlapping pieces.

        The input gradient of input planes [i0, i1) is a convolution of the
        cotangent planes that reach them with the flipped kernel, so each
        input slab is computed once from a cotangent window with its halo.
        Overlapping pieces instead recompute their halo planes: 25% more
        input-gradient work with the 8-plane pieces of the 64^3 layer under
        the default budget.
        """
        n, depth, out_d = self.x_shape[0], self.x_shape[2], cot.shape[2]
        cot_pads = plan.transposed_pads(self.w_shape, self.pads, self.dilation)
        (clo, _), cot_rest = cot_pads[0], cot_pads[1:]
        pieces = self.split.input_slabs
        lazy, gx_chunks = False, []
        for n0, n1 in plan.chunks(n, pieces.samples):
            parts = []
            for slab in plan.slabs(depth, pieces.planes, out_d, self.w_shape[2], 1, clo,
                                   self.dilation[0]):
                if slab.b <= slab.a:
                    parts.append(mx.zeros((n1 - n0, self.x_shape[1], slab.d1 - slab.d0,
                                           *self.x_shape[3:]), dtype=w.dtype))
                    continue
                part = self.path.grad_input_by_slabs(cot[n0:n1, :, slab.a:slab.b], w,
                                                     ((slab.pad_lo, slab.pad_hi), *cot_rest),
                                                     self.dilation)
                part = part if part.dtype == w.dtype else part.astype(w.dtype)
                lazy = eval_step([part], lazy)
                parts.append(part if lazy else detached(part))
            gx_chunks.append(mx.concatenate(parts, axis=2))
        return mx.concatenate(gx_chunks, axis=0)
