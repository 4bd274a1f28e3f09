"""MaxPool3d, AvgPool3d and the adaptive pools against NumPy and PyTorch."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference_layers as ref
from arrays import assert_close, rounded, to_mx, to_np
from isolated import assert_runs
from lucid_mlx import nn
from lucid_mlx.nn import functional as F
from refusals import Refusal, refusal_tests

SHAPE = (2, 2, 5, 6, 7)

# (kernel_size, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    (2, None, 0, 1, False),
    (3, 2, 1, 1, False),
    (3, 2, 1, 1, True),
    ((2, 3, 1), (1, 2, 3), (1, 1, 0), 1, False),
    ((2, 3, 3), (2, 1, 2), (0, 1, 1), (2, 1, 2), True),
    (2, 2, 1, 2, True),
    (2, 2, 0, 1, True),  # odd sizes: ceil_mode adds a partial last window
]


def _vjp(fn, x, g):
    return mx.vjp(fn, [x], [mx.array(g.astype(np.float32)).astype(x.dtype)])[1][0]


@pytest.mark.parametrize("k, s, p, d, ceil", MAX_CASES)
def test_max_pool3d_matches_reference(k, s, p, d, ceil):
    rng = np.random.default_rng(0)
    x, xr = rounded(rng, SHAPE)
    y, idx = F.max_pool3d(x, k, s, p, d, ceil, return_indices=True)
    want, want_idx, vjp = ref.max_pool3d(xr, ref_t(k), ref_t(s or k), ref_t(p), ref_t(d), ceil)
    assert_close(y, want)
    assert idx.dtype == mx.int64
    np.testing.assert_array_equal(np.array(idx), want_idx)
    g = rng.normal(size=want.shape)
    assert_close(_vjp(lambda a: F.max_pool3d(a, k, s, p, d, ceil), x, g), vjp(g))


def ref_t(v):
    return v if isinstance(v, tuple) else (v,) * 3


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_pools_low_precision(dtype):
    rng = np.random.default_rng(1)
    x, xr = rounded(rng, SHAPE, dtype)
    y = nn.MaxPool3d(3, 2, 1)(x)
    assert y.dtype == dtype
    # A max selects an element: exact in any dtype.
    np.testing.assert_array_equal(to_np(y), ref.max_pool3d(xr, (3,) * 3, (2,) * 3, (1,) * 3, (1,) * 3, False)[0])
    y = F.avg_pool3d(x, 3, 2, 1, True, False)
    assert y.dtype == dtype
    assert_close(y, ref.avg_pool3d(xr, (3,) * 3, (2,) * 3, (1,) * 3, True, False, None)[0])
    assert_close(F.adaptive_avg_pool3d(x, (2, 3, 4)), ref.adaptive_avg_pool3d(xr, (2, 3, 4))[0])
    assert_close(F.adaptive_max_pool3d(x, (2, 3, 4)), ref.adaptive_max_pool3d(xr, (2, 3, 4))[0])


def test_max_pool3d_hand_computed_and_ties():
    x = mx.arange(64, dtype=mx.float32).reshape(1, 1, 4, 4, 4)
    y = nn.MaxPool3d(2)(x)
    # Each 2x2x2 block's maximum is its last element: (2d+1)*16 + (2h+1)*4 + 2w+1.
    want = np.array([[[[21, 23], [29, 31]], [[53, 55], [61, 63]]]], np.float32)
    np.testing.assert_array_equal(np.array(y)[0], want)
    # All-equal input: every window's gradient goes to its first element only
    # (PyTorch's rule), not split between the tied maxima.
    ones = mx.ones((1, 1, 4, 4, 4))
    grad = np.array(mx.grad(lambda a: nn.MaxPool3d(2)(a).sum())(ones))[0, 0]
    expected = np.zeros((4, 4, 4))
    expected[::2, ::2, ::2] = 1
    np.testing.assert_array_equal(grad, expected)


def test_max_pool3d_nan_propagates_and_shapes():
    x = mx.zeros((1, 1, 4, 4, 4))
    x[0, 0, 1, 1, 1] = mx.nan
    y = np.array(F.max_pool3d(x, 2))
    assert np.isnan(y[0, 0, 0, 0, 0]) and not np.isnan(y[0, 0, 1, 1, 1])
    assert F.max_pool3d(mx.zeros((0, 3, 4, 4, 4)), 2).shape == (0, 3, 2, 2, 2)
    assert F.max_pool3d(mx.zeros((3, 4, 4, 4)), 2).shape == (3, 2, 2, 2)  # unbatched
    assert nn.MaxPool3d(3, stride=2)(mx.zeros((2, 1, 50, 44, 31))).shape == (2, 1, 24, 21, 15)


# (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [
    (2, None, 0, False, True, None),
    (3, 2, 1, False, True, None),
    (3, 2, 1, True, True, None),
    (3, 2, 1, True, False, None),
    ((3, 2, 3), (2, 1, 2), (1, 1, 0), True, False, None),
    (3, 2, 1, False, True, 5),
]


@pytest.mark.parametrize("k, s, p, ceil, cip, div", AVG_CASES)
def test_avg_pool3d_matches_reference(k, s, p, ceil, cip, div):
    rng = np.random.default_rng(2)
    x, xr = rounded(rng, SHAPE)
    y = F.avg_pool3d(x, k, s, p, ceil, cip, div)
    want, vjp = ref.avg_pool3d(xr, ref_t(k), ref_t(s or k), ref_t(p), ceil, cip, div)
    assert_close(y, want)
    g = rng.normal(size=want.shape)
    assert_close(_vjp(lambda a: F.avg_pool3d(a, k, s, p, ceil, cip, div), x, g), vjp(g))


def test_avg_pool3d_hand_computed():
    x = mx.arange(64, dtype=mx.float32).reshape(1, 1, 4, 4, 4)
    # The mean of a 2x2x2 block is its first element + (16 + 4 + 1) / 2.
    y = np.array(nn.AvgPool3d(2)(x))[0, 0]
    np.testing.assert_array_equal(y, np.array([[[0, 2], [8, 10]], [[32, 34], [40, 42]]]) + 10.5)


@pytest.mark.parametrize("out", [(3, 4, 5), 1, (None, 3, 2), (5, 6, 7), (4, 3, 6)])
def test_adaptive_pools_match_reference(out):
    rng = np.random.default_rng(3)
    x, xr = rounded(rng, SHAPE)
    outs = tuple(n if o is None else o for o, n in zip(ref_t(out), SHAPE[2:]))
    g = rng.normal(size=(*SHAPE[:2], *outs))
    want, vjp = ref.adaptive_avg_pool3d(xr, outs)
    assert_close(F.adaptive_avg_pool3d(x, out), want)
    assert_close(_vjp(lambda a: F.adaptive_avg_pool3d(a, out), x, g), vjp(g))
    want, want_idx, vjp = ref.adaptive_max_pool3d(xr, outs)
    y, idx = nn.AdaptiveMaxPool3d(out, return_indices=True)(x)
    assert_close(y, want)
    np.testing.assert_array_equal(np.array(idx), want_idx)
    assert_close(_vjp(lambda a: F.adaptive_max_pool3d(a, out), x, g), vjp(g))


def test_reprs_match_pytorch_format():
    assert repr(nn.MaxPool3d(2)) == "MaxPool3d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool3d((3, 2, 2), stride=(2, 1, 2))) == \
        "AvgPool3d(kernel_size=(3, 2, 2), stride=(2, 1, 2), padding=0)"
    assert repr(nn.AdaptiveAvgPool3d((5, None, 7))) == "AdaptiveAvgPool3d(output_size=(5, None, 7))"
    assert repr(nn.AdaptiveMaxPool3d(1)) == "AdaptiveMaxPool3d(output_size=1)"
    assert nn.MaxPool3d(2).parameters() == {}


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: nn.MaxPool3d(0), ValueError, r"`kernel_size` values must be >= 1, got 0"),
        (lambda: nn.MaxPool3d((2, 2)), ValueError, r"`kernel_size` must be an int or a sequence of 3"),
        (lambda: nn.MaxPool3d(2.0), TypeError, r"`kernel_size` must be an int"),
        (lambda: nn.MaxPool3d(2, stride=0), ValueError, r"`stride` values must be >= 1"),
        (lambda: nn.MaxPool3d(3, padding=2), ValueError, r"`padding` must be at most half of `kernel_size`.*padding=2.*kernel_size=3"),
        (lambda: nn.MaxPool3d(3, padding=-1), ValueError, r"`padding` values must be >= 0"),
        (lambda: nn.MaxPool3d(2, dilation=0), ValueError, r"`dilation` values must be >= 1"),
        (lambda: nn.MaxPool3d(2, ceil_mode=1), TypeError, r"`ceil_mode` must be a bool"),
        (lambda: nn.AvgPool3d(2, divisor_override=0), ValueError, r"`divisor_override` must be >= 1"),
        (lambda: nn.AdaptiveAvgPool3d((2, 2)), ValueError, r"`output_size` must be an int or a sequence of 3"),
        (lambda: nn.AdaptiveMaxPool3d(0), ValueError, r"`output_size` must be >= 1, got 0"),
        (lambda: F.max_pool3d(mx.zeros((1, 1, 2, 2, 2)), 3), ValueError,
         r"max_pool3d: input of shape \(1, 1, 2, 2, 2\) is too small.*output would be \(0, 0, 0\)"),
        (lambda: F.avg_pool3d(mx.zeros((2, 2, 2)), 2), ValueError, r"`input` must be \(N, C, D, H, W\).*got shape \(2, 2, 2\)"),
        (lambda: F.max_pool3d(mx.zeros((1, 1, 2, 2, 2), mx.int32), 2), TypeError, r"`input` must be float32, float16 or bfloat16, got mlx.core.int32"),
        (lambda: F.adaptive_avg_pool3d(np.zeros((1, 1, 2, 2, 2)), 1), TypeError, r"`input` must be an mlx.core.array"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- PyTorch parity

def _torch_check(fn_mx, fn_torch, x_np, rng):
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x_np, requires_grad=True)
    yt = fn_torch(xt)
    if isinstance(yt, tuple):
        yt = yt[0]
    g = rng.normal(size=tuple(yt.shape))
    yt.backward(torch.tensor(g))
    y, gx = mx.vjp(fn_mx, [mx.array(x_np.astype(np.float32))], [mx.array(g.astype(np.float32))])
    assert_close(y[0], yt.detach().numpy())
    assert_close(gx[0], xt.grad.numpy())


@pytest.mark.parametrize("k, s, p, d, ceil", MAX_CASES)
def test_max_pool3d_matches_torch(k, s, p, d, ceil):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, 7, 8, 9))
    module = nn.MaxPool3d(k, s, p, d, ceil_mode=ceil)
    tmod = torch.nn.MaxPool3d(k, s, p, d, ceil_mode=ceil)
    assert repr(module) == repr(tmod)
    _torch_check(module, tmod, x, rng)
    _, idx = F.max_pool3d(mx.array(x.astype(np.float32)), k, s, p, d, ceil, return_indices=True)
    _, tidx = torch.nn.functional.max_pool3d(torch.tensor(x), k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(np.array(idx), tidx.numpy())


@pytest.mark.parametrize("k, s, p, ceil, cip, div", AVG_CASES)
def test_avg_pool3d_matches_torch(k, s, p, ceil, cip, div):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    module = nn.AvgPool3d(k, s, p, ceil, cip, div)
    tmod = torch.nn.AvgPool3d(k, s, p, ceil, cip, div)
    assert repr(module) == repr(tmod)
    _torch_check(module, tmod, rng.normal(size=(2, 3, 7, 8, 9)), rng)


@pytest.mark.parametrize("out", [(3, 4, 5), 1, (None, 3, 2), (7, 8, 9), (5, 3, 7), (2, 6, 4)])
def test_adaptive_pools_match_torch(out):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 3, 7, 8, 9))
    _torch_check(nn.AdaptiveAvgPool3d(out), torch.nn.AdaptiveAvgPool3d(out), x, rng)
    _torch_check(nn.AdaptiveMaxPool3d(out), torch.nn.AdaptiveMaxPool3d(out), x, rng)
    assert repr(nn.AdaptiveMaxPool3d(out)) == repr(torch.nn.AdaptiveMaxPool3d(out))
    _, idx = F.adaptive_max_pool3d(mx.array(x.astype(np.float32)), out, return_indices=True)
    _, tidx = torch.nn.functional.adaptive_max_pool3d(torch.tensor(x), out, return_indices=True)
    np.testing.assert_array_equal(np.array(idx), tidx.numpy())


# ---------------------------------------------------------------------------
# Random configurations against the NumPy references

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


# ---------------------------------------------------------------------------
# Input PyTorch refuses

X5 = mx.zeros((1, 2, 4, 4, 4))
REFUSED = [
    Refusal("ceil_mode='yes'", lambda: F.max_pool3d(X5, 2, ceil_mode="yes"), TypeError,
            r"`ceil_mode` must be a bool, got 'yes'",
            lambda t: t.nn.functional.max_pool3d(t.zeros(1, 2, 4, 4, 4), 2, ceil_mode="yes")),
    Refusal("avg ceil_mode=1", lambda: F.avg_pool3d(X5, 2, ceil_mode=1), TypeError,
            r"`ceil_mode` must be a bool, got 1",
            lambda t: t.nn.functional.avg_pool3d(t.zeros(1, 2, 4, 4, 4), 2, ceil_mode=1)),
    Refusal("count_include_pad=0", lambda: F.avg_pool3d(X5, 2, count_include_pad=0), TypeError,
            r"`count_include_pad` must be a bool, got 0",
            lambda t: t.nn.functional.avg_pool3d(t.zeros(1, 2, 4, 4, 4), 2, count_include_pad=0)),
    Refusal("max 4-D, 0 channels", lambda: F.max_pool3d(mx.zeros((0, 4, 4, 4)), 2), ValueError,
            r"max_pool3d: the non-batch dimensions .* non-empty, got shape \(0, 4, 4, 4\)",
            lambda t: t.nn.functional.max_pool3d(t.zeros(0, 4, 4, 4), 2)),
    Refusal("avg 4-D, 0 channels", lambda: F.avg_pool3d(mx.zeros((0, 4, 4, 4)), 2), ValueError,
            r"avg_pool3d: the non-batch dimensions", lambda t: t.nn.functional.avg_pool3d(t.zeros(0, 4, 4, 4), 2)),
    Refusal("max 5-D, 0 channels", lambda: nn.MaxPool3d(2)(mx.zeros((2, 0, 4, 4, 4))), ValueError,
            r"max_pool3d: the non-batch dimensions", lambda t: t.nn.MaxPool3d(2)(t.zeros(2, 0, 4, 4, 4))),
    Refusal("max empty D padded", lambda: F.max_pool3d(mx.zeros((1, 1, 0, 4, 4)), 2, padding=1),
            ValueError, r"non-empty, got shape \(1, 1, 0, 4, 4\)",
            lambda t: t.nn.functional.max_pool3d(t.zeros(1, 1, 0, 4, 4), 2, padding=1)),
    Refusal("adaptive max 5-D, 0 channels", lambda: F.adaptive_max_pool3d(mx.zeros((1, 0, 4, 4, 4)), 2),
            ValueError, r"adaptive_max_pool3d: the non-batch dimensions",
            lambda t: t.nn.functional.adaptive_max_pool3d(t.zeros(1, 0, 4, 4, 4), 2)),
    Refusal("adaptive avg 5-D, 0 channels", lambda: F.adaptive_avg_pool3d(mx.zeros((1, 0, 4, 4, 4)), 2),
            ValueError, r"adaptive_avg_pool3d: the non-batch dimensions",
            lambda t: t.nn.functional.adaptive_avg_pool3d(t.zeros(1, 0, 4, 4, 4), 2)),
    Refusal("adaptive avg empty W", lambda: F.adaptive_avg_pool3d(mx.zeros((1, 2, 4, 4, 0)), 2),
            ValueError, r"non-empty, got shape \(1, 2, 4, 4, 0\)",
            lambda t: t.nn.functional.adaptive_avg_pool3d(t.zeros(1, 2, 4, 4, 0), 2)),
    # PyTorch takes any truthy return_indices; lucid_mlx's modules never did, nor now its functions.
    Refusal("return_indices=1", lambda: F.max_pool3d(X5, 2, return_indices=1), TypeError,
            r"`return_indices` must be a bool"),
]

test_refused, test_refused_by_torch_too = refusal_tests(REFUSED)


def test_empty_batches_are_still_pooled():
    """PyTorch's batch dimensions may be empty: a 5-D input's first, and, for
    the adaptive pools, a 4-D input's too."""
    assert F.avg_pool3d(mx.zeros((0, 2, 4, 4, 4)), 2).shape == (0, 2, 2, 2, 2)
    assert F.adaptive_max_pool3d(mx.zeros((0, 4, 4, 4)), 2).shape == (0, 2, 2, 2)
    assert F.adaptive_avg_pool3d(mx.zeros((0, 4, 4, 4)), (2, None, 1)).shape == (0, 2, 4, 1)


# ---------------------------------------------------------------------------
# Empty batches (each in its own process: MLX's SIGFPE would end the session)


@pytest.mark.parametrize("op", ["adaptive_avg_pool3d", "adaptive_max_pool3d"])
@pytest.mark.parametrize("shape, out", [((0, 2, 5, 7, 3), 3), ((0, 3, 7, 7, 7), (4, 4, 4)),
                                        ((0, 5, 5, 5), (2, 3, 2))], ids=str)
def test_empty_batch_gradient_of_adaptive_pooling(op, shape, out):
    """Overlapping bins gather with mx.take, whose vjp on an empty array killed
    the process (SIGFPE); PyTorch returns an empty output and gradient."""
    printed = assert_runs(f"""
        x = mx.zeros({shape})
        y = F.{op}(x, {out!r})
        g = mx.grad(lambda x: F.{op}(x, {out!r}).sum())(x)
        mx.eval(y, g)
        print(y.shape, g.shape)
    """)
    out3 = out if isinstance(out, tuple) else (out,) * 3
    assert printed.strip() == f"{shape[:-3] + out3} {shape}"
