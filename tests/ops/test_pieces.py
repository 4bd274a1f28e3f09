"""The workspace budget: split and unsplit conv3d agree, and the split one stays within budget."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mlx_nn
import numpy as np
import pytest

import lucid_mlx
import lucid_mlx.nn.functional as F
from lucid_mlx import nn
from lucid_mlx.ops import dispatch


@pytest.fixture(autouse=True)
def _restore_limit():
    yield
    lucid_mlx.reset_workspace_limit()


def _close(a, b, dtype=mx.float32):
    tol = {mx.float32: 2e-5, mx.float16: 2e-2}[dtype]
    a = np.array(a.astype(mx.float32))
    b = np.array(b.astype(mx.float32))
    scale = max(1.0, float(np.abs(b).max()))
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)


# (input shape, out channels, kernel, conv3d keyword arguments)
CASES = [
    ((2, 4, 9, 6, 5), 6, 3, dict(padding=1)),
    ((3, 4, 11, 6, 5), 6, (3, 2, 3), dict(stride=(2, 1, 2), padding=(1, 0, 2))),
    ((1, 4, 13, 6, 5), 6, 3, dict(padding=2, dilation=(2, 1, 1))),
    ((2, 4, 10, 6, 5), 8, 3, dict(stride=(2, 1, 1), padding=1, groups=2)),
    ((2, 4, 10, 6, 5), 8, 3, dict(padding=1, groups=4)),  # depthwise, multiplier 2
    ((1, 4, 12, 6, 5), 6, (5, 3, 3), dict(stride=3, padding=(0, 1, 1))),
    ((1, 4, 8, 6, 5), 6, (4, 3, 2), dict(padding="same")),  # even kernels: asymmetric
    ((1, 2, 4, 6, 5), 3, 3, dict(padding=6)),  # slabs that see only padding
]


@pytest.mark.parametrize("shape, c_out, kernel, kwargs", CASES)
def test_split_matches_unsplit(shape, c_out, kernel, kwargs):
    groups = kwargs.get("groups", 1)
    ks = kernel if isinstance(kernel, tuple) else (kernel,) * 3
    x = mx.random.normal(shape, key=mx.random.key(0))
    w = mx.random.normal((c_out, shape[1] // groups, *ks), key=mx.random.key(1))
    b = mx.random.normal((c_out,), key=mx.random.key(2))

    def run():
        f = lambda x, w, b: F.conv3d(x, w, b, **kwargs)  # noqa: E731
        y = f(x, w, b)
        cot = mx.random.normal(y.shape, key=mx.random.key(3))
        _, grads = mx.vjp(f, [x, w, b], [cot])
        mx.eval(y, grads)
        return y, grads

    lucid_mlx.set_workspace_limit(None)
    y0, g0 = run()
    lucid_mlx.set_workspace_limit(0)  # one sample, one output plane per piece
    y1, g1 = run()
    _close(y1, y0)
    for a, b_ in zip(g1, g0):
        _close(a, b_)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_split_padding_modes_through_module(mode):
    layer = nn.Conv3d(3, 4, 3, padding=1, padding_mode=mode)
    x = mx.random.normal((2, 3, 7, 5, 6), key=mx.random.key(4))
    loss_and_grad = mlx_nn.value_and_grad(layer, lambda m, x: (m(x) ** 2).sum())

    lucid_mlx.set_workspace_limit(None)
    l0, g0 = loss_and_grad(layer, x)
    mx.eval(l0, g0)
    lucid_mlx.set_workspace_limit(0)
    l1, g1 = loss_and_grad(layer, x)
    mx.eval(l1, g1)
    _close(l1, l0)
    _close(g1["weight"], g0["weight"])
    _close(g1["bias"], g0["bias"])


def test_split_float16():
    x = mx.random.normal((2, 4, 8, 6, 6), key=mx.random.key(5)).astype(mx.float16)
    w = (0.2 * mx.random.normal((4, 4, 3, 3, 3), key=mx.random.key(6))).astype(mx.float16)
    f = lambda x, w: F.conv3d(x, w, padding=1)  # noqa: E731
    cot = mx.ones((2, 4, 8, 6, 6), dtype=mx.float16)
    lucid_mlx.set_workspace_limit(None)
    y0, g0 = mx.vjp(f, [x, w], [cot])
    mx.eval(y0, g0)
    lucid_mlx.set_workspace_limit(0)
    y1, g1 = mx.vjp(f, [x, w], [cot])
    mx.eval(y1, g1)
    assert y1[0].dtype == g1[0].dtype == g1[1].dtype == mx.float16
    _close(y1[0], y0[0], mx.float16)
    for a, b in zip(g1, g0):
        _close(a, b, mx.float16)


@pytest.mark.parametrize("stride", [1, (2, 1, 1)])  # input-slab and overlap-add vjps
def test_split_under_grad_and_compile(stride):
    x = mx.random.normal((1, 3, 9, 5, 5), key=mx.random.key(7))
    w = mx.random.normal((4, 3, 3, 3, 3), key=mx.random.key(8))

    def loss(x, w):
        return (F.conv3d(x, w, padding=1, stride=stride) ** 2).sum()

    grad = mx.grad(loss, argnums=(0, 1))
    lucid_mlx.set_workspace_limit(None)
    ref = grad(x, w)
    mx.eval(ref)
    lucid_mlx.set_workspace_limit(0)
    # Under mx.compile the pieces cannot be evaluated one by one; they stay
    # in one graph and must give the same numbers.
    for fn in (grad, mx.compile(grad)):
        got = fn(x, w)
        mx.eval(got)
        _close(got[0], ref[0])
        _close(got[1], ref[1])
    y_ref = F.conv3d(x, w, padding=1)
    _close(mx.compile(lambda x, w: F.conv3d(x, w, padding=1))(x, w), y_ref)


def _vjp_peak(f, x, w, cot, limit):
    """MLX's peak memory above what is live before, for ``f``'s output and gradients under ``limit``."""
    lucid_mlx.set_workspace_limit(limit)
    base = mx.get_active_memory()
    mx.reset_peak_memory()
    out, grads = mx.vjp(f, [x, w], [cot])
    mx.eval(out, grads)
    return mx.get_peak_memory() - base


def test_peak_within_budget():
    # 1x16x32^3 -> 16, k=3: unsplit, the forward+backward peaks at ~170 MiB.
    x = mx.random.normal((1, 16, 32, 32, 32), key=mx.random.key(9))
    w = 0.05 * mx.random.normal((16, 16, 3, 3, 3), key=mx.random.key(10))
    cot = mx.random.normal(x.shape, key=mx.random.key(11))
    mx.eval(x, w, cot)
    f = lambda x, w: F.conv3d(x, w, padding=1)  # noqa: E731
    budget = 24 * 2**20
    lucid_mlx.set_workspace_limit(budget)
    conv_plan = dispatch.conv3d_plan(x, w, (1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1)
    assert conv_plan.split is not None, "the case must need splitting"

    def peak(limit):
        return _vjp_peak(f, x, w, cot, limit)

    # Inputs (x, w, cotangent) are already live in ``base``; the call adds its
    # output and the gradients.
    bound = budget + x.nbytes + x.nbytes + w.nbytes
    unsplit = peak(None)
    assert unsplit > bound, "without the budget the peak should exceed the bound"
    assert peak(budget) <= bound



@pytest.mark.parametrize("c_out, kwargs", [
    (16, dict(padding=1, stride=2, groups=16)),  # strided depthwise
    (32, dict(padding=2, stride=2, dilation=2, groups=16)),  # multiplier 2, strided, dilated
])
def test_strided_depthwise_peak_within_budget(c_out, kwargs):
    # The depthwise input gradient runs at the input's resolution: a strided
    # layer's estimate must count its input planes, not its output planes.
    x = mx.random.normal((2, 16, 32, 32, 32), key=mx.random.key(12))
    w = mx.random.normal((c_out, 1, 3, 3, 3), key=mx.random.key(13))
    f = lambda x, w: F.conv3d(x, w, **kwargs)  # noqa: E731
    y = f(x, w)
    cot = mx.random.normal(y.shape, key=mx.random.key(14))
    mx.eval(x, w, cot)
    # Large enough for one plane of one sample, the finest piece there is.
    budget = 24 * 2**20

    def peak(limit):
        return _vjp_peak(f, x, w, cot, limit)

    bound = budget + x.nbytes + y.nbytes + x.nbytes + w.nbytes
    assert peak(None) > bound, "without the budget the peak should exceed the bound"
    assert peak(budget) <= bound
