"""Derivatives of every order through every conv3d path, against PyTorch's double backward.

The paths that compute values in steps (depthwise sums, the workspace
splitter, the Metal kernels) used to return zeros for second derivatives;
here each path, split and unsplit, gives PyTorch's d2/dx2, d2/dxdw and
Hessian-vector products (jvp of the input gradient).
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx
import lucid_mlx.nn.functional as F
from lucid_mlx.kernels import library
from lucid_mlx.ops import dispatch
from metal_shim import harness

torch = pytest.importorskip("torch", reason="PyTorch is the oracle of the second derivatives")


@pytest.fixture(autouse=True)
def _restore():
    yield
    lucid_mlx.reset_workspace_limit()
    dispatch.reset()


# (input shape, out channels, kernel, conv3d keyword arguments)
CASES = [
    ((2, 4, 6, 5, 5), 4, 3, dict(padding=1)),  # dense, stride 1: input gradient by slabs when split
    ((2, 4, 7, 5, 6), 6, (3, 2, 3), dict(stride=(2, 1, 2), padding=(1, 0, 1))),  # dense, strided
    ((2, 4, 6, 5, 5), 6, 3, dict(padding=1, groups=2)),  # one convolution per group
    ((2, 4, 6, 5, 5), 8, 3, dict(padding=1, groups=4, stride=2)),  # depthwise, multiplier 2
    ((1, 3, 8, 6, 5), 3, 3, dict(padding=2, groups=3, dilation=(2, 1, 2))),  # depthwise, dilated
]


def _lucid(x, w, kwargs, v, forward_mode=True):
    f = lambda x, w: F.conv3d(x, w, **kwargs)  # noqa: E731

    def input_grad(x, w):
        return mx.grad(lambda x: (f(x, w) ** 2).sum())(x)

    gw, gx = mx.grad(lambda w, x: (input_grad(x, w) ** 2).sum(), argnums=(0, 1))(w, x)
    if forward_mode:
        _, (hv,) = mx.jvp(lambda x: input_grad(x, w), [x], [v])
    else:
        # Reverse over reverse: the gradient of <input gradient, v>.
        hv = mx.grad(lambda x: (input_grad(x, w) * v).sum())(x)
    mx.eval(gw, gx, hv)
    return [np.array(a) for a in (gw, gx, hv)]


def _torch(x, w, kwargs, v):
    tx = torch.tensor(np.array(x), requires_grad=True)
    tw = torch.tensor(np.array(w), requires_grad=True)
    y = torch.nn.functional.conv3d(tx, tw, **kwargs)
    (g,) = torch.autograd.grad((y**2).sum(), tx, create_graph=True)
    gw, gx = torch.autograd.grad((g**2).sum(), [tw, tx], retain_graph=True)
    (hv,) = torch.autograd.grad(g, tx, grad_outputs=torch.tensor(np.array(v)))
    return [a.numpy() for a in (gw, gx, hv)]


def _inputs(shape, c_out, kernel, groups):
    ks = kernel if isinstance(kernel, tuple) else (kernel,) * 3
    keys = mx.random.split(mx.random.key(3), 3)
    x = mx.random.normal(shape, key=keys[0])
    w = mx.random.normal((c_out, shape[1] // groups, *ks), key=keys[1])
    return x, w, mx.random.normal(shape, key=keys[2])


def _check(got, want):
    for name, a, b in zip(("d2/dw dx", "d2/dx2", "jvp of the input gradient"), got, want):
        scale = np.abs(b).max()
        assert scale > 0, name
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * scale, err_msg=name)


@pytest.mark.parametrize("limit", [None, 0], ids=["unsplit", "split"])
@pytest.mark.parametrize("shape, c_out, kernel, kwargs", CASES)
def test_second_derivatives_match_torch(shape, c_out, kernel, kwargs, limit):
    x, w, v = _inputs(shape, c_out, kernel, kwargs.get("groups", 1))
    lucid_mlx.set_workspace_limit(limit)
    conv_plan = dispatch.conv3d_plan(x, w, *_geometry(w, kwargs))
    assert (conv_plan.split is not None) == (limit == 0)
    # An unsplit dense layer is MLX's own convolution (so that shapeless
    # compilation keeps working), and MLX 0.32's convolution has no jvp:
    # there the Hessian-vector product is taken reverse over reverse.
    forward_mode = not (conv_plan.path is dispatch.DENSE and conv_plan.split is None)
    _check(_lucid(x, w, kwargs, v, forward_mode), _torch(x, w, kwargs, v))


def test_forward_mode_through_an_unsplit_dense_layer_is_mlx_s_limit():
    x, w, v = _inputs((1, 2, 4, 4, 4), 2, 3, 1)
    with pytest.raises(ValueError, match="jvp.*Convolution"):
        mx.jvp(lambda x: F.conv3d(x, w, padding=1), [x], [v])


def _geometry(w, kwargs):
    from lucid_mlx import _args

    stride = _args.triple(kwargs.get("stride", 1), "stride")
    dilation = _args.triple(kwargs.get("dilation", 1), "dilation")
    pads = _args.conv_padding(kwargs.get("padding", 0), tuple(w.shape[2:]), stride, dilation)
    return stride, pads, dilation, kwargs.get("groups", 1)


def test_bias_second_derivative_through_the_functional_op():
    # d/db of |dL/dx|^2 is zero, d/db of |dL/dw|^2 is not: the bias enters dL/dw.
    x, w, _ = _inputs((1, 2, 4, 4, 4), 2, 3, 2)
    b = mx.array([0.5, -1.0])

    def weight_grad(b):
        return mx.grad(lambda w: (F.conv3d(x, w, b, padding=1, groups=2) ** 2).sum())(w)

    got = mx.grad(lambda b: (weight_grad(b) ** 2).sum())(b)
    tx, tw = torch.tensor(np.array(x)), torch.tensor(np.array(w), requires_grad=True)
    tb = torch.tensor(np.array(b), requires_grad=True)
    (g,) = torch.autograd.grad((torch.nn.functional.conv3d(tx, tw, tb, padding=1, groups=2) ** 2).sum(),
                               tw, create_graph=True)
    (want,) = torch.autograd.grad((g**2).sum(), tb)
    np.testing.assert_allclose(np.array(got), want.numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(harness.compiler() is None, reason="no C++ compiler to run the kernel bodies on the CPU")
@pytest.mark.parametrize("limit", [None, 0], ids=["unsplit", "split"])
def test_second_derivatives_through_the_metal_kernels(monkeypatch, limit):
    # The kernels' bodies run on the CPU through the shim; Metal is mocked present.
    monkeypatch.setattr(library, "launch", harness.cpu_launch)
    monkeypatch.setattr(dispatch, "metal_available", lambda: True)
    monkeypatch.setattr(dispatch, "stream_on_gpu", lambda: True)
    shape, c_out, kernel, kwargs = CASES[3]
    x, w, v = _inputs(shape, c_out, kernel, kwargs["groups"])
    lucid_mlx.set_workspace_limit(limit)
    assert dispatch.conv3d_plan(x, w, *_geometry(w, kwargs)).path.name == "kernel"
    _check(_lucid(x, w, kwargs, v), _torch(x, w, kwargs, v))
