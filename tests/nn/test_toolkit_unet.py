"""The toolkit layers together, and random configurations against the NumPy references.

A tiny encoder-decoder built only from lucid_mlx layers must compile, train
a step and give the same output compiled and not; hypothesis draws pooling
and transposed-convolution configurations and checks them, with gradients,
against the loop-based references.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mnn
import mlx.optimizers as optim
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import reference_layers as ref
from arrays import assert_close, rounded, to_mx
from lucid_mlx import nn
from lucid_mlx.nn import functional as F


class TinyUNet(mnn.Module):
    def __init__(self):
        super().__init__()
        self.enc = mnn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.BatchNorm3d(4), mnn.ReLU())
        self.pool = nn.MaxPool3d(2)
        self.mid = mnn.Sequential(nn.Conv3d(4, 8, 3, padding=1, groups=2), nn.GroupNorm(2, 8),
                                  mnn.ReLU(), nn.Dropout3d(0.1))
        self.up = nn.ConvTranspose3d(8, 4, 2, stride=2, groups=2)
        self.up2 = nn.Upsample(scale_factor=2, mode="trilinear")
        self.head = mnn.Sequential(nn.InstanceNorm3d(8, affine=True), nn.Conv3d(8, 3, 1),
                                   nn.AdaptiveAvgPool3d((4, 4, None)), nn.AvgPool3d(1))

    def __call__(self, x):
        skip = self.enc(x)
        y = self.mid(self.pool(skip))
        y = mx.concatenate([self.up(y), self.up2(y)[:, :4]], axis=1)
        return self.head(y + mx.concatenate([skip, skip], axis=1))


def test_tiny_unet_trains_and_compiles():
    mx.random.seed(0)
    model = TinyUNet()
    x = mx.random.normal((2, 1, 8, 8, 8))
    target = mx.random.normal((2, 3, 4, 4, 8))
    opt = optim.Adam(learning_rate=1e-2)

    def loss_fn(model, x):
        return mx.square(model(x) - target).mean()

    step = mnn.value_and_grad(model, loss_fn)
    losses = []
    for _ in range(5):
        loss, grads = step(model, x)
        opt.update(model, grads)
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()  # Dropout3d off, BatchNorm3d on running statistics
    eager = model(x)
    compiled = mx.compile(model)(x)
    np.testing.assert_allclose(np.array(compiled), np.array(eager), rtol=1e-5, atol=1e-5)
    assert eager.shape == (2, 3, 4, 4, 8)


_sizes = st.tuples(*[st.integers(3, 6)] * 3)


@settings(max_examples=20, deadline=None)
@given(sizes=_sizes, k=st.tuples(*[st.integers(1, 3)] * 3), s=st.tuples(*[st.integers(1, 3)] * 3),
       d=st.tuples(*[st.integers(1, 2)] * 3), ceil=st.booleans(), pad=st.data(), seed=st.integers(0, 99))
def test_random_max_pool_configurations(sizes, k, s, d, ceil, pad, seed):
    p = tuple(pad.draw(st.integers(0, ki // 2)) for ki in k)
    if any(n + 2 * pi < di * (ki - 1) + 1 for n, pi, ki, di in zip(sizes, p, k, d)):
        return  # output would be empty: covered by the error tests
    rng = np.random.default_rng(seed)
    x, xr = rounded(rng, (1, 2, *sizes))
    want, want_idx, vjp = ref.max_pool3d(xr, k, s, p, d, ceil)
    g = rng.normal(size=want.shape)
    (y, idx), (gx,) = mx.vjp(lambda a: list(F.max_pool3d(a, k, s, p, d, ceil, True)), [x],
                             [to_mx(g), mx.zeros(want.shape, mx.int64)])
    assert_close(y, want)
    np.testing.assert_array_equal(np.array(idx), want_idx)
    assert_close(gx, vjp(g))


@settings(max_examples=20, deadline=None)
@given(sizes=_sizes, k=st.tuples(*[st.integers(1, 3)] * 3), s=st.tuples(*[st.integers(1, 3)] * 3),
       ceil=st.booleans(), cip=st.booleans(), pad=st.data(), seed=st.integers(0, 99))
def test_random_avg_pool_configurations(sizes, k, s, ceil, cip, pad, seed):
    p = tuple(pad.draw(st.integers(0, ki // 2)) for ki in k)
    if any(n + 2 * pi < ki for n, pi, ki in zip(sizes, p, k)):
        return
    rng = np.random.default_rng(seed)
    x, xr = rounded(rng, (1, 2, *sizes))
    want, vjp = ref.avg_pool3d(xr, k, s, p, ceil, cip, None)
    g = rng.normal(size=want.shape)
    y, (gx,) = mx.vjp(lambda a: F.avg_pool3d(a, k, s, p, ceil, cip), [x], [to_mx(g)])
    assert_close(y[0], want)
    assert_close(gx, vjp(g))


@settings(max_examples=15, deadline=None)
@given(groups=st.sampled_from([1, 2]), k=st.tuples(*[st.integers(1, 3)] * 3),
       s=st.tuples(*[st.integers(1, 3)] * 3), d=st.tuples(*[st.integers(1, 2)] * 3),
       extra=st.data(), seed=st.integers(0, 99))
def test_random_conv_transpose_configurations(groups, k, s, d, extra, seed):
    p = tuple(extra.draw(st.integers(0, 2)) for _ in range(3))
    op = tuple(extra.draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d))
    sizes = (2, 3, 3)
    if any((n - 1) * si - 2 * pi + di * (ki - 1) + oi + 1 < 1
           for n, si, pi, di, ki, oi in zip(sizes, s, p, d, k, op)):
        return
    rng = np.random.default_rng(seed)
    x, xr = rounded(rng, (2, 2, *sizes))
    w, wr = rounded(rng, (2, 4 // groups, *k))
    b, br = rounded(rng, (4,))
    want, vjp = ref.conv_transpose3d(xr, wr, br, s, p, op, groups, d)
    g = rng.normal(size=want.shape)
    y, (gx, gw, gb) = mx.vjp(lambda a, ww, bb: F.conv_transpose3d(a, ww, bb, s, p, op, groups, d),
                             [x, w, b], [to_mx(g)])
    assert_close(y[0], want)
    dx, dw, db = vjp(g)
    assert_close(gx, dx)
    assert_close(gw, dw)
    assert_close(gb, db)
