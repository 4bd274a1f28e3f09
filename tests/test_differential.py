"""Random valid Conv3d configurations against PyTorch: forward, first and second derivatives.

Every padding mode, groups (depthwise with multipliers included), 'same' and
'valid', bias on and off, and workspace budgets from 0 (the finest split) to
unlimited, in float32.  The composition is PyTorch's own ``Conv3d``: a
non-zero padding mode pads explicitly, then convolves without padding.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lucid_mlx
import lucid_mlx.nn.functional as F

torch = pytest.importorskip("torch", reason="PyTorch is the oracle of the differential test")
TF = torch.nn.functional

MODES = ("zeros", "reflect", "replicate", "circular")
BUDGETS = (0, 64 * 2**10, 2**20, None)


@st.composite
def configs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    padding = draw(st.sampled_from(["same", "valid", "int", "tuple"]))
    stride = (1, 1, 1) if padding == "same" else tuple(draw(st.integers(1, 2)) for _ in range(3))
    if padding == "int":
        padding = draw(st.integers(0, 2))
    elif padding == "tuple":
        padding = tuple(draw(st.integers(0, 2)) for _ in range(3))
    mode = draw(st.sampled_from(MODES))
    pads = _pairs(padding, kernel, dilation)
    # Each axis leaves room for one output, and the non-zero modes need
    # larger sizes than their padding ('reflect': strictly larger).
    size = tuple(
        max(d * (k - 1) + 1 - lo - hi, max(lo, hi) + 1, 1) + draw(st.integers(0, 3))
        for k, d, (lo, hi) in zip(kernel, dilation, pads)
    )
    return dict(n=draw(st.integers(1, 2)), c_in=c_in, c_out=c_out, groups=groups, kernel=kernel,
                stride=stride, dilation=dilation, padding=padding, mode=mode, size=size,
                bias=draw(st.booleans()), budget=draw(st.sampled_from(BUDGETS)),
                seed=draw(st.integers(0, 2**16)))


def _pairs(padding, kernel, dilation):
    if padding == "same":
        return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]
    if padding == "valid":
        return [(0, 0)] * 3
    p = (padding,) * 3 if isinstance(padding, int) else padding
    return [(v, v) for v in p]


def _conv(lib, pad_fn, conv_fn, cfg):
    """PyTorch's Conv3d composition on either library's functional ops."""
    pairs = _pairs(cfg["padding"], cfg["kernel"], cfg["dilation"])
    torch_order = [v for lo_hi in reversed(pairs) for v in lo_hi]

    def f(x, w, b):
        if cfg["mode"] != "zeros":
            mode = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}[cfg["mode"]]
            x = pad_fn(x, torch_order, mode=mode)
            padding = 0
        else:
            padding = cfg["padding"]
        return conv_fn(x, w, b, stride=cfg["stride"], padding=padding, dilation=cfg["dilation"],
                       groups=cfg["groups"])

    return f


def _derivatives(f, grad, x, w, b):
    """y, (gx, gw, gb) of sum(y^2)/2, and the gradients of |gx|^2 w.r.t. w and x."""
    return f, grad, x, w, b


@settings(max_examples=30, deadline=None, derandomize=True)
@given(cfg=configs())
def test_random_configurations_match_torch(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["n"], cfg["c_in"], *cfg["size"])).astype(np.float32)
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel"])).astype(np.float32)
    b = rng.standard_normal(cfg["c_out"]).astype(np.float32) if cfg["bias"] else None

    lucid_mlx.set_workspace_limit(cfg["budget"])
    try:
        f = _conv(mx, lambda x, p, mode: F.pad(x, tuple(p), mode=mode), F.conv3d, cfg)
        xm, wm = mx.array(x), mx.array(w)
        bm = None if b is None else mx.array(b)
        y = f(xm, wm, bm)
        args = [xm, wm] + ([bm] if b is not None else [])

        def loss(*a):
            return (f(a[0], a[1], a[2] if len(a) > 2 else None) ** 2).sum() / 2

        firsts = mx.grad(loss, argnums=tuple(range(len(args))))(*args)

        def input_grad_norm(w, x):
            gx = mx.grad(lambda x: loss(x, w, *args[2:]))(x)
            return (gx**2).sum()

        seconds = mx.grad(input_grad_norm, argnums=(0, 1))(wm, xm)
        mx.eval(y, firsts, seconds)
    finally:
        lucid_mlx.reset_workspace_limit()

    tf = _conv(torch, lambda x, p, mode: TF.pad(x, p, mode=mode), TF.conv3d, cfg)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    ty = tf(tx, tw, tb)
    t_args = [tx, tw] + ([tb] if tb is not None else [])
    t_firsts = torch.autograd.grad((ty**2).sum() / 2, t_args, create_graph=True)
    t_seconds = torch.autograd.grad((t_firsts[0] ** 2).sum(), [tw, tx])

    pairs = [("output", y, ty)] + [
        (f"first derivative {i}", a, t) for i, (a, t) in enumerate(zip(firsts, t_firsts))
    ] + [("d2/dw", seconds[0], t_seconds[0]), ("d2/dx", seconds[1], t_seconds[1])]
    for name, got, want in pairs:
        want = want.detach().double().numpy()
        scale = max(1.0, np.abs(want).max())
        np.testing.assert_allclose(np.array(got), want, rtol=0, atol=3e-5 * scale, err_msg=f"{name}: {cfg}")
