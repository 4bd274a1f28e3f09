"""lucid_mlx.inferers.sliding_window_inference against MONAI 1.6.1's, with the same predictors.

The predictors are convolutions with zero padding, so every window's output
depends on where the window lies: a window misplaced, mis-weighted or
mis-counted changes the stitched result.  The PyTorch twin of each predictor
has the same weights, and MONAI's result is the reference.
"""

from __future__ import annotations

import sys

import mlx.core as mx
import numpy as np
import pytest

from arrays import assert_close
from lucid_mlx.inferers import sliding_window_inference
from lucid_mlx.nn import Conv3d
from lucid_mlx.nn import functional as F

torch = pytest.importorskip("torch", reason="MONAI's sliding_window_inference runs on PyTorch")
monai_inferers = pytest.importorskip("monai.inferers", reason="MONAI's sliding_window_inference is the reference")
TF = torch.nn.functional


def _conv_pair(c_in=2, c_out=3, seed=0):
    """A lucid_mlx Conv3d and a torch Conv3d with the same weights."""
    torch.manual_seed(seed)
    theirs = torch.nn.Conv3d(c_in, c_out, 3, padding=1)
    ours = Conv3d(c_in, c_out, 3, padding=1)
    ours.weight = mx.array(theirs.weight.detach().numpy())
    ours.bias = mx.array(theirs.bias.detach().numpy())
    return ours, theirs


def _volume(shape, seed=1):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _monai(x: np.ndarray, predictor, **kwargs):
    with torch.no_grad():
        return monai_inferers.sliding_window_inference(torch.tensor(x), predictor=predictor, **kwargs)


def _np(t) -> np.ndarray:
    return t.detach().double().numpy()


CASES = [
    ("basic", dict(roi_size=(8, 8, 8), sw_batch_size=1)),
    ("batched-windows", dict(roi_size=(8, 8, 8), sw_batch_size=5, overlap=0.5)),
    ("whole-axis", dict(roi_size=(8, -1, None), sw_batch_size=2)),
    ("int-roi", dict(roi_size=9, sw_batch_size=3, overlap=0.0)),
    ("per-axis-overlap", dict(roi_size=(7, 6, 9), sw_batch_size=4, overlap=(0.5, 0.2, 0.75))),
    ("gaussian", dict(roi_size=(8, 8, 8), sw_batch_size=2, mode="gaussian")),
    ("gaussian-sigmas",
     dict(roi_size=(10, 6, 8), sw_batch_size=2, mode="gaussian", sigma_scale=(0.3, 0.1, 0.2), overlap=0.6)),
    ("pad-constant", dict(roi_size=(24, 8, 30), sw_batch_size=2, cval=1.5)),
    ("pad-reflect", dict(roi_size=(24, 8, 30), sw_batch_size=2, padding_mode="reflect")),
    ("pad-replicate", dict(roi_size=(21, 8, 27), sw_batch_size=1, padding_mode="replicate", mode="gaussian")),
    ("pad-circular", dict(roi_size=(24, 19, 8), sw_batch_size=3, padding_mode="circular")),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[c[0] for c in CASES])
def test_conv_predictor_matches_monai(name, kwargs):
    ours, theirs = _conv_pair()
    x = _volume((2, 2, 18, 15, 21))
    got = sliding_window_inference(mx.array(x), predictor=ours, **kwargs)
    assert_close(got, _np(_monai(x, theirs, **kwargs)), what=name)


def test_2d_predictor_matches_monai():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 2, 3, 3)).astype(np.float32)
    theirs = lambda t: TF.conv2d(t, torch.tensor(w), padding=1)  # noqa: E731
    w_mx = mx.array(w.transpose(0, 2, 3, 1))
    ours = lambda a: mx.conv2d(a.transpose(0, 2, 3, 1), w_mx, padding=1).transpose(0, 3, 1, 2)  # noqa: E731
    x = _volume((1, 2, 30, 23))
    kwargs = dict(roi_size=(12, 12), sw_batch_size=3, overlap=0.4, mode="gaussian")
    assert_close(sliding_window_inference(mx.array(x), predictor=ours, **kwargs), _np(_monai(x, theirs, **kwargs)))


def _deep_supervision_pair():
    """A predictor with three outputs at 1x, 1/2x and 2x the window's scale, in both frameworks."""
    ours, theirs = _conv_pair(2, 3, seed=3)
    ours2, theirs2 = _conv_pair(2, 2, seed=4)

    def torch_net(t):
        return theirs(t), TF.avg_pool3d(theirs2(t), 2), TF.interpolate(theirs2(t), scale_factor=2, mode="nearest")

    def mlx_net(a):
        return ours(a), F.avg_pool3d(ours2(a), 2), F.interpolate(ours2(a), scale_factor=2, mode="nearest")

    return mlx_net, torch_net


@pytest.mark.parametrize("mode", ["constant", "gaussian"])
def test_tuple_of_scales_matches_monai(mode):
    mlx_net, torch_net = _deep_supervision_pair()
    x = _volume((1, 2, 20, 17, 23), seed=5)
    kwargs = dict(roi_size=(8, 8, 8), sw_batch_size=4, overlap=0.5, mode=mode)
    got = sliding_window_inference(mx.array(x), predictor=mlx_net, **kwargs)
    want = _monai(x, torch_net, **kwargs)
    assert isinstance(got, tuple) and len(got) == 3
    assert got[1].shape == (1, 2, 10, 8, 11) and got[2].shape == (1, 2, 40, 34, 46)
    for g, w in zip(got, want):
        assert_close(g, _np(w))


def test_chained_rescaling_of_gaussian_weights_matches_monai():
    # Outputs at 1/2 then 1/4 of the window: MONAI derives the second weight map from the first.
    ours, theirs = _conv_pair(2, 2, seed=6)
    x = _volume((1, 2, 16, 16, 24), seed=7)
    kwargs = dict(roi_size=(8, 8, 8), sw_batch_size=2, overlap=0.5, mode="gaussian", sigma_scale=0.3)
    got = sliding_window_inference(
        mx.array(x), predictor=lambda a: (F.avg_pool3d(ours(a), 2), F.avg_pool3d(ours(a), 4)), **kwargs
    )
    want = _monai(x, lambda t: (TF.avg_pool3d(theirs(t), 2), TF.avg_pool3d(theirs(t), 4)), **kwargs)
    for g, w in zip(got, want):
        assert_close(g, _np(w))


def test_dict_output_matches_monai_with_padding():
    mlx_net, torch_net = _deep_supervision_pair()
    x = _volume((2, 2, 12, 9, 14), seed=8)
    kwargs = dict(roi_size=(16, 8, 8), sw_batch_size=3, overlap=0.5)
    got = sliding_window_inference(mx.array(x), predictor=lambda a: dict(zip("acb", mlx_net(a))), **kwargs)
    want = _monai(x, lambda t: dict(zip("acb", torch_net(t))), **kwargs)
    assert list(got) == ["a", "b", "c"]  # sorted, as MONAI
    for key in "abc":
        assert_close(got[key], _np(want[key]), what=key)


def test_window_sized_output_after_a_rescaled_one():
    # MONAI 1.6.1 fails here (it weighs the window-sized output with the rescaled map);
    # each output must come out as it does when it is alone.
    mlx_net, _ = _deep_supervision_pair()
    x = mx.array(_volume((1, 2, 12, 12, 12), seed=16))
    kwargs = dict(roi_size=(8, 8, 8), sw_batch_size=2, overlap=0.5, mode="gaussian")
    both = sliding_window_inference(x, predictor=lambda a: mlx_net(a)[1::-1], **kwargs)
    alone = sliding_window_inference(x, predictor=lambda a: mlx_net(a)[0], **kwargs)
    assert_close(both[1], np.array(alone).astype(np.float64))


def test_identity_predictor_returns_the_input():
    # Hand check, no MONAI: each voxel is a weighted mean of copies of itself.
    x = _volume((1, 1, 13, 11, 17), seed=9)
    for mode in ("constant", "gaussian"):
        got = sliding_window_inference(mx.array(x), (6, 5, 7), 4, lambda a: a, overlap=0.6, mode=mode)
        np.testing.assert_allclose(np.array(got), x, rtol=1e-6, atol=1e-6)


def test_process_fn_coords_condition_and_weight_map_match_monai():
    ours, theirs = _conv_pair(2, 3, seed=10)
    x = _volume((1, 2, 14, 13, 12), seed=11)
    cond = _volume((1, 2, 14, 13, 12), seed=12)
    weights = np.random.default_rng(13).uniform(0.5, 2.0, size=(6, 6, 6)).astype(np.float32)

    def torch_net(t, coords, scale, condition):
        start = float(coords[0][2].start)
        return theirs(t + condition) * scale + start

    def mlx_net(a, coords, scale, condition):
        return ours(a + condition) * scale + float(coords[0][2].start)

    def torch_process(seg, win, w):
        return tuple(torch.relu(s) for s in seg), w * 2.0

    def mlx_process(seg, win, w):
        return tuple(mx.maximum(s, 0) for s in seg), w * 2.0

    kwargs = dict(roi_size=(6, 6, 6), sw_batch_size=1, overlap=0.5, with_coord=True)
    want = _monai(x, torch_net, roi_weight_map=torch.tensor(weights), process_fn=torch_process, scale=0.5,
                  condition=torch.tensor(cond), **kwargs)
    got = sliding_window_inference(mx.array(x), predictor=mlx_net, roi_weight_map=mx.array(weights),
                                   process_fn=mlx_process, scale=0.5, condition=mx.array(cond), **kwargs)
    assert_close(got, _np(want))


def test_buffer_steps_accepted_and_same_result_as_monai():
    ours, theirs = _conv_pair(2, 2, seed=14)
    x = _volume((2, 2, 16, 12, 20), seed=15)
    kwargs = dict(roi_size=(8, 8, 8), sw_batch_size=3, overlap=0.25, buffer_steps=2, buffer_dim=0)
    assert_close(sliding_window_inference(mx.array(x), predictor=ours, **kwargs), _np(_monai(x, theirs, **kwargs)))


def test_devices_as_mlx_names():
    ours, theirs = _conv_pair()
    x = _volume((1, 2, 10, 10, 10))
    kwargs = dict(roi_size=(6, 6, 6), sw_batch_size=2)
    got = sliding_window_inference(mx.array(x), predictor=ours, sw_device="cpu", device=mx.cpu, **kwargs)
    assert_close(got, _np(_monai(x, theirs, **kwargs)))


def test_float16_input_gives_float16_output():
    x = mx.array(_volume((1, 1, 9, 9, 9))).astype(mx.float16)
    got = sliding_window_inference(x, (4, 4, 4), 2, lambda a: a * 2)
    assert got.dtype == mx.float16
    np.testing.assert_allclose(np.array(got.astype(mx.float32)), np.array(x.astype(mx.float32)) * 2, rtol=2e-3)


def test_memory_is_bounded_by_the_window_batch():
    # The output (4 x 96^3 float32, 14 MB) is added into in place; copying it per window
    # (what `out[idx] += p` does) would add another 14 MB to the peak.
    conv = Conv3d(1, 4, 3, padding=1)
    x = mx.random.normal((1, 1, 96, 96, 96), key=mx.random.key(0))
    mx.eval(x, conv.parameters())
    mx.reset_peak_memory()
    mx.eval(conv(mx.zeros((2, 1, 32, 32, 32))))
    predictor_peak = mx.get_peak_memory()  # the conv's own working memory on one window batch
    held = mx.get_active_memory()
    mx.reset_peak_memory()
    out = sliding_window_inference(x, (32, 32, 32), 2, conv, overlap=0.25)
    mx.eval(out)
    peak = mx.get_peak_memory()
    output, count = 4 * 96**3 * 4, 96**3 * 4
    window_batch = 2 * 32**3 * 4 * (1 + 4)  # inputs and outputs of one batch of windows
    assert peak < held + output + count + predictor_peak + 4 * window_batch, (peak, predictor_peak)


def test_progress_bar_with_and_without_tqdm(capsys, monkeypatch):
    x = mx.array(_volume((1, 1, 8, 8, 8)))
    pytest.importorskip("tqdm", reason="the tqdm branch needs tqdm")
    sliding_window_inference(x, (4, 4, 4), 4, lambda a: a, overlap=0.0, progress=True)
    assert "2/2" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    sliding_window_inference(x, (4, 4, 4), 4, lambda a: a, overlap=0.0, progress=True)
    assert "sliding window: 2/2" in capsys.readouterr().err


def _err(error, match, *args, **kwargs):
    with pytest.raises(error, match=match):
        sliding_window_inference(*args, **kwargs)


def test_bad_arguments():
    x = mx.zeros((1, 1, 8, 8, 8))
    ident = lambda a: a  # noqa: E731
    _err(TypeError, "inputs", np.zeros((1, 1, 8, 8, 8)), 4, 1, ident)
    _err(TypeError, "inputs", x.astype(mx.int32), 4, 1, ident)
    _err(ValueError, "roi_size", x, (4, 4), 1, ident)
    _err(TypeError, "roi_size", x, (4, 4.5, 4), 1, ident)
    _err(ValueError, "sw_batch_size", x, 4, 0, ident)
    _err(TypeError, "predictor", x, 4, 1, "net")
    _err(ValueError, "overlap", x, 4, 1, ident, overlap=1.0)
    _err(ValueError, "overlap", x, 4, 1, ident, overlap=(0.1, 0.2))
    _err(ValueError, "mode", x, 4, 1, ident, mode="linear")
    _err(ValueError, "sigma_scale", x, 4, 1, ident, mode="gaussian", sigma_scale=0.0)
    _err(ValueError, "padding_mode", x, 4, 1, ident, padding_mode="zeros")
    _err(ValueError, "cval", x, 12, 1, ident, padding_mode="reflect", cval=1.0)
    _err(ValueError, "sw_device.*PyTorch device", x, 4, 1, ident, sw_device="cuda:0")
    _err(ValueError, "`device`", x, 4, 1, ident, device="tpu")
    _err(TypeError, "progress", x, 4, 1, ident, progress=1)
    _err(ValueError, "buffer_dim", x, 4, 1, ident, buffer_steps=1, buffer_dim=5)
    _err(ValueError, "buffer_steps", x, 4, 1, lambda a: (a, a), buffer_steps=1)
    _err(ValueError, "condition", x, 4, 1, lambda a, condition: a, condition=mx.zeros((1, 1, 8, 8, 7)))
    _err(ValueError, "roi_weight_map", x, 4, 1, ident, roi_weight_map=mx.ones((4, 4)))
    _err(ValueError, "non-negative", x, 4, 1, ident, roi_weight_map=-mx.ones((4, 4, 4)))
    _err(ValueError, "zero total weight", x, 4, 1, ident, overlap=0.0, roi_weight_map=mx.zeros((4, 4, 4)))
    _err(TypeError, "process_fn", x, 4, 1, ident, process_fn=3)


def test_bad_predictor_outputs():
    x = mx.zeros((1, 1, 8, 8, 8))
    _err(TypeError, "must return", x, 4, 1, lambda a: np.zeros(3))
    _err(TypeError, "output 1", x, 4, 1, lambda a: (a, "b"))
    _err(ValueError, "windows=2", x, 4, 2, lambda a: a[:1])
    _err(ValueError, "5 dimensions", x, 4, 1, lambda a: a[0])
    # 23 voxels scaled by 13/23 round down to 12 in floating point: the window would not fit.
    _err(ValueError, "lands on", mx.zeros((1, 1, 23, 4, 4)), (23, 4, 4), 1, lambda a: a[:, :, :13])
