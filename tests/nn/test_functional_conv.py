"""lucid_mlx.nn.functional.conv3d against the NumPy reference.

Forward and the three gradients (input, weight, bias) over a parameter
table (the non-zero padding modes as pad + conv3d, as nn.Conv3d does), a
hypothesis search over random valid configurations, and the empty batch.
pad alone is in test_functional_pad.py.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lucid_mlx.nn.functional as F
from arrays import DTYPES, assert_close, rounded, to_np, torch_pad_order
from reference import (
    conv3d_grads_ref,
    conv3d_ref,
    pad_grad_ref,
    pad_ref,
    padding_pairs,
    triple,
)


@dataclass(frozen=True)
class Case:
    name: str
    c_in: int
    c_out: int
    kernel: object
    size: tuple = (5, 6, 7)
    n: int = 2
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"


CASES = [
    Case("plain", 2, 3, 3),
    Case("no_bias", 2, 3, 3, bias=False, padding=1),
    Case("asymmetric_kernel", 2, 4, (3, 1, 2), padding=(1, 0, 2)),
    Case("asymmetric_padding_tuple", 3, 2, (2, 3, 1), padding=(0, 2, 1), bias=False),
    Case("stride_2", 2, 3, 3, stride=2),
    Case("stride_per_dim", 2, 3, (2, 3, 3), stride=(2, 1, 3), padding=1),
    Case("dilation_2", 2, 3, 2, dilation=2, size=(5, 5, 6)),
    Case("dilation_per_dim_same", 2, 3, 3, dilation=(1, 2, 3), padding="same", size=(4, 6, 8)),
    Case("same_even_kernel", 2, 3, (2, 4, 2), padding="same"),
    Case("same_even_kernel_dilated", 3, 2, (2, 2, 4), dilation=(3, 1, 2), padding="same", size=(6, 5, 9)),
    Case("valid", 2, 3, (3, 2, 4), padding="valid"),
    Case("pointwise", 4, 5, 1),
    Case("kernel_fills_input", 2, 3, (5, 6, 7), n=3),
    Case("stride_dilation_padding", 2, 2, 3, stride=(2, 3, 1), dilation=(2, 1, 2), padding=(2, 1, 0), size=(7, 7, 7)),
    Case("single_channel", 1, 4, 3, n=3, padding=1, size=(4, 4, 4)),
    Case("groups_2", 4, 6, 3, groups=2, padding=1),
    Case("groups_2_same_even", 4, 2, (2, 3, 4), groups=2, padding="same", dilation=(1, 2, 1)),
    Case("groups_3_strided", 6, 3, 3, groups=3, stride=2, padding=1, size=(6, 7, 5)),
    Case("groups_3_no_bias", 3, 6, (1, 2, 3), groups=3, bias=False, dilation=(1, 2, 1)),
    Case("groups_4_out_one_each", 8, 4, 2, groups=4, size=(4, 5, 4)),
    Case("depthwise", 4, 4, 3, groups=4, padding=1),
    Case("depthwise_no_bias_asym", 3, 3, (3, 1, 2), groups=3, bias=False, padding="same", dilation=2),
    Case("depthwise_strided", 4, 4, 3, groups=4, stride=(2, 2, 1), padding=(1, 0, 1)),
    Case("depthwise_multiplier_2", 3, 6, 2, groups=3, padding=1),
    Case("depthwise_multiplier_3_strided", 2, 6, 3, groups=2, stride=2, size=(6, 6, 6)),
    Case("reflect", 2, 3, 3, padding=1, padding_mode="reflect"),
    Case("reflect_same_even", 2, 3, (2, 4, 3), padding="same", padding_mode="reflect"),
    Case("reflect_depthwise", 3, 3, 3, groups=3, padding=(2, 1, 3), padding_mode="reflect", size=(5, 6, 7)),
    Case("replicate", 2, 3, 3, padding=(1, 2, 0), padding_mode="replicate"),
    Case("replicate_same_grouped", 4, 4, (3, 2, 2), groups=2, padding="same", padding_mode="replicate", bias=False),
    Case("circular", 2, 3, 3, padding=2, padding_mode="circular"),
    Case("circular_strided_grouped", 4, 6, 3, groups=2, stride=2, padding=(1, 3, 2), padding_mode="circular"),
    Case("circular_same_even_depthwise_mult", 2, 4, (4, 2, 3), groups=2, padding="same", padding_mode="circular"),
    # Wider layers, so that strategies chosen by channel count or size are reached too.
    Case("wide_dense", 16, 24, 3, n=1, padding=1, size=(6, 7, 8)),
    Case("wide_groups_8", 16, 32, 3, groups=8, n=1, padding=1, size=(6, 7, 8)),
    Case("wide_groups_16_strided", 32, 16, (3, 2, 3), groups=16, n=1, stride=2, padding=(1, 0, 1), size=(8, 7, 9)),
    Case("wide_depthwise", 32, 32, 3, groups=32, padding=1, size=(8, 8, 8)),
    Case("wide_depthwise_mult_same_even", 16, 48, (2, 4, 2), groups=16, n=1, padding="same", size=(7, 8, 6)),
    Case("wide_depthwise_reflect", 24, 24, 3, groups=24, n=1, padding=1, padding_mode="reflect", size=(6, 9, 7)),
]


BY_NAME = {c.name: c for c in CASES}


def _resolved_pairs(case: Case):
    return padding_pairs(case.padding, case.kernel, case.dilation)


def _make(case: Case, dtype, seed: int):
    rng = np.random.default_rng(seed)
    x, xn = rounded(rng, (case.n, case.c_in) + case.size, dtype)
    w_shape = (case.c_out, case.c_in // case.groups) + triple(case.kernel)
    w, wn = rounded(rng, w_shape, dtype, scale=0.5)
    b, bn = rounded(rng, (case.c_out,), dtype) if case.bias else (None, None)
    return (x, w, b), (xn, wn, bn)


def _lucid(case: Case):
    """The function under test: conv3d, or pad + conv3d for a non-zero padding mode."""
    if case.padding_mode == "zeros":
        def fn(x, w, b=None):
            return F.conv3d(x, w, b, case.stride, case.padding, case.dilation, case.groups)
    else:
        pad = torch_pad_order(_resolved_pairs(case))
        mode = case.padding_mode

        def fn(x, w, b=None):
            xp = F.pad(x, pad, mode=mode)
            return F.conv3d(xp, w, b, case.stride, 0, case.dilation, case.groups)
    return fn


def _reference(case: Case, xn, wn, bn, gy=None):
    """Forward, and with ``gy`` the gradients, of the same computation in NumPy."""
    pairs = _resolved_pairs(case)
    if case.padding_mode == "zeros":
        conv_in, conv_pad = xn, pairs
    else:
        conv_in, conv_pad = pad_ref(xn, torch_pad_order(pairs), case.padding_mode), 0
    args = (case.stride, conv_pad, case.dilation, case.groups)
    y = conv3d_ref(conv_in, wn, bn, *args)
    if gy is None:
        return y
    gx, gw, gb = conv3d_grads_ref(gy, conv_in, wn, *args, bias=case.bias)
    if case.padding_mode != "zeros":
        gx = pad_grad_ref(gx, xn.shape, torch_pad_order(pairs), case.padding_mode)
    return y, gx, gw, gb


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_forward_and_gradients(case, dtype):
    (x, w, b), (xn, wn, bn) = _make(case, dtype, seed=zlib.crc32(case.name.encode()))
    fn = _lucid(case)
    primals = [x, w] + ([b] if case.bias else [])

    y = fn(*primals)
    assert y.dtype == dtype
    want_y = _reference(case, xn, wn, bn)
    assert_close(y, want_y, what="output")

    gy, gyn = rounded(np.random.default_rng(7), want_y.shape, dtype)
    (y2,), grads = mx.vjp(fn, primals, [gy])
    _, gx, gw, gb = _reference(case, xn, wn, bn, gyn)
    assert_close(y2, want_y, what="vjp output")
    assert grads[0].dtype == dtype and grads[1].dtype == dtype
    assert_close(grads[0], gx, what="grad input")
    assert_close(grads[1], gw, what="grad weight")
    if case.bias:
        assert_close(grads[2], gb, what="grad bias")


GRAD_CASES = [c for c in CASES if c.name in ("plain", "groups_3_strided", "depthwise_multiplier_2", "reflect_same_even")]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.name for c in GRAD_CASES])
def test_grad_and_value_and_grad_transforms(case):
    """mx.grad and mx.value_and_grad on a scalar loss agree with the reference."""
    (x, w, b), (xn, wn, bn) = _make(case, mx.float32, seed=3)
    fn = _lucid(case)
    gy, gyn = rounded(np.random.default_rng(4), _reference(case, xn, wn, bn).shape)

    def loss(x, w, b):
        return (fn(x, w, b) * gy).sum()

    want_y, gx, gw, gb = _reference(case, xn, wn, bn, gyn)
    grads = mx.grad(loss, argnums=(0, 1, 2))(x, w, b)
    for got, want, what in zip(grads, (gx, gw, gb), ("input", "weight", "bias")):
        assert_close(got, want, what=f"mx.grad {what}")

    value, g_w = mx.value_and_grad(lambda w: loss(x, w, b))(w)
    assert value.item() == pytest.approx(float(np.vdot(want_y, gyn)), rel=1e-4, abs=1e-3)
    assert_close(g_w, gw, what="value_and_grad weight")


def test_second_call_with_other_shapes_is_not_stale():
    """Any caching inside the op must key on shapes: two geometries back to back."""
    for name in ("plain", "groups_2", "depthwise", "plain"):
        case = BY_NAME[name]
        (x, w, b), (xn, wn, bn) = _make(case, mx.float32, seed=11)
        assert_close(_lucid(case)(x, w, b), _reference(case, xn, wn, bn))


# ---------------------------------------------------------------------------
# Random valid configurations


@st.composite
def configurations(draw):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    padding_kind = draw(st.sampled_from(["int", "tuple", "same", "valid"]))
    if padding_kind == "same":
        stride = (1, 1, 1)
        padding = "same"
    else:
        stride = tuple(draw(st.integers(1, 3)) for _ in range(3))
        padding = {
            "int": draw(st.integers(0, 2)),
            "tuple": tuple(draw(st.integers(0, 2)) for _ in range(3)),
            "valid": "valid",
        }[padding_kind]
    pairs = padding_pairs(padding, kernel, dilation)
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    # Every spatial size at least the dilated kernel once padded, and larger
    # than a reflect pad (no smaller than a circular one).
    size = tuple(
        max(1, d * (k - 1) + 1 - lo - hi, lo + 1, hi + 1) + draw(st.integers(0, 4))
        for k, d, (lo, hi) in zip(kernel, dilation, pairs)
    )
    return Case(
        "hypothesis",
        c_in,
        c_out,
        kernel,
        size=size,
        n=draw(st.integers(1, 2)),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=draw(st.booleans()),
        padding_mode=mode,
    )


@settings(max_examples=50, deadline=None)
@given(case=configurations(), seed=st.integers(0, 2**16))
def test_random_configurations_against_reference(case, seed):
    (x, w, b), (xn, wn, bn) = _make(case, mx.float32, seed)
    fn = _lucid(case)
    primals = [x, w] + ([b] if case.bias else [])
    want_y = _reference(case, xn, wn, bn)
    gy, gyn = rounded(np.random.default_rng(seed + 1), want_y.shape)
    (y,), grads = mx.vjp(fn, primals, [gy])
    _, gx, gw, gb = _reference(case, xn, wn, bn, gyn)
    assert_close(y, want_y, what=f"output {case}")
    assert_close(grads[0], gx, what=f"grad input {case}")
    assert_close(grads[1], gw, what=f"grad weight {case}")
    if case.bias:
        assert_close(grads[2], gb, what=f"grad bias {case}")


# ---------------------------------------------------------------------------
# Layouts


@pytest.mark.parametrize("name", ["plain", "groups_2", "depthwise_multiplier_2", "circular"])
def test_unbatched_input(name):
    """A (C, D, H, W) input is one sample, as in PyTorch."""
    case = BY_NAME[name]
    (x, w, b), (xn, wn, bn) = _make(case, mx.float32, seed=9)
    want = _reference(case, xn[:1], wn, bn)[0]
    gy, gyn = rounded(np.random.default_rng(10), want.shape)
    (y,), grads = mx.vjp(_lucid(case), [x[0], w, b], [gy])
    _, gx, gw, gb = _reference(case, xn[:1], wn, bn, gyn[None])
    assert_close(y, want, what="output")
    assert_close(grads[0], gx[0], what="grad input")
    assert_close(grads[1], gw, what="grad weight")
    assert_close(grads[2], gb, what="grad bias")


@pytest.mark.parametrize("name", ["plain", "groups_3_strided", "depthwise", "depthwise_multiplier_2", "reflect"])
def test_non_contiguous_inputs(name):
    """Transposed and strided views give the same result as contiguous arrays."""
    case = BY_NAME[name]
    (x, w, b), (xn, wn, bn) = _make(case, mx.float32, seed=12)
    x_view = mx.array(np.ascontiguousarray(xn.transpose(0, 2, 3, 4, 1)).astype(np.float32))
    x_view = x_view.transpose(0, 4, 1, 2, 3)  # NCDHW view of channels-last memory
    w_view = mx.array(np.ascontiguousarray(wn[:, :, ::-1].astype(np.float32)))[:, :, ::-1]
    x_strided = mx.array(np.repeat(xn, 2, axis=-1).astype(np.float32))[..., ::2]
    want = _reference(case, xn, wn, bn)
    assert_close(_lucid(case)(x_view, w_view, b), want, what="transposed input, reversed weight")
    assert_close(_lucid(case)(x_strided, w, b), want, what="strided input")


# ---------------------------------------------------------------------------
# The empty batch


@pytest.mark.parametrize(
    "case",
    [
        BY_NAME[name]
        for name in (
            "no_bias", "stride_2", "same_even_kernel", "groups_2", "depthwise",
            "depthwise_multiplier_2", "reflect", "circular_strided_grouped",
        )
    ],
    ids=lambda c: c.name,
)
def test_empty_batch_returns_empty_output(case):
    (_, w, b), (_, wn, bn) = _make(case, mx.float32, seed=5)
    full = _reference(case, np.zeros((1, case.c_in) + case.size), wn, bn)
    x = mx.zeros((0, case.c_in) + case.size)
    y = _lucid(case)(x, w, b)
    mx.eval(y)
    assert tuple(y.shape) == (0,) + full.shape[1:]
    # PyTorch gives zero weight and bias gradients for an empty batch.
    g_w = mx.grad(lambda w: _lucid(case)(x, w, b).sum())(w)
    np.testing.assert_array_equal(to_np(g_w), np.zeros(wn.shape))
    if case.bias:
        g_b = mx.grad(lambda b: _lucid(case)(x, w, b).sum())(b)
        np.testing.assert_array_equal(to_np(g_b), np.zeros(bn.shape))
