"""The fused depthwise path against the plain shifted-slice reference, forward and gradients."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx.ops import depthwise
from lucid_mlx.ops.plan import output_size
from lucid_mlx.ops.pad import pad3d

# (input shape, weight shape, stride, pads, dilation)
CASES = [
    ((2, 3, 7, 6, 5), (3, 1, 3, 3, 3), (1, 1, 1), ((1, 1), (1, 1), (1, 1)), (1, 1, 1)),
    ((2, 3, 9, 6, 7), (6, 1, 3, 2, 3), (2, 1, 3), ((1, 0), (0, 2), (1, 1)), (1, 2, 1)),
    ((1, 4, 9, 8, 7), (4, 1, 5, 3, 3), (1, 2, 1), ((2, 2), (0, 0), (3, 1)), (2, 1, 2)),
    ((1, 2, 5, 5, 5), (2, 1, 2, 2, 2), (2, 2, 2), ((0, 0), (0, 0), (0, 0)), (1, 1, 1)),
    # 7^3 = 343 taps: the sums are split by kernel-depth plane.
    ((1, 2, 9, 9, 9), (4, 1, 7, 7, 7), (1, 1, 1), ((3, 3), (3, 3), (3, 3)), (1, 1, 1)),
]


def plain_depthwise(x: mx.array, w: mx.array, stride, pads, dilation) -> mx.array:
    """The plain shifted-slice sums, differentiated by MLX: the reference here.

    ``w`` has shape (C_in * m, 1, KD, KH, KW); output channel ``o`` reads
    input channel ``o // m`` as in PyTorch.
    """
    c_in, c_out = x.shape[1], w.shape[0]
    multiplier = c_out // c_in
    if multiplier > 1:
        x = mx.repeat(x, multiplier, axis=1)
    x = pad3d(x, pads, "constant")
    out = output_size(x.shape[2:], w.shape[2:], stride, ((0, 0),) * 3, dilation)
    # float32 taps make the products and the sum float32 for half inputs, as
    # MLX's own conv accumulates (k=5 in float16 otherwise drifts ~3 eps).
    taps = w.reshape(c_out, -1).astype(mx.float32)
    acc = None
    tap = 0
    kd, kh, kw = w.shape[2:]
    for a in range(kd):
        for b in range(kh):
            for c in range(kw):
                start = (a * dilation[0], b * dilation[1], c * dilation[2])
                view = x[
                    :,
                    :,
                    start[0] : start[0] + (out[0] - 1) * stride[0] + 1 : stride[0],
                    start[1] : start[1] + (out[1] - 1) * stride[1] + 1 : stride[1],
                    start[2] : start[2] + (out[2] - 1) * stride[2] + 1 : stride[2],
                ]
                term = view * taps[:, tap].reshape(1, c_out, 1, 1, 1)
                acc = term if acc is None else acc + term
                tap += 1
    return acc.astype(x.dtype)


def _grads(fn, x, w, cot):
    (y,), grads = mx.vjp(fn, [x, w], [cot])
    mx.eval(y, grads)
    return [np.array(a.astype(mx.float32)) for a in (y, *grads)]


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16])
@pytest.mark.parametrize("xs, ws, stride, pads, dilation", CASES)
def test_fused_matches_reference(xs, ws, stride, pads, dilation, dtype):
    x = mx.random.normal(xs, key=mx.random.key(0)).astype(dtype)
    w = mx.random.normal(ws, key=mx.random.key(1)).astype(dtype)
    ref = lambda x, w: plain_depthwise(x, w, stride, pads, dilation)  # noqa: E731
    new = lambda x, w: depthwise.conv3d(x, w, stride, pads, dilation)  # noqa: E731
    y = ref(x.astype(mx.float32), w.astype(mx.float32))
    cot = mx.random.normal(y.shape, key=mx.random.key(2)).astype(dtype)
    want = _grads(ref, x.astype(mx.float32), w.astype(mx.float32), cot.astype(mx.float32))
    got = _grads(new, x, w, cot)
    assert new(x, w).dtype == dtype
    tol = 1e-4 if dtype == mx.float32 else 2e-2
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol * max(1.0, np.abs(r).max()))


def test_unfused_fallback(monkeypatch):
    # Where mx.compile cannot build kernels the same sums run as plain ops.
    monkeypatch.setattr(depthwise, "_compile_ok", False)
    xs, ws, stride, pads, dilation = CASES[1]
    x = mx.random.normal(xs, key=mx.random.key(3))
    w = mx.random.normal(ws, key=mx.random.key(4))
    ref = lambda x, w: plain_depthwise(x, w, stride, pads, dilation)  # noqa: E731
    new = lambda x, w: depthwise.conv3d(x, w, stride, pads, dilation)  # noqa: E731
    cot = mx.ones(ref(x, w).shape)
    for g, r in zip(_grads(new, x, w, cot), _grads(ref, x, w, cot)):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def test_jvp_matches_reference():
    xs, ws, stride, pads, dilation = CASES[1]
    x, w = mx.random.normal(xs, key=mx.random.key(5)), mx.random.normal(ws, key=mx.random.key(6))
    tx, tw = mx.random.normal(xs, key=mx.random.key(7)), mx.random.normal(ws, key=mx.random.key(8))
    ref = lambda x, w: plain_depthwise(x, w, stride, pads, dilation)  # noqa: E731
    new = lambda x, w: depthwise.conv3d(x, w, stride, pads, dilation)  # noqa: E731
    (got,) = mx.jvp(new, [x, w], [tx, tw])[1]
    (want,) = mx.jvp(ref, [x, w], [tx, tw])[1]
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-4)
