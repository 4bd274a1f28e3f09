"""Convolution, ResidualUnit, ADN and SkipConnection against MONAI's, through the twin helper."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx
from lucid_mlx import nn as lnn
from lucid_mlx.models.blocks import ADN, Convolution, ResidualUnit
from lucid_mlx.models.layers import SkipConnection

monai_blocks = pytest.importorskip("monai.networks.blocks", reason="the blocks are checked against MONAI")
from monai_twin import check_twin, torch  # noqa: E402

CONVOLUTIONS = [
    dict(in_channels=2, out_channels=4),
    dict(in_channels=2, out_channels=4, strides=2, norm="batch"),
    dict(in_channels=2, out_channels=4, strides=(1, 2, 2), kernel_size=(3, 5, 1), act="relu",
         norm=("instance", {"affine": True}), adn_ordering="AN"),
    dict(in_channels=4, out_channels=4, groups=2, dilation=2, bias=False, act=("leakyrelu", {"negative_slope": 0.1}),
         norm=("group", {"num_groups": 2}), adn_ordering="NA"),
    dict(in_channels=2, out_channels=3, strides=2, is_transposed=True, norm="batch"),
    dict(in_channels=2, out_channels=3, strides=2, kernel_size=2, padding=0, output_padding=0,
         is_transposed=True, act="elu", norm=None),
    dict(in_channels=2, out_channels=3, conv_only=True),
    dict(in_channels=2, out_channels=3, act=None, norm=None, padding=0),
    dict(in_channels=2, out_channels=3, dropout=0.0, dropout_dim=3, adn_ordering="DNA"),
]

RESIDUAL_UNITS = [
    dict(in_channels=2, out_channels=2),
    dict(in_channels=2, out_channels=4, strides=2, norm="batch", subunits=3),
    dict(in_channels=2, out_channels=4, last_conv_only=True, act=("prelu", {"num_parameters": 4})),
    dict(in_channels=4, out_channels=4, strides=(2, 1, 2), kernel_size=5, subunits=1, norm=("group", {"num_groups": 2})),
    dict(in_channels=2, out_channels=3, subunits=0, dilation=2, bias=False, adn_ordering="AN"),
]


@pytest.mark.parametrize("kwargs", CONVOLUTIONS, ids=str)
def test_convolution_matches_monai(kwargs):
    def make():
        return monai_blocks.Convolution(3, **kwargs)

    check_twin(make(), Convolution(3, **kwargs), make, (2, kwargs["in_channels"], 6, 7, 8), seed=1)


@pytest.mark.parametrize("kwargs", RESIDUAL_UNITS, ids=str)
def test_residual_unit_matches_monai(kwargs):
    def make():
        return monai_blocks.ResidualUnit(3, **kwargs)

    check_twin(make(), ResidualUnit(3, **kwargs), make, (2, kwargs["in_channels"], 8, 6, 7), seed=2)


@pytest.mark.parametrize("ordering", ["NDA", "AN", "DA", "nad", "ANDA"])
def test_adn_children_follow_the_ordering(ordering):
    kwargs = dict(ordering=ordering, in_channels=4, act="prelu", norm="batch", norm_dim=3, dropout=0.1)
    theirs, ours = monai_blocks.ADN(**kwargs), ADN(**kwargs)
    assert [n for n, _ in theirs.named_children()] == list(ours.keys())
    assert sorted(theirs.state_dict()) == sorted(lucid_mlx.torch_state_dict(ours))


def test_repr_follows_monai_structure():
    block = Convolution(3, 1, 2, strides=2, norm="batch")
    assert repr(block).splitlines()[0] == "Convolution(" and "(adn): ADN(" in repr(block)
    assert "(N): BatchNorm3d(2" in repr(block) and "(A): PReLU(num_parameters=1)" in repr(block)


@pytest.mark.parametrize("mode", ["cat", "add", "mul"])
def test_skip_connection_matches_monai(mode):
    from monai.networks.layers import SkipConnection as TorchSkip

    t_conv = torch.nn.Conv3d(3, 3, 3, padding=1)
    theirs = TorchSkip(t_conv, mode=mode)
    ours = SkipConnection(lnn.Conv3d(3, 3, 3, padding=1), mode=mode)
    lucid_mlx.load_torch_state_dict(ours, theirs.state_dict())
    assert sorted(lucid_mlx.torch_state_dict(ours)) == ["submodule.bias", "submodule.weight"]
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 4, 4)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.array(ours(mx.array(x))), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("call, error, match", [
    (lambda: Convolution(2, 1, 1), ValueError, r"`spatial_dims` must be 3 \(lucid_mlx is 3-D\), got 2"),
    (lambda: Convolution(3, 1, 1, kernel_size=2), ValueError, "same padding is not available"),
    (lambda: Convolution(3, 1, 1, output_padding=1), ValueError, "`output_padding` applies to transposed"),
    (lambda: Convolution(3, 1, 1, adn_ordering="NAX"), ValueError, "`ordering`"),
    (lambda: Convolution(3, 1, 1, norm="layer"), ValueError, "'layer' is not supported"),
    (lambda: ResidualUnit(3, 1, 1, subunits=2.0), TypeError, "subunits"),
    (lambda: ResidualUnit(1, 1, 1), ValueError, "`spatial_dims` must be 3"),
    (lambda: ADN(norm="batch", in_channels=2), ValueError, "`norm_dim` or `dropout_dim`"),
    (lambda: SkipConnection(lnn.PReLU(), mode="sub"), ValueError, "`mode`"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_the_twin_helper_catches_a_wrong_twin():
    """The oracle must be able to fail: slopes on the wrong axis, and a wrong BatchNorm momentum."""
    import mlx.nn as mnn

    kwargs = dict(in_channels=2, out_channels=5, act=("prelu", {"num_parameters": 5}), norm="batch")

    def make():
        return monai_blocks.Convolution(3, **kwargs)

    wrong = Convolution(3, **kwargs)
    wrong.adn["A"] = mnn.PReLU(5)  # MLX's PReLU: slopes along W (here W == C == 5)
    with pytest.raises(AssertionError):
        check_twin(make(), wrong, make, (2, 2, 4, 4, 5))
    wrong = Convolution(3, **kwargs)
    wrong.adn["N"] = lnn.BatchNorm3d(5, momentum=0.2)
    with pytest.raises(AssertionError, match="buffers"):
        check_twin(make(), wrong, make, (2, 2, 4, 4, 5))
