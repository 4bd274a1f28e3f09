"""lucid_mlx.metrics' Dice score against MONAI 1.6.1's compute_dice and DiceMetric, and by hand."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx.metrics import DiceMetric, compute_dice, do_metric_reduction

torch = pytest.importorskip("torch", reason="MONAI's metrics run on PyTorch")
monai_metrics = pytest.importorskip("monai.metrics", reason="MONAI's Dice metric is the reference")


def _onehot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.moveaxis(np.eye(classes, dtype=np.float32)[labels[:, 0]], -1, 1)


def _labels(seed: int, shape=(3, 1, 9, 8, 7), classes: int = 4, absent=None) -> np.ndarray:
    labels = np.random.default_rng(seed).integers(0, classes, shape)
    if absent is not None:  # a class missing from some items, to reach the empty-ground-truth rules
        labels[0][labels[0] == absent] = 0
    return labels


def _same(got: mx.array, want) -> None:
    np.testing.assert_allclose(np.array(got), want.numpy(), rtol=1e-6, atol=1e-7, equal_nan=True)


CASES = [
    ("onehot", dict(), "onehot"),
    ("no-background", dict(include_background=False), "onehot"),
    ("keep-empty", dict(ignore_empty=False), "onehot"),
    ("label-maps", dict(num_classes=4), "labels"),
    ("label-maps-no-bg-keep-empty", dict(num_classes=4, include_background=False, ignore_empty=False), "labels"),
    ("pred-labels-true-onehot", dict(num_classes=4), "mixed"),
    ("ignore-sentinel", dict(num_classes=4, ignore_index=9), "labels-ignore"),
    ("ignore-class", dict(ignore_index=2), "onehot"),
    ("soft-truth", dict(), "soft"),
    ("2d", dict(num_classes=4), "labels-2d"),
]


def _inputs(kind: str, seed: int):
    shape = (3, 1, 11, 13) if kind == "labels-2d" else (3, 1, 9, 8, 7)
    pred, true = _labels(seed, shape), _labels(seed + 1, shape, absent=3)
    if kind in ("onehot", "soft"):
        pred, true = _onehot(pred, 4), _onehot(true, 4)
        if kind == "soft":
            true = true * np.random.default_rng(seed).uniform(0.5, 1.0, true.shape).astype(np.float32)
    elif kind == "mixed":
        true = _onehot(true, 4)
    elif kind == "labels-ignore":
        true[np.random.default_rng(seed).random(true.shape) < 0.2] = 9
    return pred, true


@pytest.mark.parametrize("name,kwargs,kind", CASES, ids=[c[0] for c in CASES])
def test_compute_dice_matches_monai(name, kwargs, kind):
    pred, true = _inputs(kind, seed=len(name))
    want = monai_metrics.compute_dice(torch.tensor(pred), torch.tensor(true), **kwargs)
    _same(compute_dice(mx.array(pred), mx.array(true), **kwargs), want)
    _same(compute_dice(pred, true, **kwargs), want)  # NumPy inputs too


def test_empty_ground_truth_rules_by_hand():
    true = np.zeros((1, 2, 4, 4, 4), np.float32)
    true[:, 0] = 1  # class 1 absent from the ground truth
    empty_pred, some_pred = true.copy(), true.copy()
    some_pred[0, 1, 0, 0, 0], some_pred[0, 0, 0, 0, 0] = 1, 0
    assert np.isnan(np.array(compute_dice(empty_pred, true))[0, 1])
    assert np.array(compute_dice(empty_pred, true, ignore_empty=False))[0, 1] == 1.0
    assert np.array(compute_dice(some_pred, true, ignore_empty=False))[0, 1] == 0.0
    # Background: 63 of 64 voxels agree: 2 * 63 / (63 + 64).
    assert np.array(compute_dice(some_pred, true))[0, 0] == pytest.approx(126 / 127, rel=1e-6)


REDUCTIONS = ["none", "mean", "sum", "mean_batch", "sum_batch", "mean_channel", "sum_channel"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_dice_metric_accumulates_like_monai(reduction):
    theirs = monai_metrics.DiceMetric(include_background=False, reduction=reduction, get_not_nans=True,
                                      num_classes=4)
    ours = DiceMetric(include_background=False, reduction=reduction, get_not_nans=True, num_classes=4)
    for seed in range(3):
        pred, true = _labels(10 + seed), _labels(20 + seed, absent=3)
        _same(ours(mx.array(pred), mx.array(true)), theirs(torch.tensor(pred), torch.tensor(true)))
    for override in ("none", None):  # aggregate's own reduction overrides the metric's
        f, n = ours.aggregate(override)
        want_f, want_n = theirs.aggregate(override)
        _same(f, want_f)
        _same(n, want_n)
    ours.reset()
    assert ours.get_buffer() is None and len(ours) == 0


def test_lists_of_channel_first_arrays_and_labels():
    pred, true = _onehot(_labels(30), 4), _onehot(_labels(31, absent=2), 4)
    ours = DiceMetric(reduction="mean_batch", return_with_label=True)
    theirs = monai_metrics.DiceMetric(reduction="mean_batch", return_with_label=True)
    ours([mx.array(p) for p in pred], [mx.array(t) for t in true])
    theirs([torch.tensor(p) for p in pred], [torch.tensor(t) for t in true])
    assert ours.aggregate() == theirs.aggregate()
    named = DiceMetric(reduction="mean_batch", return_with_label=["bg", "csf", "gm", "wm"], include_background=True)
    named(pred, true)
    assert list(named.aggregate()) == ["bg", "csf", "gm", "wm"]


def test_do_metric_reduction_matches_monai():
    table = np.random.default_rng(40).random((4, 3)).astype(np.float32)
    table[0, 1] = table[2, :] = np.nan
    for reduction in REDUCTIONS:
        f, n = do_metric_reduction(mx.array(table), reduction)
        want_f, want_n = monai_metrics.do_metric_reduction(torch.tensor(table), reduction)
        _same(f, want_f)
        _same(n, want_n)


@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda: DiceMetric(per_component=True), ValueError, "per_component"),
        (lambda: DiceMetric(reduction="median"), ValueError, "reduction"),
        (lambda: DiceMetric(num_classes=0), ValueError, "num_classes"),
        (lambda: DiceMetric(include_background="no"), TypeError, "include_background"),
        (lambda: DiceMetric(ignore_index=0.5), TypeError, "ignore_index"),
        (lambda: DiceMetric().aggregate(), ValueError, "no scores"),
        (lambda: compute_dice(np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 3, 4))), ValueError, "spatial"),
        (lambda: compute_dice(np.zeros((2, 3)), np.zeros((2, 3))), ValueError, "y_pred"),
        (lambda: compute_dice(np.zeros((1, 2, 3, 3)), np.zeros((1, 3, 3, 3)), num_classes=4), ValueError, "fewer"),
        (lambda: compute_dice([0, 1], np.zeros((1, 2, 3))), TypeError, "y_pred"),
        (lambda: DiceMetric()([np.zeros((2, 3, 3))], np.zeros((1, 2, 3, 3))), ValueError, "lists"),
    ],
)
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()
