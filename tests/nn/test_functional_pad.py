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
