"""The 3-D pad modules against torch.nn's, in every padding form, with repr and errors."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx import nn as lnn

torch = pytest.importorskip("torch", reason="the pad modules are checked against torch.nn")

CASES = [
    ("ConstantPad3d", (1, 2.5)),
    ("ConstantPad3d", ((1, 0, 2, 1, 0, 3), -1.0)),
    ("ZeroPad3d", (2,)),
    ("ZeroPad3d", ((0, 1, 2, 0, 1, 1),)),
    ("ZeroPad3d", ((-1, 1, 0, 2, 1, -1),)),  # negative amounts crop
    ("ReflectionPad3d", (1,)),
    ("ReflectionPad3d", ((2, 0, 1, 3, 0, 1),)),
    ("ReplicationPad3d", ((3, 1, 0, 2, 1, 0),)),
    ("CircularPad3d", ((1, 2, 2, 0, 0, 1),)),
]


@pytest.mark.parametrize("name, args", CASES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5, 6), (3, 4, 5, 6)])
def test_matches_torch(name, args, shape):
    ours, theirs = getattr(lnn, name)(*args), getattr(torch.nn, name)(*args)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = theirs(xt)
    cot = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    (yt * torch.from_numpy(cot)).sum().backward()
    y, grad = mx.vjp(ours, [mx.array(x)], [mx.array(cot)])
    np.testing.assert_array_equal(np.array(y[0]), yt.detach().numpy())
    np.testing.assert_allclose(np.array(grad[0]), xt.grad.numpy(), rtol=1e-6, atol=1e-6)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("call, error, match", [
    (lambda: lnn.ZeroPad3d((1, 1)), ValueError, "sequence of 6 ints"),
    (lambda: lnn.ReflectionPad3d(1.5), TypeError, "padding"),
    (lambda: lnn.ConstantPad3d(1, "a"), TypeError, "value"),
    (lambda: lnn.ReflectionPad3d(4)(mx.zeros((1, 1, 4, 4, 4))), ValueError, "smaller than the padded"),
    (lambda: lnn.ReplicationPad3d(1)(mx.zeros((2, 4, 4))), ValueError, "needs a 4-D or 5-D input"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
