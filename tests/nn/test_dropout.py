"""Dropout3d: whole channels, the 1/(1-p) scale, train/eval, gradients, errors."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx import nn
from lucid_mlx.nn import functional as F


def _channel_masks(x: np.ndarray, y: np.ndarray, p: float) -> np.ndarray:
    """Per (n, c): True if kept. Fails unless each channel is all-zero or exactly x / (1 - p)."""
    flat_x = x.reshape(*x.shape[:2], -1)
    flat_y = y.reshape(*y.shape[:2], -1)
    kept = np.all(flat_y == np.float32(flat_x * np.float32(1 / (1 - p))), axis=2)
    dropped = np.all(flat_y == 0, axis=2)
    assert np.all(kept | dropped), "a channel was partly dropped or wrongly scaled"
    return kept


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_drops_whole_channels_at_rate_p_and_scales_the_rest(p):
    mx.random.seed(0)
    x = mx.random.uniform(1, 2, (50, 80, 2, 2, 3))  # 4000 channels, no zeros
    y = nn.Dropout3d(p)(x)
    kept = _channel_masks(np.array(x), np.array(y), p)
    # Binomial(4000, 1 - p): 5 standard deviations is about 0.04 at p = 0.5.
    rate = 1 - kept.mean()
    assert abs(rate - p) < 5 * np.sqrt(p * (1 - p) / kept.size)


def test_gradient_is_the_same_mask_over_1_minus_p():
    x = mx.random.uniform(1, 2, (4, 6, 2, 3, 2), key=mx.random.key(1))
    key = mx.random.key(7)
    y, (gx,) = mx.vjp(lambda a: F.dropout3d(a, 0.4, key=key), [x], [mx.ones(x.shape)])
    kept = _channel_masks(np.array(x), np.array(y[0]), 0.4)
    want = np.broadcast_to(kept[:, :, None, None, None] / np.float32(0.6), x.shape)
    np.testing.assert_allclose(np.array(gx), want, rtol=1e-6)
    # The same key gives the same mask.
    np.testing.assert_array_equal(np.array(F.dropout3d(x, 0.4, key=key)), np.array(y[0]))


def test_eval_p0_p1_and_unbatched():
    x = mx.random.normal((2, 3, 2, 2, 2), key=mx.random.key(2))
    drop = nn.Dropout3d(0.9)
    drop.eval()
    assert drop(x) is x or np.array_equal(np.array(drop(x)), np.array(x))
    assert np.array_equal(np.array(F.dropout3d(x, 0.0)), np.array(x))
    assert np.array_equal(np.array(F.dropout3d(x, 1.0)), np.zeros(x.shape))
    assert np.array_equal(np.array(F.dropout3d(x, 0.9, training=False)), np.array(x))
    y = F.dropout3d(x[0], 0.5, key=mx.random.key(3))  # (C, D, H, W)
    assert y.shape == (3, 2, 2, 2)
    _channel_masks(np.array(x[0])[None], np.array(y)[None], 0.5)
    half = F.dropout3d(x.astype(mx.bfloat16), 0.5)
    assert half.dtype == mx.bfloat16


def test_repr_matches_pytorch():
    assert repr(nn.Dropout3d()) == "Dropout3d(p=0.5, inplace=False)"
    assert repr(nn.Dropout3d(0.25)) == "Dropout3d(p=0.25, inplace=False)"
    torch = pytest.importorskip("torch")
    assert repr(nn.Dropout3d(0.25)) == repr(torch.nn.Dropout3d(0.25))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: nn.Dropout3d(1.5), ValueError, r"`p` must be between 0 and 1, got 1.5"),
        (lambda: nn.Dropout3d(-0.1), ValueError, r"`p` must be between 0 and 1, got -0.1"),
        (lambda: nn.Dropout3d("0.5"), TypeError, r"`p` must be a number in \[0, 1\]"),
        (lambda: nn.Dropout3d(0.5, inplace=None), TypeError, r"`inplace` must be a bool"),
        (lambda: F.dropout3d(mx.zeros((2, 3, 4)), 0.5), ValueError, r"`input` must be \(N, C, D, H, W\)"),
        (lambda: F.dropout3d(mx.zeros((1, 2, 3, 4), mx.int32), 0.5), TypeError, r"`input` must be float32, float16 or bfloat16"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
