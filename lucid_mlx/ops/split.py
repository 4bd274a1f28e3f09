"""Run one conv3d in pieces so that its temporaries fit the workspace budget.

A piece is a chunk of the batch times a slab of output depth; it reads the
input planes under its slab (its halo included) and gets its own depth
padding, so every piece is an ordinary, smaller convolution and the pieces
together give exactly the unsplit output.

Splitting the lazy graph alone does not bound memory: MLX's scheduler
allocates every piece's unfold buffer before the first one finishes (16
slabs of a 1x32x64^3 k=3 layer still peaked at 1.0 GB forward).  So the
pieces run inside an ``mx.custom_function`` whose forward and vjp evaluate
piece by piece: forward peak 121 MiB instead of 963 MiB at the same speed.
The vjp sums per-piece weight gradients (MLX's own convolution vjp) in
float32.  For a stride-1 dense convolution it computes the input gradient
by input slabs, each a convolution of a cotangent window with the flipped
kernel (:func:`_vjp_by_input_slabs`: fwd+bwd of the 64^3 layer in 0.98x the
time of ``mx.conv3d``, peak 274 MiB against 2826 MiB); otherwise it runs
MLX's vjp on each piece and adds the overlapping input-gradient halos
(1.13x the time there, as each 8-plane piece recomputes 2 halo planes).

``mx.eval`` is refused while ``mx.compile`` (or ``mx.vmap``) traces a
function.  Then the pieces stay in one lazy graph: the results are the same
but the peak is only what MLX's scheduler gives (``mx.set_memory_limit``
makes it wait for running work when active memory passes the limit: 350
MiB instead of 1011 MiB for 16 lazy slabs with a 300 MiB limit).  Split
gradients are copied out of their graphs (see :mod:`.evaluation`), so they
cannot be differentiated a second time.
"""

from __future__ import annotations

from typing import Callable

import mlx.core as mx

from .. import workspace
from . import depthwise
from .evaluation import detached as _detached
from .evaluation import try_eval as _try_eval

Triple = tuple[int, int, int]
Pairs = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
Inner = Callable[[mx.array, mx.array, Triple, Pairs, Triple, int], mx.array]
GradInput = Callable[[mx.array, mx.array, Pairs, Triple], mx.array]
PieceGrads = Callable[[mx.array, mx.array, mx.array, Triple, Pairs, Triple], tuple[mx.array, mx.array]]

# MLX computes CPU convolutions in float32 whatever the input dtype.
_UNFOLD_ITEMSIZE = 4


def plane_bytes(x_shape, w_shape, out_size: Triple, stride: Triple, backward: bool) -> tuple[int, int]:
    """Estimated temporaries of one sample and one output-depth plane, and of one input plane.

    Every path's largest temporary is an unfold: the forward and the weight
    gradient hold KD*KH*KW*C_in values per output voxel, the input gradient
    KD*KH*KW*C_out per input voxel (the shifted-slice depthwise path's slice
    vjps are as large).  A backward piece holds both gradients' unfolds at
    once: 15 planes of the 1x32x64^3 layer measured 219 MiB forward and 460
    MiB backward.  The padded input copy and the output and cotangent slabs
    come on top.
    """
    _, c_in, _, h, w = x_shape
    c_out, _, kd, kh, kw = w_shape
    taps = kd * kh * kw
    o_plane = out_size[1] * out_size[2]
    unfold_fwd = taps * c_in * o_plane
    unfold_gx = taps * c_out * h * w * stride[0]
    unfold = unfold_fwd + unfold_gx if backward else unfold_fwd
    if w_shape[1] == 1:
        # The depthwise path has no unfold: it holds about two output-sized
        # arrays per tap of one evaluation step (ops.depthwise), measured
        # 391 MiB for 2x64x32^3 forward+backward, 6 MiB per sample-plane.
        unfold = (2 * depthwise.STEP_TAPS + 6) * c_out * o_plane
    per_plane = unfold + 2 * c_in * h * w * stride[0] + 3 * c_out * o_plane
    return _UNFOLD_ITEMSIZE * per_plane, _UNFOLD_ITEMSIZE * 2 * c_in * h * w


def plan(x_shape, w_shape, out_size: Triple, stride: Triple, dilation: Triple,
         limit: int | None, backward: bool = False) -> tuple[int, int]:
    """(samples per chunk, output planes per slab) for the budget ``limit``.

    A split call also holds its assembled results beside the pieces (the
    output, and in the backward the input gradient in float32 and its
    concatenation), so that much of the budget is set aside before sizing
    the pieces.
    """
    n, out_d = x_shape[0], out_size[0]
    if limit is None or n == 0 or out_d == 0:
        return max(n, 1), max(out_d, 1)
    per_plane, in_plane = plane_bytes(x_shape, w_shape, out_size, stride, backward)
    halo = in_plane * (w_shape[2] - 1) * dilation[0]

    def cost(samples: int, planes: int) -> int:
        return samples * (planes * per_plane + halo)

    if cost(n, out_d) <= limit:
        return n, out_d
    # The forward's pieces stay alive beside their concatenation while a
    # vjp is traced.
    assembly = _UNFOLD_ITEMSIZE * n * w_shape[0] * out_d * out_size[1] * out_size[2]
    if backward:
        assembly += 2 * _UNFOLD_ITEMSIZE * n * x_shape[1] * x_shape[2] * x_shape[3] * x_shape[4]
    limit = max(0, limit - assembly)
    if cost(1, out_d) <= limit:
        return max(1, limit // cost(1, out_d)), out_d
    planes = (limit - halo) // per_plane if limit > halo else 0
    return 1, max(1, min(out_d, planes))


def _window(d0: int, d1: int, size: int, k: int, s: int, lo: int, dil: int) -> tuple[int, int, int, int]:
    """Input planes [a, b) read by output planes [d0, d1), with the padding they need."""
    start = d0 * s - lo
    stop = (d1 - 1) * s - lo + (k - 1) * dil + 1
    a, b = max(start, 0), min(stop, size)
    return a, b, a - start, stop - b


def _pieces(n: int, samples: int, out_d: int, planes: int, depth: int, k: int, s: int, lo: int,
            dil: int):
    chunks = [(n0, min(n, n0 + samples)) for n0 in range(0, n, samples)]
    slabs = [(d0, min(out_d, d0 + planes)) for d0 in range(0, out_d, planes)]
    return chunks, [(d0, d1, *_window(d0, d1, depth, k, s, lo, dil)) for d0, d1 in slabs]


def split_conv3d(inner: Inner, x: mx.array, w: mx.array, stride: Triple, pads: Pairs,
                 dilation: Triple, groups: int, out_size: Triple,
                 grad_input: GradInput | None = None,
                 piece_grads: PieceGrads | None = None) -> mx.array:
    """``inner(x, w, ...)`` computed piece by piece within the workspace budget.

    ``grad_input(cot, w, cot_pads, dilation)``, given for a stride-1 path,
    computes an input gradient directly from a window of the cotangent.
    ``piece_grads(x, w, cot, stride, pads, dilation)``, given for a path
    whose forward is evaluated eagerly, returns a piece's two gradients
    without running its forward again.
    """
    limit = workspace.get_workspace_limit()
    n, depth, out_d = x.shape[0], x.shape[2], out_size[0]
    fwd_plan = plan(x.shape, w.shape, out_size, stride, dilation, limit)
    bwd_plan = plan(x.shape, w.shape, out_size, stride, dilation, limit, backward=True)
    if bwd_plan[0] >= n and bwd_plan[1] >= out_d:
        return inner(x, w, stride, pads, dilation, groups)

    (lo, _), rest = pads[0], pads[1:]
    geometry = (depth, w.shape[2], stride[0], lo, dilation[0])
    c_in, c_out = x.shape[1], w.shape[0]
    plane_shape = x.shape[3:]

    def piece_fn(pl: int, ph: int):
        piece_pads = ((pl, ph), *rest)
        return lambda xs, ws: inner(xs, ws, stride, piece_pads, dilation, groups)

    transposed = None
    reach = [d * (k - 1) for k, d in zip(w.shape[2:], dilation)]
    cot_pads = tuple((r - lo_, r - hi_) for r, (lo_, hi_) in zip(reach, pads))
    if grad_input is not None and stride == (1, 1, 1) and min(min(p) for p in cot_pads) >= 0:
        gx_plan = plan((n, c_out, *out_size), (c_in, c_out, *w.shape[2:]), tuple(x.shape[2:]),
                       (1, 1, 1), dilation, limit, backward=True)
        transposed = (grad_input, cot_pads, gx_plan, dilation)

    @mx.custom_function
    def conv(x, w):
        chunks, slabs = _pieces(n, *fwd_plan[:1], out_d, fwd_plan[1], *geometry)
        lazy, chunks_out = False, []
        for n0, n1 in chunks:
            parts = []
            for d0, d1, a, b, pl, ph in slabs:
                if b <= a:  # the slab sees only padding
                    parts.append(mx.zeros((n1 - n0, c_out, d1 - d0, *out_size[1:]), dtype=x.dtype))
                    continue
                parts.append(piece_fn(pl, ph)(x[n0:n1, :, a:b], w))
                lazy = _try_eval(parts[-1:], lazy)
            chunks_out.append(mx.concatenate(parts, axis=2))
        return mx.concatenate(chunks_out, axis=0)

    @conv.vjp
    def conv_vjp(primals, cotangent, output):
        x, w = primals
        cot = cotangent[0] if isinstance(cotangent, (list, tuple)) else cotangent
        if transposed is not None:
            return _vjp_by_input_slabs(x, w, cot, piece_fn, bwd_plan, transposed, geometry)
        chunks, slabs = _pieces(n, *bwd_plan[:1], out_d, bwd_plan[1], *geometry)
        lazy = False
        gw = mx.zeros(w.shape, dtype=mx.float32)
        gx_chunks = []
        for n0, n1 in chunks:
            nb = n1 - n0

            def zeros(planes: int) -> mx.array:
                return mx.zeros((nb, c_in, planes, *plane_shape), dtype=mx.float32)

            # ``acc`` holds the input gradient of planes [acc_start, ...) that
            # later pieces may still add to; pieces come by increasing window
            # start and end, so planes before a piece's start are final.
            done, acc, acc_start = [], None, 0
            for d0, d1, a, b, pl, ph in slabs:
                if b <= a:
                    continue
                fresh = len(done)
                if piece_grads is not None:
                    gxs, gws = piece_grads(x[n0:n1, :, a:b], w, cot[n0:n1, :, d0:d1], stride,
                                           ((pl, ph), *rest), dilation)
                else:
                    _, (gxs, gws) = mx.vjp(piece_fn(pl, ph), [x[n0:n1, :, a:b], w],
                                           [cot[n0:n1, :, d0:d1]])
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
                lazy = _try_eval([gw, acc, *done], lazy)
                if not lazy:
                    gw, acc = _detached(gw), _detached(acc)
                    done[fresh:] = [_detached(part) for part in done[fresh:]]
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


def _vjp_by_input_slabs(x, w, cot, piece_fn, w_plan, transposed, geometry):
    """Gradients of a stride-1 convolution without overlapping input-gradient pieces.

    The input gradient of input planes [i0, i1) is a convolution of the
    cotangent planes that reach them with the flipped kernel, so each input
    slab is computed once from a cotangent window with its halo.  Overlapping
    pieces instead recompute their halo planes: 25% more input-gradient work
    with the 8-plane pieces of the 64^3 layer under the default budget.
    The weight gradient is summed over output slabs as in the general vjp.
    """
    grad_input, cot_pads, gx_plan, dilation = transposed
    depth, k = geometry[0], geometry[1]
    n, out_d = x.shape[0], cot.shape[2]
    lazy, gw = False, mx.zeros(w.shape, dtype=mx.float32)
    chunks, slabs = _pieces(n, w_plan[0], out_d, w_plan[1], *geometry)
    for n0, n1 in chunks:
        for d0, d1, a, b, pl, ph in slabs:
            if b <= a:
                continue
            xs = x[n0:n1, :, a:b]
            _, (gws,) = mx.vjp(lambda ws: piece_fn(pl, ph)(xs, ws), [w], [cot[n0:n1, :, d0:d1]])
            gw = gw + gws.astype(mx.float32)
            lazy = _try_eval([gw], lazy)
            gw = gw if lazy else _detached(gw)

    (clo, _), rest = cot_pads[0], cot_pads[1:]
    gx_chunks = []
    chunks, slabs = _pieces(n, gx_plan[0], depth, gx_plan[1], out_d, k, 1, clo, dilation[0])
    for n0, n1 in chunks:
        parts = []
        for i0, i1, a, b, pl, ph in slabs:
            if b <= a:
                parts.append(mx.zeros((n1 - n0, x.shape[1], i1 - i0, *x.shape[3:]), dtype=x.dtype))
                continue
            part = grad_input(cot[n0:n1, :, a:b], w, ((pl, ph), *rest), dilation)
            part = part if part.dtype == x.dtype else part.astype(x.dtype)
            lazy = _try_eval([part], lazy)
            parts.append(part if lazy else _detached(part))
        gx_chunks.append(mx.concatenate(parts, axis=2))
    gw = gw if w.dtype == mx.float32 else gw.astype(w.dtype)
    return mx.concatenate(gx_chunks, axis=0), gw
