"""lucid_mlx.inferers.SlidingWindowInferer against MONAI 1.6.1's SlidingWindowInferer."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from arrays import assert_close
from lucid_mlx.inferers import SlidingWindowInferer
from lucid_mlx.nn import Conv3d

torch = pytest.importorskip("torch", reason="MONAI's SlidingWindowInferer runs on PyTorch")
monai_inferers = pytest.importorskip("monai.inferers", reason="MONAI's SlidingWindowInferer is the reference")


@pytest.fixture(scope="module")
def conv_pair():
    torch.manual_seed(20)
    theirs = torch.nn.Conv3d(1, 2, 3, padding=1)
    ours = Conv3d(1, 2, 3, padding=1)
    ours.weight = mx.array(theirs.weight.detach().numpy())
    ours.bias = mx.array(theirs.bias.detach().numpy())
    return ours, theirs


CASES = [
    ("defaults", dict(roi_size=(8, 8, 8))),
    ("cached-gaussian", dict(roi_size=(8, 6, 8), sw_batch_size=3, mode="gaussian", sigma_scale=0.2,
                             cache_roi_weight_map=True, overlap=0.5)),
    ("cpu-thresh", dict(roi_size=(8, 8, 8), sw_batch_size=2, cpu_thresh=100)),
    ("padded", dict(roi_size=(20, 8, 8), sw_batch_size=2, padding_mode="replicate")),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[c[0] for c in CASES])
def test_inferer_matches_monai(conv_pair, name, kwargs):
    ours, theirs = conv_pair
    x = np.random.default_rng(21).normal(size=(2, 1, 14, 11, 13)).astype(np.float32)
    with torch.no_grad():
        want = monai_inferers.SlidingWindowInferer(**kwargs)(torch.tensor(x), theirs)
    got = SlidingWindowInferer(**kwargs)(mx.array(x), ours)
    assert_close(got, want.double().numpy(), what=name)


def test_call_keywords_reach_the_network_and_the_inference(conv_pair):
    ours, theirs = conv_pair
    x = np.random.default_rng(22).normal(size=(1, 1, 12, 12, 12)).astype(np.float32)
    kwargs = dict(roi_size=(8, 8, 8), sw_batch_size=2)
    with torch.no_grad():
        want = monai_inferers.SlidingWindowInferer(**kwargs)(
            torch.tensor(x), lambda t, shift: theirs(t) + shift, 0.5, device="cpu", buffer_steps=1
        )
    got = SlidingWindowInferer(**kwargs)(
        mx.array(x), lambda a, shift: ours(a) + shift, 0.5, device="cpu", buffer_steps=1
    )
    assert_close(got, want.double().numpy())


def test_cached_map_is_the_gaussian_window():
    inferer = SlidingWindowInferer((5, 3, 7), mode="gaussian", cache_roi_weight_map=True)
    data_utils = pytest.importorskip("monai.data.utils", reason="MONAI's importance map is the reference")
    want = data_utils.compute_importance_map((5, 3, 7), mode="gaussian", sigma_scale=0.125)
    assert_close(inferer.roi_weight_map, want.double().numpy())


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(roi_size=8, cache_roi_weight_map=True), ValueError, "cache_roi_weight_map"),
        (dict(roi_size=(8, -1, 8), cache_roi_weight_map=True), ValueError, "positive"),
        (dict(roi_size=8, mode="median"), ValueError, "mode"),
        (dict(roi_size=8, sw_batch_size=0), ValueError, "sw_batch_size"),
        (dict(roi_size=8, cpu_thresh=-1), ValueError, "cpu_thresh"),
        (dict(roi_size=8, progress="yes"), TypeError, "progress"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SlidingWindowInferer(**kwargs)
