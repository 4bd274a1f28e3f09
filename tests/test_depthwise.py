"""The fused depthwise path against the plain shifted-slice reference, forward and gradients."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx.ops import depthwise, grouped

# (input shape, weight shape, stride, pads, dilation)
CASES = [
    ((2, 3, 7, 6, 5), (3, 1, 3, 3, 3), (1, 1, 1), ((1, 1), (1, 1), (1, 1)), (1, 1, 1)),
    ((2, 3, 9, 6, 7), (6, 1, 3, 2, 3), (2, 1, 3), ((1, 0), (0, 2), (1, 1)), (1, 2, 1)),
    ((1, 4, 9, 8, 7), (4, 1, 5, 3, 3), (1, 2, 1), ((2, 2), (0, 0), (3, 1)), (2, 1, 2)),
    ((1, 2, 5, 5, 5), (2, 1, 2, 2, 2), (2, 2, 2), ((0, 0), (0, 0), (0, 0)), (1, 1, 1)),
    # 7^3 = 343 taps: the sums are split by kernel-depth plane.
    ((1, 2, 9, 9, 9), (4, 1, 7, 7, 7), (1, 1, 1), ((3, 3), (3, 3), (3, 3)), (1, 1, 1)),
]


def _grads(fn, x, w, cot):
    (y,), grads = mx.vjp(fn, [x, w], [cot])
    mx.eval(y, grads)
    return [np.array(a.astype(mx.float32)) for a in (y, *grads)]


@pytest.mark.parametrize("dtype", [mx.float32, mx.float16])
@pytest.mark.parametrize("xs, ws, stride, pads, dilation", CASES)
def test_fused_matches_reference(xs, ws, stride, pads, dilation, dtype):
    x = mx.random.normal(xs, key=mx.random.key(0)).astype(dtype)
    w = mx.random.normal(ws, key=mx.random.key(1)).astype(dtype)
    ref = lambda x, w: grouped.depthwise_conv3d(x, w, stride, pads, dilation)  # noqa: E731
    new = lambda x, w: depthwise.depthwise_conv3d(x, w, stride, pads, dilation)  # noqa: E731
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
    ref = lambda x, w: grouped.depthwise_conv3d(x, w, stride, pads, dilation)  # noqa: E731
    new = lambda x, w: depthwise.depthwise_conv3d(x, w, stride, pads, dilation)  # noqa: E731
    cot = mx.ones(ref(x, w).shape)
    for g, r in zip(_grads(new, x, w, cot), _grads(ref, x, w, cot)):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def test_jvp_matches_reference():
    xs, ws, stride, pads, dilation = CASES[1]
    x, w = mx.random.normal(xs, key=mx.random.key(5)), mx.random.normal(ws, key=mx.random.key(6))
    tx, tw = mx.random.normal(xs, key=mx.random.key(7)), mx.random.normal(ws, key=mx.random.key(8))
    ref = lambda x, w: grouped.depthwise_conv3d(x, w, stride, pads, dilation)  # noqa: E731
    new = lambda x, w: depthwise.depthwise_conv3d(x, w, stride, pads, dilation)  # noqa: E731
    (got,) = mx.jvp(new, [x, w], [tx, tw])[1]
    (want,) = mx.jvp(ref, [x, w], [tx, tw])[1]
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-4)
