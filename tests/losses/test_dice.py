"""lucid_mlx.losses' Dice losses against MONAI 1.6.1's, values and input gradients.

Each table row builds the MONAI loss and ours with the same arguments, feeds
both the same seeded logits and target, and compares the loss and
d(loss)/d(input).  Hand-computed cases pin the formulas independently of
MONAI, and the error cases pin the messages.
"""

from __future__ import annotations

import math
import zlib

import mlx.core as mx
import numpy as np
import pytest

from arrays import assert_close
from monai_loss_check import compare_with_monai
from lucid_mlx.losses import DiceCELoss, DiceFocalLoss, DiceLoss

B, C, SPATIAL = 2, 3, (4, 5, 3)


def _data(seed: int, channels: int = C, spatial=SPATIAL, target: str = "labels", ignore=None):
    """Seeded logits and a target: 'labels' (B, 1, ...), 'onehot', 'binary' (multi-label) or 'soft'."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=1.5, size=(B, channels) + spatial).astype(np.float32)
    if target == "labels":
        y = rng.integers(0, channels, size=(B, 1) + spatial)
        if ignore is not None:
            y[rng.random(y.shape) < 0.2] = ignore
    elif target == "onehot":
        labels = rng.integers(0, channels, size=(B,) + spatial)
        y = np.moveaxis(np.eye(channels, dtype=np.float32)[labels], -1, 1)
    elif target == "binary":
        y = (rng.random((B, channels) + spatial) < 0.4).astype(np.float32)
    else:
        y = rng.random((B, channels) + spatial).astype(np.float32)
    return x, y


DICE_CASES = [
    ("probabilities", dict(), dict(target="onehot")),
    ("onehot-softmax", dict(to_onehot_y=True, softmax=True), dict()),
    ("sigmoid-multilabel", dict(sigmoid=True), dict(target="binary")),
    ("no-background", dict(to_onehot_y=True, softmax=True, include_background=False), dict()),
    ("squared", dict(to_onehot_y=True, softmax=True, squared_pred=True), dict()),
    ("jaccard", dict(to_onehot_y=True, softmax=True, jaccard=True), dict()),
    ("jaccard-squared", dict(sigmoid=True, jaccard=True, squared_pred=True), dict(target="binary")),
    ("none", dict(to_onehot_y=True, softmax=True, reduction="none"), dict()),
    ("sum", dict(to_onehot_y=True, softmax=True, reduction="sum"), dict()),
    ("batch", dict(to_onehot_y=True, softmax=True, batch=True), dict()),
    ("batch-none", dict(to_onehot_y=True, softmax=True, batch=True, reduction="none"), dict()),
    ("smooth", dict(to_onehot_y=True, softmax=True, smooth_nr=0.0, smooth_dr=1e-3), dict()),
    ("weight-scalar", dict(to_onehot_y=True, softmax=True, weight=2.5), dict()),
    ("weight-classes", dict(to_onehot_y=True, softmax=True, weight=[0.2, 1.0, 3.0]), dict()),
    ("weight-no-bg", dict(to_onehot_y=True, softmax=True, include_background=False, weight=[1.0, 4.0]), dict()),
    ("soft-label", dict(sigmoid=True, soft_label=True), dict(target="soft")),
    ("soft-label-squared", dict(sigmoid=True, soft_label=True, squared_pred=True), dict(target="soft")),
    ("other-act", dict(other_act="tanh"), dict(target="onehot")),
    ("ignore-sentinel", dict(to_onehot_y=True, softmax=True, ignore_index=255), dict(ignore=255)),
    ("ignore-class", dict(to_onehot_y=True, softmax=True, ignore_index=1), dict()),
    ("ignore-onehot", dict(softmax=True, ignore_index=2), dict(target="onehot")),
    ("2d", dict(to_onehot_y=True, softmax=True), dict(spatial=(6, 7))),
    ("1d", dict(to_onehot_y=True, softmax=True, reduction="none"), dict(spatial=(9,))),
    ("one-channel", dict(sigmoid=True), dict(channels=1, target="binary")),
]


def _acts(kwargs: dict) -> tuple[dict, dict]:
    """The arguments for MONAI (torch activations) and for us (MLX activations)."""
    import torch

    theirs, ours = dict(kwargs), dict(kwargs)
    if kwargs.get("other_act") == "tanh":
        theirs["other_act"], ours["other_act"] = torch.tanh, mx.tanh
    if isinstance(kwargs.get("weight"), list):
        theirs["weight"] = torch.tensor(kwargs["weight"])
    return theirs, ours


@pytest.mark.parametrize("name,kwargs,data", DICE_CASES, ids=[c[0] for c in DICE_CASES])
def test_dice_loss_matches_monai(name, kwargs, data):
    monai_losses = pytest.importorskip("monai.losses", reason="MONAI's DiceLoss is the reference")
    theirs, ours = _acts(kwargs)
    x, y = _data(zlib.crc32(name.encode()), **data)
    compare_with_monai(monai_losses.DiceLoss(**theirs), DiceLoss(**ours), x, y)


DICE_CE_CASES = [
    ("labels", dict(to_onehot_y=True, softmax=True), dict()),
    ("onehot-target", dict(softmax=True), dict(target="onehot")),
    ("weights", dict(to_onehot_y=True, softmax=True, weight=[0.5, 1.0, 2.0]), dict()),
    ("weights-no-bg", dict(to_onehot_y=True, softmax=True, include_background=False, weight=[0.5, 1.0, 2.0]), dict()),
    ("smoothing", dict(to_onehot_y=True, softmax=True, label_smoothing=0.1), dict()),
    ("smoothing-weights", dict(to_onehot_y=True, softmax=True, label_smoothing=0.2, weight=[1.0, 3.0, 0.5]), dict()),
    ("smoothing-onehot-weights", dict(softmax=True, label_smoothing=0.2, weight=[1.0, 3.0, 0.5]),
     dict(target="onehot")),
    ("sum", dict(to_onehot_y=True, softmax=True, reduction="sum", weight=[1.0, 2.0, 3.0]), dict()),
    ("lambdas", dict(to_onehot_y=True, softmax=True, lambda_dice=0.3, lambda_ce=1.7), dict()),
    ("jaccard-squared-batch",
     dict(to_onehot_y=True, softmax=True, jaccard=True, squared_pred=True, batch=True), dict()),
    ("binary", dict(sigmoid=True), dict(channels=1, target="binary")),
    ("binary-pos-weight", dict(sigmoid=True, weight=[2.5]), dict(channels=1, target="binary")),
    ("binary-sum", dict(sigmoid=True, reduction="sum"), dict(channels=1, target="binary")),
]


@pytest.mark.parametrize("name,kwargs,data", DICE_CE_CASES, ids=[c[0] for c in DICE_CE_CASES])
def test_dice_ce_loss_matches_monai(name, kwargs, data):
    monai_losses = pytest.importorskip("monai.losses", reason="MONAI's DiceCELoss is the reference")
    theirs, ours = _acts(kwargs)
    x, y = _data(zlib.crc32(name.encode()) + 1, **data)
    compare_with_monai(monai_losses.DiceCELoss(**theirs), DiceCELoss(**ours), x, y)


DICE_FOCAL_CASES = [
    ("labels", dict(to_onehot_y=True, softmax=True), dict()),
    ("gamma-alpha", dict(to_onehot_y=True, softmax=True, gamma=1.5, alpha=0.25), dict()),
    ("alpha-classes", dict(sigmoid=True, alpha=[0.2, 0.5, 0.8]), dict(target="binary")),
    ("weights-no-bg", dict(to_onehot_y=True, softmax=True, include_background=False, weight=[2.0, 0.5]), dict()),
    ("none", dict(to_onehot_y=True, softmax=True, reduction="none"), dict()),
    ("sum-lambdas", dict(sigmoid=True, reduction="sum", lambda_dice=0.5, lambda_focal=2.0), dict(target="binary")),
]


@pytest.mark.parametrize("name,kwargs,data", DICE_FOCAL_CASES, ids=[c[0] for c in DICE_FOCAL_CASES])
def test_dice_focal_loss_matches_monai(name, kwargs, data):
    monai_losses = pytest.importorskip("monai.losses", reason="MONAI's DiceFocalLoss is the reference")
    theirs, ours = _acts(kwargs)
    x, y = _data(zlib.crc32(name.encode()) + 2, **data)
    compare_with_monai(monai_losses.DiceFocalLoss(**theirs), DiceFocalLoss(**ours), x, y)


# --- hand-computed values --------------------------------------------------------------------


def test_dice_by_hand():
    x = mx.array([[[1.0, 1.0, 0.0, 0.0]]])  # predicted foreground at 0, 1
    y = mx.array([[[0.0, 1.0, 1.0, 0.0]]])  # true foreground at 1, 2
    s = 1e-5
    # |X∩Y| = 1, |X| = |Y| = 2.
    assert DiceLoss()(x, y).item() == pytest.approx(1 - (2 + s) / (4 + s), rel=1e-6)
    # Jaccard: |X∪Y| = 3.
    assert DiceLoss(jaccard=True)(x, y).item() == pytest.approx(1 - (2 + s) / (6 + s), rel=1e-6)
    assert DiceLoss()(y, y).item() == pytest.approx(0.0, abs=1e-7)


def test_dice_ce_of_uniform_logits_is_log_classes():
    # Zero logits: CE = log C for every voxel; a perfect label map has a fixed soft Dice.
    logits = mx.zeros((1, 4, 2, 2, 2))
    labels = mx.zeros((1, 1, 2, 2, 2), dtype=mx.int32)
    ce_only = DiceCELoss(to_onehot_y=True, softmax=True, lambda_dice=0.0)
    assert ce_only(logits, labels).item() == pytest.approx(math.log(4), rel=1e-6)
    # Dice for class 0: tp = 8/4, |X| = 8/4, |Y| = 8; the other classes have |Y| = 0.
    s = 1e-5
    per_class = [1 - (4 + s) / (10 + s)] + [1 - s / (2 + s)] * 3
    dice_only = DiceCELoss(to_onehot_y=True, softmax=True, lambda_ce=0.0)
    assert dice_only(logits, labels).item() == pytest.approx(float(np.mean(per_class)), rel=1e-6)


def test_gradient_flows_only_through_input():
    x, y = _data(3)
    loss = DiceCELoss(to_onehot_y=True, softmax=True)
    grad = mx.grad(lambda a: loss(a, mx.array(y)))(mx.array(x))
    assert grad.shape == x.shape and bool(mx.all(mx.isfinite(grad)).item())
    assert float(mx.abs(grad).max().item()) > 0


def test_compiled_loss_and_gradient_match_eager():
    # Under mx.compile the label check cannot read values back; it is skipped, not an error.
    x, y = (mx.array(a) for a in _data(6))
    loss = DiceCELoss(to_onehot_y=True, softmax=True, label_smoothing=0.1)
    step = mx.compile(mx.value_and_grad(lambda a, b: loss(a, b)))
    value, grad = step(x, y)
    want_value, want_grad = mx.value_and_grad(lambda a, b: loss(a, b))(x, y)
    assert_close(value, np.array(want_value, dtype=np.float64))
    assert_close(grad, np.array(want_grad, dtype=np.float64))


def test_half_precision_scores_are_summed_in_float32():
    x, y = _data(7)
    want = DiceLoss(to_onehot_y=True, softmax=True)(mx.array(x).astype(mx.float16).astype(mx.float32), mx.array(y))
    got = DiceLoss(to_onehot_y=True, softmax=True)(mx.array(x).astype(mx.float16), mx.array(y))
    assert got.dtype == mx.float32 and got.item() == pytest.approx(want.item(), rel=1e-6)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda: DiceLoss(sigmoid=True, softmax=True), ValueError, "exclusive"),
        (lambda: DiceLoss(other_act=3), TypeError, "other_act"),
        (lambda: DiceLoss(reduction="batchmean"), ValueError, "reduction"),
        (lambda: DiceLoss(weight=[1.0, -1.0]), ValueError, "weight"),
        (lambda: DiceLoss(weight="heavy"), TypeError, "weight"),
        (lambda: DiceLoss(include_background=1), TypeError, "include_background"),
        (lambda: DiceLoss(smooth_nr=float("nan")), ValueError, "smooth_nr"),
        (lambda: DiceLoss(ignore_index=1.0), TypeError, "ignore_index"),
        (lambda: DiceCELoss(reduction="none"), ValueError, "reduction"),
        (lambda: DiceCELoss(lambda_ce=-1.0), ValueError, "lambda_ce"),
        (lambda: DiceCELoss(label_smoothing=1.5), ValueError, "label_smoothing"),
        (lambda: DiceCELoss(weight=2.0, include_background=False), ValueError, "weight"),
        (lambda: DiceFocalLoss(lambda_focal=-0.1), ValueError, "lambda_focal"),
        (lambda: DiceFocalLoss(alpha=1.5), ValueError, "alpha"),
    ],
)
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def _call_error(loss, x, y, error, match):
    with pytest.raises(error, match=match):
        loss(x, y)


def test_bad_inputs():
    x = mx.zeros((1, 3, 2, 2, 2))
    labels = mx.zeros((1, 1, 2, 2, 2), dtype=mx.int32)
    _call_error(DiceLoss(), np.zeros((1, 3, 2, 2, 2)), labels, TypeError, "input")
    _call_error(DiceLoss(), x.astype(mx.int32), labels, TypeError, "input")
    _call_error(DiceLoss(), x, labels[0], ValueError, "dimensions")
    _call_error(DiceLoss(), x, mx.zeros((1, 2, 2, 2, 2)), ValueError, "channels")
    _call_error(DiceLoss(), x, mx.zeros((1, 1, 2, 2, 3)), ValueError, "spatial")
    _call_error(DiceLoss(), mx.zeros((1, 3)), mx.zeros((1, 3)), ValueError, "spatial")
    _call_error(DiceLoss(), x, labels, ValueError, "to_onehot_y")
    _call_error(DiceLoss(to_onehot_y=True), x, labels + 3, ValueError, r"\[0, 2\].*\[3, 3\]")
    _call_error(DiceLoss(to_onehot_y=True), x, labels - 1, ValueError, "labels must lie")
    _call_error(DiceLoss(to_onehot_y=True), x, labels.astype(mx.float32) + 0.5, ValueError, "whole numbers")
    _call_error(DiceLoss(to_onehot_y=True, weight=[1.0, 2.0]), x, labels, ValueError, "one value per class")
    _call_error(DiceCELoss(to_onehot_y=True, weight=[1.0, 2.0]), x, labels, ValueError, "one value per input channel")
    _call_error(DiceLoss(other_act=lambda a: np.zeros(3)), x, x, TypeError, "other_act")


def test_single_channel_warnings_as_monai():
    x, y = _data(5, channels=1, target="binary")
    with pytest.warns(UserWarning, match="softmax=True"):
        DiceLoss(softmax=True)(mx.array(x), mx.array(y))
    with pytest.warns(UserWarning, match="to_onehot_y=True"):
        DiceLoss(to_onehot_y=True)(mx.array(x), mx.array(y))
    with pytest.warns(UserWarning, match="include_background=False"):
        DiceLoss(include_background=False)(mx.array(x), mx.array(y))
