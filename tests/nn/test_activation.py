"""PReLU, LeakyReLU, SELU, Softmax and LogSoftmax against torch.nn, outputs and gradients."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx import nn as lnn

torch = pytest.importorskip("torch", reason="the activations are checked against torch.nn")


def _compare(ours, theirs, shape, seed=0, params=()):
    """Output, input gradient and parameter gradients of sum(f(x) * cot)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    cot = rng.standard_normal(shape).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = theirs(xt)
    (yt * torch.from_numpy(cot)).sum().backward()

    def loss(p, xx):
        ours.update(p)
        return (ours(xx) * mx.array(cot)).sum()

    y = ours(mx.array(x))
    np.testing.assert_allclose(np.array(y), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    gp, gx = mx.grad(loss, argnums=(0, 1))(ours.trainable_parameters(), mx.array(x))
    np.testing.assert_allclose(np.array(gx), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    for name in params:
        np.testing.assert_allclose(np.array(gp[name]), getattr(theirs, name).grad.numpy(), rtol=1e-4,
                                   atol=1e-5)


@pytest.mark.parametrize("num, shape", [
    (1, (2, 3, 4, 5, 6)),
    (5, (2, 5, 3, 4, 5)),  # W == C: mlx.nn.PReLU would scale along W
    (4, (3, 4)),
    (4, (2, 4, 7)),
    (1, (4,)),
])
def test_prelu_matches_torch(num, shape):
    t = torch.nn.PReLU(num)
    slopes = np.linspace(0.05, 0.6, num).astype(np.float32)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(slopes))
    m = lnn.PReLU(num)
    m.weight = mx.array(slopes)
    _compare(m, t, shape, params=("weight",))


def test_prelu_defaults_and_repr():
    m = lnn.PReLU(3, init=0.1)
    assert m.weight.shape == (3,) and np.allclose(np.array(m.weight), 0.1)
    assert repr(m) == repr(torch.nn.PReLU(3, init=0.1))
    assert np.allclose(np.array(lnn.PReLU().weight), 0.25)


@pytest.mark.parametrize("slope", [0.01, 0.2, 2.0, -0.5])
def test_leaky_relu_matches_torch_for_any_slope(slope):
    _compare(lnn.LeakyReLU(slope), torch.nn.LeakyReLU(slope), (2, 3, 4, 4, 4))


def test_selu_matches_torch():
    _compare(lnn.SELU(), torch.nn.SELU(), (2, 3, 4, 4, 4))


@pytest.mark.parametrize("dim, shape", [(None, (2, 3, 4, 4, 4)), (None, (3, 4, 5)), (1, (2, 3, 4, 4, 4)),
                                        (-1, (2, 3, 4, 4, 4)), (0, (5,))])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_matches_torch(dim, shape, log):
    ours = (lnn.LogSoftmax if log else lnn.Softmax)(dim)
    theirs = (torch.nn.LogSoftmax if log else torch.nn.Softmax)(dim)
    with pytest.warns(UserWarning) if dim is None else _no_warning():
        _compare(ours, theirs, shape)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("call, error, match", [
    (lambda: lnn.PReLU(3)(mx.zeros((2, 4, 3, 3, 3))), ValueError, "must have 3 channels on axis 1"),
    (lambda: lnn.PReLU(4)(mx.zeros((4,))), ValueError, "must have 4 channels on axis 1"),
    (lambda: lnn.PReLU(0), ValueError, "num_parameters"),
    (lambda: lnn.PReLU(2.0), TypeError, "num_parameters"),
    (lambda: lnn.PReLU(1, init="a"), TypeError, "init"),
    (lambda: lnn.PReLU()(np.zeros(3)), TypeError, "mlx.core.array"),
    (lambda: lnn.Softmax(dim=5)(mx.zeros((2, 3, 4, 4, 4))), ValueError, "out of range"),
    (lambda: lnn.LeakyReLU("x"), TypeError, "negative_slope"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
