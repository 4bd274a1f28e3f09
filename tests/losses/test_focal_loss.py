"""lucid_mlx.losses.FocalLoss against MONAI 1.6.1's, values and input gradients, plus hand checks."""

from __future__ import annotations

import zlib

import mlx.core as mx
import numpy as np
import pytest

from arrays import assert_close
from monai_loss_check import compare_with_monai
from lucid_mlx.losses import FocalLoss, sigmoid_focal_loss, softmax_focal_loss

B, C, SPATIAL = 2, 3, (3, 4, 5)


def _data(name: str, channels: int = C, target: str = "labels", ignore=None):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x = rng.normal(scale=2.0, size=(B, channels) + SPATIAL).astype(np.float32)
    if target == "labels":
        y = rng.integers(0, channels, size=(B, 1) + SPATIAL)
        if ignore is not None:
            y[rng.random(y.shape) < 0.25] = ignore
    elif target == "onehot":
        y = np.moveaxis(np.eye(channels, dtype=np.float32)[rng.integers(0, channels, (B,) + SPATIAL)], -1, 1)
    else:
        y = (rng.random((B, channels) + SPATIAL) < 0.3).astype(np.float32)
    return x, y


CASES = [
    ("sigmoid", dict(), dict(target="binary")),
    ("sigmoid-gamma0", dict(gamma=0.0), dict(target="binary")),
    ("sigmoid-gamma-half", dict(gamma=0.5), dict(target="binary")),
    ("sigmoid-alpha", dict(alpha=0.25), dict(target="binary")),
    ("sigmoid-alpha-classes", dict(alpha=[0.1, 0.5, 0.9]), dict(target="binary")),
    ("sigmoid-onehot-labels", dict(to_onehot_y=True), dict()),
    ("softmax", dict(to_onehot_y=True, use_softmax=True), dict()),
    ("softmax-alpha", dict(to_onehot_y=True, use_softmax=True, alpha=0.75), dict()),
    ("softmax-alpha-classes", dict(to_onehot_y=True, use_softmax=True, alpha=[0.2, 0.3, 0.5]), dict()),
    ("softmax-no-bg-alpha", dict(to_onehot_y=True, use_softmax=True, include_background=False, alpha=0.75), dict()),
    ("softmax-no-bg-alpha-classes",
     dict(to_onehot_y=True, use_softmax=True, include_background=False, alpha=[0.4, 0.6]), dict()),
    ("no-background", dict(to_onehot_y=True, include_background=False), dict()),
    ("weight-scalar", dict(weight=3.0), dict(target="binary")),
    ("weight-classes", dict(to_onehot_y=True, use_softmax=True, weight=[0.5, 1.0, 2.0]), dict()),
    ("none", dict(to_onehot_y=True, reduction="none"), dict()),
    ("sum", dict(to_onehot_y=True, use_softmax=True, reduction="sum"), dict()),
    ("ignore-sentinel-mean", dict(to_onehot_y=True, use_softmax=True, ignore_index=-1), dict(ignore=-1)),
    ("ignore-sentinel-sum", dict(to_onehot_y=True, reduction="sum", ignore_index=9), dict(ignore=9)),
    ("ignore-class-none", dict(to_onehot_y=True, reduction="none", ignore_index=2), dict()),
    ("ignore-onehot", dict(use_softmax=True, ignore_index=0), dict(target="onehot")),
    ("one-channel", dict(alpha=0.3), dict(channels=1, target="binary")),
]


@pytest.mark.parametrize("name,kwargs,data", CASES, ids=[c[0] for c in CASES])
def test_focal_loss_matches_monai(name, kwargs, data):
    monai_losses = pytest.importorskip("monai.losses", reason="MONAI's FocalLoss is the reference")
    x, y = _data(name, **data)
    compare_with_monai(monai_losses.FocalLoss(**kwargs), FocalLoss(**kwargs), x, y)


def _bce(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))


def test_gamma_zero_is_binary_cross_entropy():
    x, y = _data("bce", target="binary")
    got = FocalLoss(gamma=0.0, reduction="none")(mx.array(x), mx.array(y))
    assert_close(got, _bce(x.astype(np.float64), y))


def test_focal_by_hand():
    # One voxel, logit 0 (p = 0.5), positive: BCE = log 2, (1 - p_t)^2 = 1/4, alpha 0.25.
    x = mx.zeros((1, 1, 1))
    y = mx.ones((1, 1, 1))
    assert sigmoid_focal_loss(x, y, 2.0, 0.25).item() == pytest.approx(0.25 * 0.25 * np.log(2), rel=1e-6)
    # Softmax over 4 equal logits: p = 1/4, loss of the true class = (3/4)^2 log 4.
    logits = mx.zeros((1, 4, 1))
    onehot = mx.array([[[0.0], [0.0], [1.0], [0.0]]])
    got = softmax_focal_loss(logits, onehot, 2.0)
    assert mx.sum(got).item() == pytest.approx(0.75**2 * np.log(4), rel=1e-6)


def test_sum_reduction_averages_space_first():
    x, y = _data("sum-rule", target="binary")
    none = np.array(FocalLoss(reduction="none")(mx.array(x), mx.array(y)))
    total = FocalLoss(reduction="sum")(mx.array(x), mx.array(y)).item()
    assert total == pytest.approx(float(none.mean(axis=(2, 3, 4)).sum()), rel=1e-5)


def test_warns_as_monai():
    x, y = _data("warn")
    with pytest.warns(UserWarning, match="scalar `alpha` ignored"):
        FocalLoss(to_onehot_y=True, use_softmax=True, include_background=False, alpha=0.5)(mx.array(x), mx.array(y))


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(gamma=-1.0), ValueError, "gamma"),
        (dict(alpha=1.2), ValueError, "alpha"),
        (dict(alpha="a"), TypeError, "alpha"),
        (dict(weight=[[1.0]]), ValueError, "weight"),
        (dict(reduction="max"), ValueError, "reduction"),
        (dict(use_softmax="yes"), TypeError, "use_softmax"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        FocalLoss(**kwargs)


def test_bad_inputs():
    x, y = _data("bad")
    x, y = mx.array(x), mx.array(y)
    with pytest.raises(ValueError, match="one value per class"):
        FocalLoss(to_onehot_y=True, weight=[1.0, 2.0])(x, y)
    with pytest.raises(ValueError, match="alpha"):
        FocalLoss(to_onehot_y=True, alpha=[0.5, 0.5])(x, y)
    with pytest.raises(ValueError, match="single-channel"):
        FocalLoss(weight=[1.0, 2.0])(x[:, :1], (y[:, :1] > 0).astype(mx.float32))
    with pytest.raises(ValueError, match="shape of `input`"):
        FocalLoss()(x, y)
    with pytest.raises(ValueError, match="labels must lie"):
        FocalLoss(to_onehot_y=True)(x, y + 5)
