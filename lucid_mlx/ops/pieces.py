"""Run one conv3d piece by piece, as its :class:`~.dispatch.ConvPlan` says.

Splitting the lazy graph alone does not bound memory: MLX's scheduler
allocates every piece's unfold buffer before the first one finishes (16
slabs of a 1x32x64^3 k=3 layer still peaked at 1.0 GB forward).  So the
pieces run inside an ``mx.custom_function`` whose forward and vjp evaluate
piece by piece: forward peak 121 MiB instead of 963 MiB at the same speed.
The vjp sums per-piece weight gradients in float32, each piece's taken by
the plan's path (``path.grads``).  For a stride-1 dense convolution it
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
MiB instead of 1011 MiB for 16 lazy slabs with a 300 MiB limit).  Split
gradients are copied out of their graphs (see :mod:`.stepwise`), so they
cannot be differentiated a second time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mlx.core as mx

from .._args import Pairs, Triple
from . import plan
from .stepwise import detached, eval_step

if TYPE_CHECKING:
    from .dispatch import ConvPlan


def conv3d_in_pieces(conv_plan: ConvPlan, x: mx.array, w: mx.array, stride: Triple, pads: Pairs,
                     dilation: Triple, groups: int) -> mx.array:
    """The convolution of ``conv_plan.path``, computed piece by piece within its split."""
    path, out_size, split = conv_plan
    n, depth, out_d = x.shape[0], x.shape[2], out_size[0]
    (lo, _), rest = pads[0], pads[1:]
    geometry = (depth, w.shape[2], stride[0], lo, dilation[0])
    c_in, c_out = x.shape[1], w.shape[0]
    plane_shape = x.shape[3:]

    def piece_pads(slab: plan.Slab) -> Pairs:
        return ((slab.pad_lo, slab.pad_hi), *rest)  # type: ignore[return-value]

    @mx.custom_function
    def conv(x, w):
        lazy, chunks_out = False, []
        for n0, n1 in plan.chunks(n, split.forward.samples):
            parts = []
            for slab in plan.slabs(out_d, split.forward.planes, *geometry):
                if slab.b <= slab.a:  # the slab sees only padding
                    parts.append(mx.zeros((n1 - n0, c_out, slab.d1 - slab.d0, *out_size[1:]),
                                          dtype=x.dtype))
                    continue
                parts.append(path.forward(x[n0:n1, :, slab.a:slab.b], w, stride, piece_pads(slab),
                                          dilation, groups))
                lazy = eval_step(parts[-1:], lazy)
            chunks_out.append(mx.concatenate(parts, axis=2))
        return mx.concatenate(chunks_out, axis=0)

    @conv.vjp
    def conv_vjp(primals, cotangent, output):
        x, w = primals
        cot = cotangent[0] if isinstance(cotangent, (list, tuple)) else cotangent
        if split.input_slabs is not None:
            return _vjp_by_input_slabs(conv_plan, x, w, cot, stride, pads, dilation, groups, geometry)
        lazy = False
        gw = mx.zeros(w.shape, dtype=mx.float32)
        gx_chunks = []
        for n0, n1 in plan.chunks(n, split.backward.samples):
            nb = n1 - n0

            def zeros(planes: int) -> mx.array:
                return mx.zeros((nb, c_in, planes, *plane_shape), dtype=mx.float32)

            # ``acc`` holds the input gradient of planes [acc_start, ...) that
            # later pieces may still add to; pieces come by increasing window
            # start and end, so planes before a piece's start are final.
            done, acc, acc_start = [], None, 0
            for slab in plan.slabs(out_d, split.backward.planes, *geometry):
                a, b = slab.a, slab.b
                if b <= a:
                    continue
                fresh = len(done)
                gxs, gws = path.grads(x[n0:n1, :, a:b], w, cot[n0:n1, :, slab.d0:slab.d1], stride,
                                      piece_pads(slab), dilation, groups)
                gw = gw + gws.astype(mx.float32)
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
                lazy = eval_step([gw, acc, *done], lazy)
                if not lazy:
                    gw, acc = detached(gw), detached(acc)
                    done[fresh:] = [detached(part) for part in done[fresh:]]
            if acc is None:
                gx_chunks.append(zeros(depth))
                continue
            done.append(acc)
            tail = depth - (acc_start + acc.shape[2])
            if tail:
                done.append(zeros(tail))
            gx_chunks.append(mx.concatenate(done, axis=2))
        gx = mx.concatenate(gx_chunks, axis=0)
        if x.dtype != mx.float32:
            gx = gx.astype(x.dtype)
        return gx, gw if w.dtype == mx.float32 else gw.astype(w.dtype)

    return conv(x, w)


def _vjp_by_input_slabs(conv_plan: ConvPlan, x, w, cot, stride, pads, dilation, groups, geometry):
    """Gradients of a stride-1 convolution without overlapping input-gradient pieces.

    The input gradient of input planes [i0, i1) is a convolution of the
    cotangent planes that reach them with the flipped kernel, so each input
    slab is computed once from a cotangent window with its halo.  Overlapping
    pieces instead recompute their halo planes: 25% more input-gradient work
    with the 8-plane pieces of the 64^3 layer under the default budget.
    The weight gradient is summed over output slabs as in the general vjp.
    """
    path, _, split = conv_plan
    depth, k = geometry[0], geometry[1]
    n, out_d = x.shape[0], cot.shape[2]
    rest = pads[1:]
    lazy, gw = False, mx.zeros(w.shape, dtype=mx.float32)
    for n0, n1 in plan.chunks(n, split.backward.samples):
        for slab in plan.slabs(out_d, split.backward.planes, *geometry):
            if slab.b <= slab.a:
                continue
            xs = x[n0:n1, :, slab.a:slab.b]
            piece_pads = ((slab.pad_lo, slab.pad_hi), *rest)
            _, (gws,) = mx.vjp(lambda ws: path.forward(xs, ws, stride, piece_pads, dilation, groups),
                               [w], [cot[n0:n1, :, slab.d0:slab.d1]])
            gw = gw + gws.astype(mx.float32)
            lazy = eval_step([gw], lazy)
            gw = gw if lazy else detached(gw)

    cot_pads = plan.transposed_pads(w.shape, pads, dilation)
    (clo, _), cot_rest = cot_pads[0], cot_pads[1:]
    gx_chunks = []
    pieces = split.input_slabs
    for n0, n1 in plan.chunks(n, pieces.samples):
        parts = []
        for slab in plan.slabs(depth, pieces.planes, out_d, k, 1, clo, dilation[0]):
            if slab.b <= slab.a:
                parts.append(mx.zeros((n1 - n0, x.shape[1], slab.d1 - slab.d0, *x.shape[3:]),
                                      dtype=x.dtype))
                continue
            part = path.grad_input(cot[n0:n1, :, slab.a:slab.b], w,
                                   ((slab.pad_lo, slab.pad_hi), *cot_rest), dilation)
            part = part if part.dtype == x.dtype else part.astype(x.dtype)
            lazy = eval_step([part], lazy)
            parts.append(part if lazy else detached(part))
        gx_chunks.append(mx.concatenate(parts, axis=2))
    gw = gw if w.dtype == mx.float32 else gw.astype(w.dtype)
    return mx.concatenate(gx_chunks, axis=0), gw
