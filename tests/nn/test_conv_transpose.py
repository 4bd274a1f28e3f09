"""ConvTranspose3d and functional.conv_transpose3d against NumPy and PyTorch."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference_layers as ref
from arrays import assert_close, rounded, to_mx
from lucid_mlx import nn
from lucid_mlx.nn import functional as F
from refusals import Refusal, refusal_tests

T3 = lambda v: v if isinstance(v, tuple) else (v,) * 3  # noqa: E731

# (C_in, C_out, kernel, stride, padding, output_padding, groups, dilation, bias)
CASES = [
    (3, 4, 2, 2, 0, 0, 1, 1, True),  # the U-Net upsampler
    (2, 3, 3, 1, 1, 0, 1, 1, False),
    (4, 6, 3, 2, 1, 1, 2, 1, True),
    (4, 4, 3, (1, 2, 2), (0, 1, 3), (0, 1, 1), 4, (2, 1, 1), True),  # depthwise; padding > d(k-1)
    (6, 3, (3, 2, 2), (2, 3, 1), (1, 0, 1), (1, 2, 0), 3, (1, 1, 2), False),
    (2, 3, 1, (1, 2, 1), 0, (0, 1, 0), 1, 1, True),  # output_padding on one axis only
    (2, 2, 3, 1, 0, 2, 1, 3, True),  # output_padding < dilation (stride 1)
    (3, 6, 3, 2, 3, 1, 3, 1, True),  # channel multiplier, output_padding < padding
]


def _params(c_in, c_out, k, groups, bias, rng, dtype=mx.float32):
    w, wr = rounded(rng, (c_in, c_out // groups, *T3(k)), dtype)
    b, br = rounded(rng, (c_out,), dtype) if bias else (None, None)
    return w, wr, b, br


@pytest.mark.parametrize("c_in, c_out, k, s, p, op, g, d, bias", CASES)
def test_matches_reference(c_in, c_out, k, s, p, op, g, d, bias):
    rng = np.random.default_rng(0)
    x, xr = rounded(rng, (2, c_in, 3, 4, 5))
    w, wr, b, br = _params(c_in, c_out, k, g, bias, rng)
    want, vjp = ref.conv_transpose3d(xr, wr, br, T3(s), T3(p), T3(op), g, T3(d))
    gy = rng.normal(size=want.shape)
    primals = [x, w] + ([b] if bias else [])

    def f(x, w, *b):
        return F.conv_transpose3d(x, w, b[0] if b else None, s, p, op, g, d)

    y, grads = mx.vjp(f, primals, [to_mx(gy)])
    assert_close(y[0], want, what="output")
    dx, dw, db = vjp(gy)
    assert_close(grads[0], dx, what="dx")
    assert_close(grads[1], dw, what="dweight")
    if bias:
        assert_close(grads[2], db, what="dbias")


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
@pytest.mark.parametrize("groups", [1, 2])
def test_low_precision(dtype, groups):
    rng = np.random.default_rng(1)
    x, xr = rounded(rng, (1, 4, 3, 3, 3), dtype)
    w, wr, b, br = _params(4, 4, 3, groups, True, rng, dtype)
    y = F.conv_transpose3d(x, w, b, 2, 1, 1, groups)
    assert y.dtype == dtype
    assert_close(y, ref.conv_transpose3d(xr, wr, br, (2,) * 3, (1,) * 3, (1,) * 3, groups, (1,) * 3)[0])


def test_hand_computed_tiles_the_kernel():
    # Stride == kernel: every input voxel stamps weight * value into its own block.
    w = mx.arange(8, dtype=mx.float32).reshape(1, 1, 2, 2, 2)
    x = mx.array([1.0, 10.0]).reshape(1, 1, 1, 1, 2)
    y = np.array(F.conv_transpose3d(x, w, stride=2))[0, 0]
    kernel = np.arange(8).reshape(2, 2, 2)
    np.testing.assert_array_equal(y, np.concatenate([kernel, 10 * kernel], axis=2))


@pytest.mark.parametrize("c_in, c_out, k, s, p, op, g, d, bias", CASES[2:5])
def test_is_the_adjoint_of_conv3d(c_in, c_out, k, s, p, op, g, d, bias):
    # <conv3d(y, W), x> == <y, conv_transpose3d(x, W)>: ties the op to lucid_mlx's
    # Conv3d (weight (C_out_t, C_in_t/g, ...) read as the conv's (C_out, C_in/g, ...)).
    rng = np.random.default_rng(2)
    x, xr = rounded(rng, (1, c_in, 3, 4, 5))
    w, _, _, _ = _params(c_in, c_out, k, g, False, rng)
    t = F.conv_transpose3d(x, w, None, s, p, op, g, d)
    y, yr = rounded(rng, t.shape)
    conv = F.conv3d(y, w, None, s, p, d, g)
    # conv3d's output may be larger than x by the output_padding rounding: compare on x's extent.
    conv = conv[:, :, : x.shape[2], : x.shape[3], : x.shape[4]]
    lhs = float((conv * x).sum())
    rhs = float((y * t).sum())
    assert math.isclose(lhs, rhs, rel_tol=1e-4, abs_tol=1e-3)


def test_module_init_shapes_output_size_and_edges():
    mx.random.seed(0)
    up = nn.ConvTranspose3d(4, 6, (2, 3, 3), stride=2, groups=2)
    assert up.weight.shape == (4, 3, 2, 3, 3) and up.bias.shape == (6,)
    bound = 1 / math.sqrt(3 * 2 * 3 * 3)  # PyTorch's fan-in: weight.shape[1] * kernel volume
    for a in (up.weight, up.bias):
        assert float(mx.abs(a).max()) <= bound and float(mx.abs(a).max()) > 0.8 * bound
    assert "bias" not in nn.ConvTranspose3d(2, 2, 2, bias=False)
    x = mx.zeros((1, 4, 3, 3, 3))
    assert up(x).shape == (1, 6, 6, 7, 7)
    assert up(x, output_size=(7, 8, 8)).shape == (1, 6, 7, 8, 8)
    assert up(x, output_size=(1, 6, 7, 7, 8)).shape == (1, 6, 7, 7, 8)
    assert up(x[0]).shape == (6, 6, 7, 7)  # unbatched
    assert up(mx.zeros((0, 4, 3, 3, 3))).shape == (0, 6, 6, 7, 7)
    assert nn.ConvTranspose3d(2, 2, 2, dtype=mx.bfloat16).weight.dtype == mx.bfloat16
    on_cpu = nn.ConvTranspose3d(4, 6, (2, 3, 3), stride=2, groups=2, device="cpu")
    on_cpu.update(up.parameters())
    np.testing.assert_array_equal(np.array(on_cpu(x + 1)), np.array(up(x + 1)))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: nn.ConvTranspose3d(3, 4, 2, groups=2), ValueError, r"`in_channels` \(=3\) must be divisible by `groups` \(=2\)"),
        (lambda: nn.ConvTranspose3d(4, 3, 2, groups=2), ValueError, r"`out_channels` \(=3\) must be divisible by `groups` \(=2\)"),
        (lambda: nn.ConvTranspose3d(2, 2, 0), ValueError, r"`kernel_size` values must be >= 1"),
        (lambda: nn.ConvTranspose3d(2, 2, 2, stride=(1, 2)), ValueError, r"`stride` must be an int or a sequence of 3"),
        (lambda: nn.ConvTranspose3d(2, 2, 2, padding=-1), ValueError, r"`padding` values must be >= 0"),
        (lambda: nn.ConvTranspose3d(2, 2, 2, stride=2, output_padding=2), ValueError,
         r"`output_padding` must be smaller than either `stride` or `dilation`.*output_padding=\(2, 2, 2\)"),
        (lambda: nn.ConvTranspose3d(2, 2, 2, padding_mode="reflect"), ValueError, r"only padding_mode='zeros'"),
        (lambda: nn.ConvTranspose3d(2, 2, 2, bias=1), TypeError, r"`bias` must be a bool"),
        (lambda: nn.ConvTranspose3d(2, 2, 2, dtype=mx.float64), TypeError, r"`dtype` must be one of"),
        (lambda: nn.ConvTranspose3d(2, 2, 2)(mx.zeros((1, 3, 2, 2, 2))), ValueError,
         r"`input` has 3 channels \(shape \(1, 3, 2, 2, 2\)\) but `weight` of shape \(2, 2, 2, 2, 2\) expects 2"),
        (lambda: nn.ConvTranspose3d(2, 2, 2)(mx.zeros((2, 2, 2))), ValueError, r"`input` must be"),
        (lambda: nn.ConvTranspose3d(2, 2, 1, padding=1)(mx.zeros((1, 2, 1, 1, 1))), ValueError,
         r"output size \(-1, -1, -1\) is too small"),
        (lambda: nn.ConvTranspose3d(2, 2, 2, stride=2)(mx.zeros((1, 2, 2, 2, 2)), output_size=(6, 4, 4)),
         ValueError, r"`output_size` \(6, 4, 4\) is not reachable.*\[4, 5\]"),
        (lambda: F.conv_transpose3d(mx.zeros((1, 2, 2, 2, 2)), mx.zeros((2, 2, 2, 2, 2)), mx.zeros((3,))),
         ValueError, r"`bias` must have shape \(2,\), got \(3,\)"),
        (lambda: F.conv_transpose3d(mx.zeros((1, 2, 2, 2, 2)), mx.zeros((2, 2, 2, 2))), ValueError,
         r"`weight` must be \(C_in, C_out / groups, KD, KH, KW\)"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("c_in, c_out, k, s, p, op, g, d, bias", CASES)
def test_matches_torch(c_in, c_out, k, s, p, op, g, d, bias):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    tm = torch.nn.ConvTranspose3d(c_in, c_out, k, s, p, op, g, bias, d)
    m = nn.ConvTranspose3d(c_in, c_out, k, s, p, op, g, bias, d)
    assert repr(m) == repr(tm)
    assert set(m.parameters()) == set(tm.state_dict())
    m.update({name: mx.array(v.detach().numpy()) for name, v in tm.state_dict().items()})
    x = rng.normal(size=(2, c_in, 3, 4, 5)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = tm(xt)
    gy = rng.normal(size=tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.tensor(gy))
    names = ["weight"] + (["bias"] if bias else [])

    def f(x, *params):
        m.update(dict(zip(names, params)))
        return m(x)

    y, grads = mx.vjp(f, [mx.array(x)] + [m[n] for n in names], [mx.array(gy)])
    assert_close(y[0], yt.detach().numpy().astype(np.float64))
    assert_close(grads[0], xt.grad.numpy().astype(np.float64))
    for name, grad in zip(names, grads[1:]):
        assert_close(grad, getattr(tm, name).grad.numpy().astype(np.float64), what=name)


# ---------------------------------------------------------------------------
# Random configurations against the NumPy reference


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


# ---------------------------------------------------------------------------
# Input PyTorch refuses

XT = mx.zeros((1, 2, 2, 2, 2))
WT = mx.zeros((2, 3, 2, 2, 2))
REFUSED = [
    Refusal("float16 input, float32 weight", lambda: F.conv_transpose3d(XT.astype(mx.float16), WT), TypeError,
            r"`input` \(mlx.core.float16\) and `weight` \(mlx.core.float32\) must have the same dtype",
            lambda t: t.nn.functional.conv_transpose3d(t.zeros(1, 2, 2, 2, 2).half(), t.zeros(2, 3, 2, 2, 2))),
    Refusal("bfloat16 weight", lambda: F.conv_transpose3d(XT, WT.astype(mx.bfloat16), groups=1), TypeError,
            r"must have the same dtype",
            lambda t: t.nn.functional.conv_transpose3d(t.zeros(1, 2, 2, 2, 2), t.zeros(2, 3, 2, 2, 2).bfloat16())),
    Refusal("float16 bias", lambda: F.conv_transpose3d(XT, WT, mx.zeros((3,), mx.float16)), TypeError,
            r"`bias` \(mlx.core.float16\) must have the dtype of `input` \(mlx.core.float32\)",
            lambda t: t.nn.functional.conv_transpose3d(t.zeros(1, 2, 2, 2, 2), t.zeros(2, 3, 2, 2, 2),
                                                       t.zeros(3).half())),
    Refusal("module on float16 input", lambda: nn.ConvTranspose3d(2, 3, 2)(XT.astype(mx.float16)), TypeError,
            r"must have the same dtype",
            lambda t: t.nn.ConvTranspose3d(2, 3, 2)(t.zeros(1, 2, 2, 2, 2).half())),
]

test_refused, test_refused_by_torch_too = refusal_tests(REFUSED)
