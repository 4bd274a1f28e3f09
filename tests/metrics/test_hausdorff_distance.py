"""lucid_mlx.metrics' Hausdorff distance against MONAI 1.6.1's, on hand-made and random masks."""

from __future__ import annotations

import sys
import warnings

import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx.metrics import HausdorffDistanceMetric, compute_hausdorff_distance

pytest.importorskip("scipy", reason="the Hausdorff distance uses SciPy's distance transform")
torch = pytest.importorskip("torch", reason="MONAI's metrics run on PyTorch")
monai_metrics = pytest.importorskip("monai.metrics", reason="MONAI's Hausdorff distance is the reference")

pytestmark = pytest.mark.filterwarnings("ignore:the (ground truth|prediction) of class")


def _blobs(seed: int, batch=2, classes=3, spatial=(14, 12, 16)) -> np.ndarray:
    """One-hot masks of random ellipsoids (class 0 is what no ellipsoid covers)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in spatial], indexing="ij"), axis=-1)
    out = np.zeros((batch, classes) + spatial, np.float32)
    for b in range(batch):
        label = np.zeros(spatial, np.int64)
        for c in range(1, classes):
            for _ in range(2):
                centre = rng.uniform(2, np.array(spatial) - 2)
                radii = rng.uniform(1.5, 4.5, size=len(spatial))
                label[(((grid - centre) / radii) ** 2).sum(-1) <= 1] = c
        out[b] = np.moveaxis(np.eye(classes, dtype=np.float32)[label], -1, 0)
    return out


def _monai(pred, true, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return monai_metrics.compute_hausdorff_distance(torch.tensor(pred), torch.tensor(true), **kwargs).numpy()


def _same(got, want) -> None:
    np.testing.assert_allclose(np.array(got), want, rtol=1e-5, atol=1e-6, equal_nan=True)


CASES = [
    ("max", dict()),
    ("hd95", dict(percentile=95)),
    ("hd95-anisotropic", dict(percentile=95, spacing=(0.8, 1.5, 2.5))),
    ("hd50-isotropic-number", dict(percentile=50, spacing=0.7)),
    ("per-item-spacing", dict(percentile=95, spacing=[(1.0, 1.0, 3.0), (2.0, 0.5, 1.0)])),
    ("directed-background", dict(directed=True, include_background=True, spacing=(1.0, 2.0, 1.0))),
    ("chessboard", dict(distance_metric="chessboard")),
    ("taxicab-hd95", dict(distance_metric="taxicab", percentile=95)),
    ("ignore-class", dict(ignore_index=2, percentile=95)),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[c[0] for c in CASES])
def test_matches_monai_on_blobs(name, kwargs):
    pred, true = _blobs(1), _blobs(2)
    _same(compute_hausdorff_distance(mx.array(pred), mx.array(true), **kwargs), _monai(pred, true, **kwargs))


def test_2d_matches_monai():
    pred, true = _blobs(3, spatial=(20, 17)), _blobs(4, spatial=(20, 17))
    kwargs = dict(percentile=95, spacing=(0.5, 2.0))
    _same(compute_hausdorff_distance(pred, true, **kwargs), _monai(pred, true, **kwargs))


def _cubes(shift: int, axis: int, empty: str = "") -> tuple[np.ndarray, np.ndarray]:
    """A 4-voxel cube and the same cube moved ``shift`` voxels along ``axis``, one-hot with a background."""
    pred = np.zeros((1, 2, 12, 12, 12), np.float32)
    true = np.zeros_like(pred)
    pred[0, 1, 3:7, 3:7, 3:7] = 1
    moved = [slice(3, 7)] * 3
    moved[axis] = slice(3 + shift, 7 + shift)
    true[(0, 1, *moved)] = 1
    if empty == "pred":
        pred[0, 1] = 0
    if empty == "true":
        true[0, 1] = 0
    if empty == "both":
        pred[0, 1] = true[0, 1] = 0
    pred[0, 0], true[0, 0] = 1 - pred[0, 1], 1 - true[0, 1]
    return pred, true


def test_shifted_cube_by_hand():
    # Every surface voxel moves by `shift` voxels along `axis`; the farthest one is that far from the
    # other surface, so HD (and, for 3 voxels, most of the distances) is shift * spacing[axis].
    spacing = (0.5, 1.2, 3.0)
    for axis in range(3):
        pred, true = _cubes(3, axis)
        hd = np.array(compute_hausdorff_distance(pred, true, spacing=spacing))
        assert hd[0, 0] == pytest.approx(3 * spacing[axis], rel=1e-6)
    pred, true = _cubes(0, 0)
    assert np.array(compute_hausdorff_distance(pred, true, percentile=95))[0, 0] == 0.0


@pytest.mark.parametrize("empty", ["pred", "true", "both"])
@pytest.mark.parametrize("percentile", [None, 95])
def test_empty_masks_as_monai(empty, percentile):
    pred, true = _cubes(2, 1, empty=empty)
    got = np.array(compute_hausdorff_distance(pred, true, percentile=percentile))
    _same(got, _monai(pred, true, percentile=percentile))
    expected = np.nan if empty == "both" or percentile else np.inf
    np.testing.assert_equal(got[0, 0], expected)


def test_empty_mask_warns():
    pred, true = _cubes(2, 1, empty="pred")
    with pytest.warns(UserWarning, match="prediction of class 1 is all 0"):
        compute_hausdorff_distance(pred, true)


def test_metric_accumulates_like_monai():
    kwargs = dict(percentile=95, reduction="mean_batch", get_not_nans=True, ignore_index=1)
    ours, theirs = HausdorffDistanceMetric(**kwargs), monai_metrics.HausdorffDistanceMetric(**kwargs)
    for seed, spacing in ((5, (1.0, 1.0, 2.0)), (7, (0.5, 0.5, 0.5))):
        pred, true = _blobs(seed), _blobs(seed + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = theirs(torch.tensor(pred), torch.tensor(true), spacing=spacing)
        _same(ours(mx.array(pred), mx.array(true), spacing=spacing), want.numpy())
    for got, want in zip(ours.aggregate(), theirs.aggregate()):
        _same(got, want.numpy())


def test_missing_scipy_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.ndimage", None)
    pred, true = _cubes(1, 0)
    with pytest.raises(ImportError, match=r"lucid_mlx\[examples\]"):
        compute_hausdorff_distance(pred, true)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(percentile=101), ValueError, "percentile"),
        (dict(distance_metric="cosine"), ValueError, "distance_metric"),
        (dict(spacing=(1.0, 1.0)), ValueError, "spacing"),
        (dict(spacing=(1.0, -1.0, 1.0)), ValueError, "spacing"),
        (dict(spacing=[(1.0, 1.0, 1.0)] * 3), ValueError, "batch item"),
        (dict(spacing="1mm"), TypeError, "spacing"),
        (dict(directed=1), TypeError, "directed"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    pred, true = _cubes(1, 0)
    with pytest.raises(error, match=match):
        compute_hausdorff_distance(pred, true, **kwargs)


def test_bad_inputs():
    pred, true = _cubes(1, 0)
    with pytest.raises(ValueError, match="one channel per class"):
        compute_hausdorff_distance(pred, true[:, :1])
    with pytest.raises(ValueError, match="spatial"):
        compute_hausdorff_distance(pred, true[..., :5])
    with pytest.raises(TypeError, match="spacing"):
        HausdorffDistanceMetric()(pred, true, voxel_size=1.0)
