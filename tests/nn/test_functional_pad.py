"""lucid_mlx.nn.functional.pad against the NumPy reference.

Every mode with its gradient, the constant value and lengths, negative
amounts (crops) and the empty batch.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx.nn.functional as F
from arrays import DTYPES, assert_close, rounded, to_np
from isolated import assert_runs
from reference import pad_grad_ref, pad_ref

PAD_SHAPE = (2, 3, 3, 4, 5)
PAD_CASES = [
    (1, 1, 1, 1, 1, 1),
    (2, 0, 0, 3, 1, 2),
    (0, 0, 0, 0, 0, 0),
    (4, 4, 3, 3, 2, 2),  # the largest reflect pads for a (3, 4, 5) input
    (5, 1, 0, 4, 3, 0),  # circular up to the whole size
]


def _pad_fits(pad, mode) -> bool:
    """Reflect needs each pad < its dimension (else an error: see test_errors)."""
    sizes = [n for n in reversed(PAD_SHAPE[2:]) for _ in range(2)]
    return mode != "reflect" or all(p < n for p, n in zip(pad, sizes))


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize(
    "pad, mode",
    [(p, m) for p in PAD_CASES for m in ("constant", "reflect", "replicate", "circular") if _pad_fits(p, m)],
    ids=str,
)
def test_pad_against_numpy(pad, mode, dtype):
    rng = np.random.default_rng(sum(pad))
    x, xn = rounded(rng, PAD_SHAPE, dtype)
    y = F.pad(x, pad, mode=mode)
    assert y.dtype == dtype
    want = pad_ref(xn, pad, mode)
    np.testing.assert_array_equal(to_np(y), want)  # padding copies, exactly

    gy, gyn = rounded(rng, want.shape, dtype)
    _, (gx,) = mx.vjp(lambda x: F.pad(x, pad, mode=mode), [x], [gy])
    assert_close(gx, pad_grad_ref(gyn, PAD_SHAPE, pad, mode), what="pad gradient")


@pytest.mark.parametrize("pad", [(1, 2), (1, 0, 2, 3), (1, 1, 0, 2, 3, 0), (1, 0, 1, 0, 1, 0, 1, 2)])
@pytest.mark.parametrize("value", [0.0, 2.5, -1.0])
def test_constant_pad_lengths_and_value(pad, value):
    x, xn = rounded(np.random.default_rng(0), (1, 2, 3, 4, 5))
    y = F.pad(x, pad, mode="constant", value=value)
    np.testing.assert_array_equal(to_np(y), pad_ref(xn, pad, "constant", value))


def test_pad_defaults_to_zero_constant():
    x, xn = rounded(np.random.default_rng(0), (1, 1, 2, 2, 2))
    np.testing.assert_array_equal(to_np(F.pad(x, (1, 1, 1, 1, 1, 1))), pad_ref(xn, (1,) * 6))


@pytest.mark.parametrize("mode", ["constant", "circular"])
def test_negative_pad_crops(mode):
    """PyTorch crops for negative pads; the positive parts then pad the cropped array."""
    x, xn = rounded(np.random.default_rng(0), (1, 2, 4, 5, 6))
    pad = (-1, 2, 0, -2, 1, -1)
    cropped = xn[:, :, 0:3, 0:3, 1:6]
    want = pad_ref(cropped, (0, 2, 0, 0, 1, 0), mode)
    np.testing.assert_array_equal(to_np(F.pad(x, pad, mode=mode)), want)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_empty_batch(mode):
    y = F.pad(mx.zeros((0, 2, 3, 4, 5)), (1, 1, 2, 2, 1, 0), mode=mode)
    mx.eval(y)
    assert tuple(y.shape) == (0, 2, 4, 8, 7)


# ---------------------------------------------------------------------------
# Negative amounts in every mode, against PyTorch's rules

MODES = ("constant", "reflect", "replicate", "circular")


@pytest.mark.parametrize(
    "mode, x, pad, want",
    [
        # The examples of issue 9: PyTorch pads and crops relative to the input's borders.
        ("reflect", [0.0, 1.0, 2.0], (1, -2), [1.0, 0.0]),
        ("replicate", [0.0, 1.0, 2.0, 3.0], (-4, 5), [3.0] * 5),
        ("reflect", [0.0, 1.0, 2.0, 3.0], (3, -6), [3.0]),
        ("replicate", [0.0, 1.0, 2.0, 3.0], (2, -5), [0.0]),
        ("circular", [0.0, 1.0, 2.0, 3.0], (1, -2), [1.0, 0.0, 1.0]),  # wraps the cropped [0, 1]
        ("constant", [0.0, 1.0, 2.0, 3.0], (1, -4), [0.0]),
    ],
    ids=str,
)
def test_negative_amounts_hand_computed(mode, x, pad, want):
    y = F.pad(mx.array(x).reshape(1, 1, -1), pad, mode=mode)
    np.testing.assert_array_equal(np.array(y).ravel(), want)


@pytest.mark.parametrize("mode", MODES)
def test_crop_beyond_the_axis_raises(mode):
    x = mx.zeros((1, 1, 5))
    with pytest.raises(ValueError, match=r"pad=\(-10, 2\)") as info:
        F.pad(x, (-10, 2), mode=mode)
    assert not str(info.value).startswith("[")


def _torch_undefined(mode, sizes, pairs) -> bool:
    """Where PyTorch 2.13's circular pad has no defined result, lucid_mlx raises.

    A crop past the border, or a wrap longer than what the crop leaves: PyTorch
    raises for a single (sample, channel) ("some elements of the input tensor
    and the written-to tensor refer to a single memory location") and
    otherwise returns values read from uninitialised memory, or an empty array.
    """
    if mode != "circular":
        return False
    for n, (lo, hi) in zip(sizes, pairs):
        kept = n + min(lo, 0) + min(hi, 0)
        if kept < 0 or lo > kept or hi > kept:
            return True
    return False


AMOUNTS = (-5, -4, -3, -1, 0, 1, 3, 4, 5)


@pytest.mark.parametrize("rank", [3, 4, 5])
@pytest.mark.parametrize("mode", MODES)
def test_every_sign_combination_matches_torch(mode, rank):
    """Every (low, high) sign combination around the limits of a size-4 dimension:
    the same output and gradient as PyTorch, or lucid_mlx's ValueError where
    PyTorch raises."""
    torch = pytest.importorskip("torch")
    shape = {3: (2, 1, 4), 4: (1, 2, 4, 4), 5: (1, 2, 4, 4, 4)}[rank]
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    failures = []
    for lo in AMOUNTS:
        for hi in AMOUNTS:
            # W gets (lo, hi); H (rank 4) or D (rank 5) gets (hi, lo), H of rank 5 nothing.
            pad = {3: (lo, hi), 4: (lo, hi, hi, lo), 5: (lo, hi, 0, 0, hi, lo)}[rank]
            dims = len(pad) // 2
            pairs = [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(dims))]
            sizes = shape[rank - dims:]
            xt = torch.tensor(x, requires_grad=True)
            try:
                want = torch.nn.functional.pad(xt, pad, mode=mode)
            except (RuntimeError, ValueError, IndexError):
                want = None
            if want is not None and _torch_undefined(mode, sizes, pairs):
                want = None
            try:
                got = F.pad(mx.array(x), pad, mode=mode)
                mx.eval(got)
            except ValueError as error:
                if want is not None or str(error).startswith("["):
                    failures.append(f"{pad}: raised {error}")
                continue
            if want is None:
                failures.append(f"{pad}: returned shape {got.shape}, PyTorch raises")
                continue
            if got.shape != tuple(want.shape) or not np.array_equal(np.array(got), want.detach().numpy()):
                failures.append(f"{pad}: {np.array(got).ravel()[:8]} != {want.detach().numpy().ravel()[:8]}")
                continue
            g = np.random.default_rng(abs(lo * 10 + hi)).normal(size=want.shape).astype(np.float32)
            _, (gx,) = mx.vjp(lambda a: F.pad(a, pad, mode=mode), [mx.array(x)], [mx.array(g)])
            if want.numel() == 0:
                # PyTorch's reflection_pad3d backward of an empty output returns
                # uninitialised memory; the gradient is zero.
                want_gx = np.zeros_like(x)
            else:
                want.backward(torch.tensor(g))
                want_gx = xt.grad.numpy()
            if not np.allclose(np.array(gx), want_gx, atol=1e-5):
                failures.append(f"{pad}: gradient differs")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("shape, pad", [((0, 2, 3), (1, 2)), ((0, 2, 3, 4), (1, 1, 2, 0)),
                                        ((0, 2, 3, 4, 5), (1, 1, 2, 0, 3, 1)),
                                        ((0, 2, 3, 4, 5), (-1, 2, 0, 0, 1, -1))], ids=str)
def test_empty_batch_gradient_of_circular_pad(shape, pad):
    """The wrap gathered with mx.take, whose vjp on an empty batch killed the
    process (SIGFPE); run in its own process so a regression fails one test."""
    printed = assert_runs(f"""
        x = mx.zeros({shape})
        g = mx.grad(lambda x: F.pad(x, {pad}, mode="circular").sum())(x)
        mx.eval(g)
        print(g.shape)
    """)
    assert printed.strip() == str(shape)
