"""Upsample and functional.interpolate against NumPy and PyTorch."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import reference_layers as ref
from arrays import assert_close, rounded, to_mx
from lucid_mlx import nn
from lucid_mlx.nn import functional as F
from lucid_mlx.ops import upsample as upsample_ops
from refusals import Refusal, refusal_tests

SHAPE = (1, 2, 3, 4, 5)

# (mode, align_corners, size, scale_factor, recompute_scale_factor)
CASES = [
    ("nearest", None, None, 2, None),
    ("nearest", None, None, 1.5, None),
    ("nearest", None, None, 1.5, True),  # in/out instead of 1/1.5
    ("nearest", None, (5, 3, 11), None, None),
    ("nearest", None, None, (0.5, 1.1, 2.3), None),  # 1.1 keeps H=4 but still remaps
    ("nearest-exact", None, None, (1.5, 0.7, 2.0), None),
    ("trilinear", False, None, 2, None),
    ("trilinear", True, None, 2, None),
    ("trilinear", False, (5, 3, 11), None, None),
    ("trilinear", True, (1, 7, 2), None, None),
    ("trilinear", False, None, (1.5, 1.1, 0.6), None),
    ("trilinear", False, None, 1.5, True),
    # Integer factors take the gather-free paths (repeat, per-phase blends).
    ("trilinear", False, None, (3, 2, 4), None),
    ("nearest", None, None, (3, 2, 4), None),
    ("trilinear", False, (3, 8, 10), None, None),
]


def _expected(xr, mode, ac, size, sf, rc):
    spatial = xr.shape[2:]
    if size is not None:
        return list(size), [None] * 3
    sfs = list(sf) if isinstance(sf, tuple) else [sf] * 3
    out = [int(n * s) for n, s in zip(spatial, sfs)]
    return out, [None] * 3 if rc else sfs


@pytest.mark.parametrize("mode, ac, size, sf, rc", CASES)
def test_interpolate_matches_reference(mode, ac, size, sf, rc):
    rng = np.random.default_rng(0)
    x, xr = rounded(rng, SHAPE)
    out, scales = _expected(xr, mode, ac, size, sf, rc)
    want, vjp = ref.interpolate(xr, out, scales, mode, bool(ac))
    up = nn.Upsample(size, sf, mode, ac, rc)
    g = rng.normal(size=want.shape)
    y, (gx,) = mx.vjp(up, [x], [to_mx(g)])
    assert_close(y[0], want)
    assert_close(gx, vjp(g))
    assert_close(F.interpolate(x, size, sf, mode, ac, rc), want)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_interpolate_low_precision(dtype):
    rng = np.random.default_rng(1)
    x, xr = rounded(rng, SHAPE, dtype)
    y = F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=False)
    assert y.dtype == dtype
    assert_close(y, ref.interpolate(xr, [6, 8, 10], [2, 2, 2], "trilinear")[0])
    # Nearest copies values: exact in any dtype.
    np.testing.assert_array_equal(
        np.array(F.interpolate(x, scale_factor=2).astype(mx.float32)),
        ref.interpolate(xr, [6, 8, 10], [2, 2, 2], "nearest")[0])


def test_hand_computed():
    x = mx.array([[[0.0, 3.0]]])  # (1, 1, 2)
    np.testing.assert_array_equal(np.array(F.interpolate(x, scale_factor=2))[0, 0], [0, 0, 3, 3])
    np.testing.assert_allclose(
        np.array(F.interpolate(x, size=4, mode="linear", align_corners=True))[0, 0], [0, 1, 2, 3])
    # Half-pixel centres: output i samples 0.5 * (i + 0.5) - 0.5, clamped to [0, 1].
    np.testing.assert_allclose(
        np.array(F.interpolate(x, size=4, mode="linear"))[0, 0], [0, 0.75, 2.25, 3])
    # 'area' averages the adaptive bins.
    cube = mx.arange(8, dtype=mx.float32).reshape(1, 1, 2, 2, 2)
    assert float(F.interpolate(cube, size=1, mode="area").item()) == 3.5
    assert F.interpolate(mx.zeros((0, 2, 2, 2, 2)), scale_factor=2).shape == (0, 2, 4, 4, 4)


def test_reprs():
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2.0, mode='nearest')"
    assert repr(nn.Upsample(size=(2, 3, 4), mode="trilinear")) == \
        "Upsample(size=(2, 3, 4), mode='trilinear')"
    assert nn.Upsample(scale_factor=2).parameters() == {}


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: nn.Upsample(), ValueError, r"either `size` or `scale_factor` must be given"),
        (lambda: nn.Upsample(2, 2), ValueError, r"only one of `size` or `scale_factor`"),
        (lambda: nn.Upsample(scale_factor=0), ValueError, r"`scale_factor` must be positive and finite, got 0"),
        (lambda: nn.Upsample(scale_factor="2"), TypeError, r"`scale_factor` must be a number"),
        (lambda: nn.Upsample(scale_factor=2, mode="bicubic"), ValueError, r"`mode` must be one of"),
        (lambda: F.interpolate(mx.zeros(SHAPE), size=(2, 2)), ValueError,
         r"`size` must be an int or a sequence of 3 ints, got \(2, 2\)"),
        (lambda: F.interpolate(mx.zeros(SHAPE), scale_factor=(2, 2)), ValueError,
         r"`scale_factor` must be a number or a sequence of 3 numbers"),
        (lambda: F.interpolate(mx.zeros(SHAPE), scale_factor=0.1), ValueError, r"gives an empty output"),
        (lambda: F.interpolate(mx.zeros(SHAPE), scale_factor=2, align_corners=True), ValueError,
         r"`align_corners` can only be set with the linear modes"),
        (lambda: F.interpolate(mx.zeros(SHAPE), scale_factor=2, mode="bilinear"), ValueError,
         r"mode='bilinear' needs 4-D input, got shape \(1, 2, 3, 4, 5\)"),
        (lambda: F.interpolate(mx.zeros(SHAPE), size=4, recompute_scale_factor=True), ValueError,
         r"recompute_scale_factor=True is not meaningful"),
        (lambda: F.interpolate(mx.zeros((2, 3)), size=4), ValueError, r"`input` must be"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("mode, ac, size, sf, rc", CASES + [
    ("nearest", None, None, 2.0001, None),
    ("trilinear", False, None, (1, 2, 1.1), None),
])
def test_matches_torch_float32(mode, ac, size, sf, rc):
    # float32 on both sides: PyTorch's index arithmetic is float32 then too.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 2, 4, 5, 6)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    tup = torch.nn.Upsample(size, sf, mode, ac, rc)
    up = nn.Upsample(size, sf, mode, ac, rc)
    assert repr(up) == repr(tup)
    yt = tup(xt)
    g = rng.normal(size=tuple(yt.shape)).astype(np.float32)
    yt.backward(torch.tensor(g))
    y, (gx,) = mx.vjp(up, [mx.array(x)], [mx.array(g)])
    assert_close(y[0], yt.detach().numpy().astype(np.float64))
    if _torch_nearest_backward_differs(mode, x.shape[2:], yt.shape[2:], sf, rc):
        pytest.xfail("PyTorch's nearest backward uses other indices than its forward here")
    assert_close(gx, xt.grad.numpy().astype(np.float64))


def _torch_nearest_backward_differs(mode, spatial, out, sf, rc):
    """PyTorch 2.13's 'nearest' backward (not its forward) maps out == in to the
    identity and out == 2 * in to ``i >> 1`` whatever the scale factor, so for
    e.g. scale_factor=1.1 on 5 pixels its gradient is not the gradient of its
    output.  Ours is (checked against the NumPy reference above)."""
    if mode != "nearest" or sf is None or rc:
        return False
    sfs = sf if isinstance(sf, tuple) else (sf,) * len(spatial)
    for n, o, s in zip(spatial, out, sfs):
        forward = upsample_ops.nearest_index(n, o, s, exact=False)
        if (o == n and not np.array_equal(forward, np.arange(n))) or \
                (o == 2 * n and not np.array_equal(forward, np.arange(o) >> 1)):
            return True
    return False


# ---------------------------------------------------------------------------
# Input PyTorch refuses

REFUSED = [
    Refusal(f"{mode} {shape}", lambda mode=mode, shape=shape: F.interpolate(mx.zeros(shape), size=3, mode=mode),
            ValueError, r"interpolate: the channel and spatial dimensions of `input` must be non-empty",
            lambda t, mode=mode, shape=shape: t.nn.functional.interpolate(t.zeros(shape), size=3, mode=mode))
    for mode, shape in [
        ("nearest", (1, 2, 0, 4, 4)), ("trilinear", (1, 2, 4, 4, 0)), ("area", (1, 2, 4, 0, 4)),
        ("nearest-exact", (1, 0, 4, 4, 4)), ("linear", (1, 2, 0)), ("bilinear", (2, 0, 3, 3)),
    ]
] + [
    Refusal("scale_factor on an empty axis", lambda: F.interpolate(mx.zeros((1, 2, 0, 4, 4)), scale_factor=2),
            ValueError, r"must be non-empty, got shape \(1, 2, 0, 4, 4\)",
            lambda t: t.nn.functional.interpolate(t.zeros(1, 2, 0, 4, 4), scale_factor=2)),
]

test_refused, test_refused_by_torch_too = refusal_tests(REFUSED)
