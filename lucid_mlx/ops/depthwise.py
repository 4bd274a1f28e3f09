"""Depthwise conv3d (one input channel per group) as shifted-slice sums with a written-out vjp.

The output is a sum over kernel taps of a strided view of the padded input
times one weight per channel: no unfold, no GEMM.  At 2x64x32^3, k=3 these
sums took 0.15 s forward / 0.38 s forward+backward on the CPU, against 0.27
/ 0.86 s for KD grouped 2-D convolutions with the depth folded into the
batch.

Outside transformations ``mx.compile`` fuses each step's multiply-adds into
one generated loop (a 27-term sum at 2x64x32^3 held 48 MiB fused against 256
MiB unfused); under ``mx.grad`` or ``mx.vjp`` MLX runs compiled functions
unfused, so the sums are evaluated a few taps at a time and cut from their
graphs (:mod:`.stepwise`).

The vjp is written out rather than left to autodiff, whose vjp of every
view is a padded-input-sized scatter (20 s forward+backward with a 7^3
kernel at 1x32x32^3; written out, the README benchmark table's k7 g32 row):

* input gradient: the same sum, run over the cotangent (spread by the
  stride, zero-padded) with the taps flipped;
* weight gradient: for each tap, the product of its input view with the
  cotangent summed over the batch and the volume.  The sum over depth
  planes is written as a sum of plane views, so only (N, C, H, W) arrays
  are left to reduce (see :func:`_row_products`).

At 2x64x32^3, k=3 forward+backward costs about 0.3 s of CPU time, like
autodiff of the plain shifted-slice sums, at 391 MiB instead of 493 MiB.
Computation is in float32 whatever the input dtype, as for MLX's CPU
convolutions; results are cast back.
"""

from __future__ import annotations

import functools

import mlx.core as mx

from .._args import Pairs, Triple
from .derivatives import convolve
from .plan import output_size
from .stepwise import detached, eval_step

# Taps summed per evaluation step (whole kernel rows of KW taps).
STEP_TAPS = 9

_compile_ok: bool | None = None


def _views(xp: mx.array, size: Triple, kernel: Triple, stride: Triple, dilation: Triple,
           start: Triple, rows: range):
    """(tap index, strided view of ``xp``) for the kernel rows (a * KH + b) in ``rows``."""
    _, kh, kw = kernel
    for r in rows:
        a, b = divmod(r, kh)
        for c in range(kw):
            lo = (start[0] + a * dilation[0], start[1] + b * dilation[1], start[2] + c * dilation[2])
            view = xp[
                :,
                :,
                lo[0] : lo[0] + (size[0] - 1) * stride[0] + 1 : stride[0],
                lo[1] : lo[1] + (size[1] - 1) * stride[1] + 1 : stride[1],
                lo[2] : lo[2] + (size[2] - 1) * stride[2] + 1 : stride[2],
            ]
            yield r * kw + c, view


@functools.lru_cache(maxsize=128)
def _tap_sum(kernel: Triple, stride: Triple, dilation: Triple, size: Triple, start: Triple,
             rows: tuple[int, int], fused: bool):
    """sum_t view_t(xp) * taps[:, t] over the kernel rows [rows[0], rows[1])."""

    def tap_sum(xp: mx.array, taps: mx.array) -> mx.array:
        acc = None
        for t, view in _views(xp, size, kernel, stride, dilation, start, range(*rows)):
            term = view * taps[:, t].reshape(1, -1, 1, 1, 1)
            acc = term if acc is None else acc + term
        return acc

    return mx.compile(tap_sum) if fused else tap_sum


def _can_compile() -> bool:
    """Whether ``mx.compile`` works here (on the CPU it runs a C++ compiler)."""
    global _compile_ok
    if _compile_ok is None:
        try:
            probe = mx.compile(lambda a, b: a * b + a)(mx.ones((4,)), mx.ones((4,)))
            mx.eval(probe)
            _compile_ok = True
        except Exception:  # noqa: BLE001 - any failure means: do not fuse
            _compile_ok = False
    return _compile_ok


def _weighted_sum(xp: mx.array, taps: mx.array, kernel: Triple, stride: Triple, dilation: Triple,
                  size: Triple, start: Triple = (0, 0, 0)) -> mx.array:
    """The tap sum, evaluated a few taps at a time unless a transformation forbids it.

    Unevaluated, a 27-term sum at 2x64x32^3 held 256 MiB of products
    scheduled ahead of the computation, and 2.8 GB with 343 terms under
    mx.grad; in steps of STEP_TAPS taps each step's result is evaluated and
    cut from its graph.
    """
    _, kh, kw = kernel
    per_step = max(1, STEP_TAPS // kw)
    fused = _can_compile()
    acc, lazy = None, False
    for r in range(0, kernel[0] * kh, per_step):
        rows = (r, min(kernel[0] * kh, r + per_step))
        part = _tap_sum(kernel, stride, dilation, size, start, rows, fused)(xp, taps)
        acc = part if acc is None else acc + part
        lazy = eval_step([acc], lazy)
        if not lazy:
            acc = detached(acc)
    return acc


# A weight-gradient sum covers at most this many output-depth planes, so a
# generated kernel reads a bounded number of views.
_GW_PLANES = 32


@functools.lru_cache(maxsize=256)
def _row_products(kernel: Triple, stride: Triple, dilation: Triple, size: Triple, a: int, b: int,
                  planes: tuple[int, int], fused: bool):
    """For taps (a, b, 0..KW-1): sum over output planes of input plane times cotangent plane.

    Slicing one depth plane at a time turns most of the reduction into a
    sum of views, leaving an (N, C, H_out, W_out) array per tap to reduce:
    fused by ``mx.compile`` (outside transformations) 0.09 s at 2x64x32^3,
    k=3, against 0.33 s for a product and a full reduction per tap.
    """
    _, _, kw = kernel
    hs = slice(b * dilation[1], b * dilation[1] + (size[1] - 1) * stride[1] + 1, stride[1])

    def row(xp: mx.array, cot: mx.array) -> list[mx.array]:
        outs = []
        for c in range(kw):
            ws = slice(c * dilation[2], c * dilation[2] + (size[2] - 1) * stride[2] + 1, stride[2])
            acc = None
            for d in range(*planes):
                term = xp[:, :, a * dilation[0] + d * stride[0], hs, ws] * cot[:, :, d]
                acc = term if acc is None else acc + term
            outs.append(acc)
        return outs

    return mx.compile(row) if fused else row


def _weight_grad(xp: mx.array, cot: mx.array, kernel: Triple, stride: Triple, dilation: Triple,
                 size: Triple) -> mx.array:
    """(C, KD*KH*KW) weight gradient in float32."""
    kd, kh, _ = kernel
    fused = _can_compile()
    cols, lazy = [], False
    for a in range(kd):
        for b in range(kh):
            row = None
            for d0 in range(0, size[0], _GW_PLANES):
                planes = (d0, min(size[0], d0 + _GW_PLANES))
                parts = _row_products(kernel, stride, dilation, size, a, b, planes, fused)(xp, cot)
                sums = [p.sum(axis=(0, 2, 3)) for p in parts]
                row = sums if row is None else [r + q for r, q in zip(row, sums)]
            # Evaluate row by row: unevaluated, the 1728 plane products of a
            # 2x64x32^3 layer were all scheduled at once (320 MiB).
            lazy = eval_step(row, lazy)
            cols.extend(row if lazy else [detached(r) for r in row])
    return mx.stack(cols, axis=1)


def _f32(a: mx.array) -> mx.array:
    return a if a.dtype == mx.float32 else a.astype(mx.float32)


def workspace(x_shape, w_shape, out_size: Triple, stride: Triple, dilation: Triple,
              backward: bool, itemsize: int) -> tuple[int, int]:
    """Bytes this path holds per sample: per output-depth plane, and per input plane of halo.

    In float32, whatever ``itemsize``.  No unfold: the forward holds about two
    output-sized arrays per tap of one evaluation step (:data:`STEP_TAPS`)
    plus the step's accumulators, and the padded input repeated to C_out
    channels under the plane; so does the weight gradient.  The input
    gradient's tap sums run at the input's resolution over the spread and
    padded cotangent, so every input plane a piece reads costs them, halo
    included (2x32x48^3 at stride 2 peaked at 628 MiB under the 256 MiB
    budget when they were counted per output plane).
    """
    h, w = x_shape[3], x_shape[4]
    c_out, _, _, kh, kw = w_shape
    # The cotangent grid of the input gradient is padded by the kernel's reach on both sides.
    padded_in = c_out * (h + 2 * dilation[1] * (kh - 1)) * (w + 2 * dilation[2] * (kw - 1))
    sums = 2 * STEP_TAPS + 6
    per_plane = sums * c_out * out_size[1] * out_size[2] + 2 * padded_in * stride[0]
    if not backward:
        return 4 * per_plane, 0
    per_input_plane = sums * c_out * h * w + 3 * padded_in
    # The two gradients are evaluated one after the other (grads()).
    return 4 * max(per_plane, per_input_plane * stride[0]), 4 * per_input_plane


def _forward(x: mx.array, w: mx.array, stride: Triple, pads: Pairs, dilation: Triple,
             groups: int | None = None) -> mx.array:
    kernel: Triple = tuple(w.shape[2:])  # type: ignore[assignment]
    c_in, c_out = x.shape[1], w.shape[0]
    mult = c_out // c_in
    size = output_size(x.shape[2:], kernel, stride, pads, dilation)
    xr = mx.repeat(x, mult, axis=1) if mult > 1 else x
    xp = mx.pad(_f32(xr), [(0, 0), (0, 0), *pads])
    y = _weighted_sum(xp, _f32(w.reshape(c_out, -1)), kernel, stride, dilation, size)
    return y if y.dtype == x.dtype else y.astype(x.dtype)


def _grad_input(cot: mx.array, w: mx.array, x_shape, stride: Triple, pads: Pairs,
                dilation: Triple) -> mx.array:
    """The input gradient: the tap sum over the spread, padded cotangent with flipped taps."""
    kernel: Triple = tuple(w.shape[2:])  # type: ignore[assignment]
    n, c_in = x_shape[:2]
    c_out = w.shape[0]
    mult = c_out // c_in
    size = cot.shape[2:]
    cot = _f32(cot)
    # Spread the cotangent onto the stride-1 grid, then pad it so that
    # every input plane sees all the taps that read it.
    if any(s > 1 for s in stride):
        spread = tuple((o - 1) * s + 1 for o, s in zip(size, stride))
        grid = mx.zeros((n, c_out, *spread), dtype=mx.float32)
        grid[:, :, :: stride[0], :: stride[1], :: stride[2]] = cot
    else:
        grid = cot
    reach = tuple(d * (k - 1) for k, d in zip(kernel, dilation))
    padded = tuple(xs + lo + hi for xs, (lo, hi) in zip(x_shape[2:], pads))
    cot_pad = [(0, 0), (0, 0)] + [
        (r, p - g) for r, p, g in zip(reach, padded, grid.shape[2:])
    ]
    gp = mx.pad(grid, cot_pad)
    flipped = _f32(w.reshape(c_out, -1)[:, ::-1])
    starts = tuple(lo for lo, _ in pads)
    gx = _weighted_sum(gp, flipped, kernel, (1, 1, 1), dilation, tuple(x_shape[2:]), starts)
    if mult > 1:
        gx = gx.reshape(n, c_in, mult, *x_shape[2:]).sum(axis=2)
    return gx if gx.dtype == w.dtype else gx.astype(w.dtype)


def _grad_weight(x: mx.array, cot: mx.array, w_shape, stride: Triple, pads: Pairs,
                 dilation: Triple) -> mx.array:
    """The weight gradient: per tap, input view times cotangent, summed."""
    kernel: Triple = tuple(w_shape[2:])  # type: ignore[assignment]
    mult = w_shape[0] // x.shape[1]
    xr = mx.repeat(x, mult, axis=1) if mult > 1 else x
    xp = mx.pad(_f32(xr), [(0, 0), (0, 0), *pads])
    gw = _weight_grad(xp, _f32(cot), kernel, stride, dilation, tuple(cot.shape[2:])).reshape(w_shape)
    return gw if gw.dtype == x.dtype else gw.astype(x.dtype)


def grads(x: mx.array, w: mx.array, cot: mx.array, stride: Triple, pads: Pairs,
          dilation: Triple, groups: int | None = None) -> tuple[mx.array, mx.array]:
    """Input and weight gradients of :func:`conv3d` for cotangent ``cot``.

    Callable without running the forward: the split path's vjp uses it per
    piece, where ``mx.vjp`` would first evaluate the (eagerly evaluated)
    forward again, 20% of the split forward+backward at 2x64x32^3.
    """
    return (_grad_input(cot, w, x.shape, stride, pads, dilation),
            _grad_weight(x, cot, w.shape, stride, pads, dilation))


def grad_input(cot: mx.array, w: mx.array, x_shape, stride: Triple, pads: Pairs, dilation: Triple,
               groups: int | None = None) -> mx.array:
    return _grad_input(cot, w, x_shape, stride, pads, dilation)


def grad_weight(x: mx.array, cot: mx.array, w_shape, stride: Triple, pads: Pairs,
                dilation: Triple, groups: int | None = None) -> mx.array:
    return _grad_weight(x, cot, w_shape, stride, pads, dilation)


def conv3d(x: mx.array, w: mx.array, stride: Triple, pads: Pairs, dilation: Triple,
           groups: int | None = None) -> mx.array:
    """Grouped conv3d with groups == C_in (NCDHW, no bias); ``w`` is (C_in * m, 1, KD, KH, KW).

    Output channel ``o`` reads input channel ``o // m``, as in PyTorch.
    ``groups`` is implied by the shapes and only accepted for a uniform
    signature with the other strategies.  Derivatives of every order come
    through :mod:`.derivatives`.
    """
    return convolve(x, w, (stride, pads, dilation, groups), _forward, grad_input, grad_weight, grads)
