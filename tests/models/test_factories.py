"""MONAI's act/norm/dropout arguments resolved by lucid_mlx.models.layers, against MONAI's own layers."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mnn
import numpy as np
import pytest

import lucid_mlx
from lucid_mlx import nn as lnn
from lucid_mlx.models.layers import Act, Norm, get_act_layer, get_dropout_layer, get_norm_layer, split_args

torch = pytest.importorskip("torch", reason="the factories are checked against MONAI's layers")
monai_layers = pytest.importorskip("monai.networks.layers", reason="the factories are checked against MONAI")

ACTS = [
    "relu", "RELU", "leakyrelu", ("leakyrelu", {"negative_slope": 0.2, "inplace": True}), "prelu",
    ("PReLU", {"num_parameters": 3, "init": 0.1}), "relu6", "selu", "celu", ("celu", {"alpha": 0.5}),
    "elu", ("elu", {"alpha": 2.0}), "gelu", ("gelu", {"approximate": "tanh"}), "sigmoid", "tanh",
    "softmax", ("softmax", {"dim": 1}), ("logsoftmax", {"dim": 1}), "swish", ("swish", {"alpha": 0.7}),
    "memswish", "mish", "geglu",
]


def _x(shape=(2, 3, 4, 5, 6), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 2


@pytest.mark.parametrize("act", ACTS, ids=str)
def test_activation_matches_monai(act):
    theirs = monai_layers.get_act_layer(act)
    ours = get_act_layer(act)
    assert isinstance(ours, mnn.Module)
    if isinstance(theirs, torch.nn.PReLU):
        with torch.no_grad():
            theirs.weight.copy_(torch.linspace(0.05, 0.4, theirs.weight.numel()))
        lucid_mlx.load_torch_state_dict(ours, theirs.state_dict())
    x = _x()
    with pytest.warns(UserWarning) if act == "softmax" else _Quiet():
        expected = theirs(torch.from_numpy(x.copy())).detach().numpy()
    np.testing.assert_allclose(np.array(ours(mx.array(x))), expected, rtol=1e-5, atol=1e-6)


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


NORMS = [
    ("batch", {}), ("BATCH", {"momentum": 0.3, "eps": 1e-3}), ("batch", {"affine": False}),
    ("instance", {}), ("instance", {"affine": True}), ("instance", {"track_running_stats": True}),
    ("instance_nvfuser", {"affine": True}), ("syncbatch", {}), ("group", {"num_groups": 2}),
    ("group", {"num_groups": 3, "num_channels": 6, "affine": False}),
]


@pytest.mark.parametrize("name, kwargs", NORMS, ids=str)
def test_norm_matches_monai_in_train_and_eval(name, kwargs):
    arg = (name, kwargs) if kwargs else name
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # instance_nvfuser warns that apex is missing
        theirs = monai_layers.get_norm_layer(arg, spatial_dims=3, channels=6)
    ours = get_norm_layer(arg, spatial_dims=3, channels=6)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.rand(p.shape, generator=torch.Generator().manual_seed(1)) + 0.5)
    lucid_mlx.load_torch_state_dict(ours, theirs.state_dict())
    assert sorted(lucid_mlx.torch_state_dict(ours)) == sorted(theirs.state_dict())
    x = _x((2, 6, 3, 4, 5))
    for training in (True, False):
        theirs.train(training)
        ours.train(training)
        with torch.no_grad():
            expected = theirs(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(np.array(ours(mx.array(x))), expected, rtol=1e-5, atol=1e-5)
    state = lucid_mlx.torch_state_dict(ours)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(np.array(state[key]), value.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("arg, dim, kind", [
    (0.3, 1, mnn.Dropout), (0.3, 3, lnn.Dropout3d), (("dropout", {"p": 0.2, "inplace": True}), 3, lnn.Dropout3d),
    (("Dropout", {"p": 0.2}), 2, lnn.Dropout3d), (0, 1, mnn.Dropout),
])
def test_dropout_types_and_identity_in_eval(arg, dim, kind):
    layer = get_dropout_layer(arg, dropout_dim=dim)
    assert isinstance(layer, kind)
    layer.eval()
    x = mx.array(_x())
    np.testing.assert_array_equal(np.array(layer(x)), np.array(x))


def test_channel_dropout_zeroes_whole_channels_and_rescales():
    layer = get_dropout_layer(("dropout", {"p": 0.5}), dropout_dim=3)
    mx.random.seed(3)
    y = np.array(layer(mx.ones((4, 8, 2, 3, 3))))
    per_channel = y.reshape(4, 8, -1)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(-1) == per_channel.max(-1)).all()
    assert 0 < (per_channel[..., 0] == 0).sum() < 32


def test_empty_name_is_identity_and_names_are_monais():
    for layer in (get_act_layer(""), get_norm_layer(""), get_dropout_layer("")):
        assert isinstance(layer, mnn.Identity)
    assert Act.PRELU == "PRELU" and Norm.INSTANCE == "INSTANCE"
    assert split_args(("prelu", {"init": 0.1})) == ("prelu", {"init": 0.1})
    assert isinstance(get_act_layer((lnn.PReLU, {"num_parameters": 2})), lnn.PReLU)
    assert isinstance(get_norm_layer((lnn.GroupNorm, {"num_groups": 2}), 3, 4), lnn.GroupNorm)


@pytest.mark.parametrize("call, error, match", [
    (lambda: get_act_layer("swishy"), ValueError, "'swishy' is not a known name"),
    (lambda: get_act_layer(("prelu", {"slope": 1})), TypeError, "`act` 'prelu' got arguments"),
    (lambda: get_act_layer(("gelu", {"approximate": "fast"})), ValueError, "approximate"),
    (lambda: get_act_layer(("relu", [1])), TypeError, "layer specifiers"),
    (lambda: get_act_layer((lambda: torch.nn.ReLU(), {})), TypeError, "must build an mlx.nn.Module"),
    (lambda: get_norm_layer("layer", 3, 4), ValueError, "'layer' is not supported"),
    (lambda: get_norm_layer("localresponse", 3, 4), ValueError, "not supported"),
    (lambda: get_norm_layer("batch", 2, 4), ValueError, "`spatial_dims` must be 3"),
    (lambda: get_norm_layer("group", 3, 4), TypeError, "num_groups"),
    (lambda: get_norm_layer(("syncbatch", {"process_group": 1, "bogus": 2}), 3, 4), TypeError, "bogus"),
    (lambda: get_dropout_layer("alphadropout"), ValueError, "alphadropout"),
    (lambda: get_dropout_layer(1.0), ValueError, r"\[0, 1\)"),
    (lambda: get_dropout_layer(0.1, dropout_dim=4), ValueError, "dropout_dim"),
])
def test_refusals_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
