"""UNet against MONAI's: strict load both ways, eval/train outputs, all gradients, running stats."""

from __future__ import annotations

import mlx.core as mx
import pytest

import lucid_mlx
from lucid_mlx.models import UNet

nets = pytest.importorskip("monai.networks.nets", reason="UNet is checked against MONAI's")
from monai_twin import check_twin  # noqa: E402

BASE = dict(spatial_dims=3, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2))

# (constructor kwargs, input shape, compare train mode)
CASES = [
    (BASE, (1, 1, 16, 16, 16), True),  # MONAI's defaults: PReLU, instance norm, plain convolutions
    (dict(BASE, num_res_units=2, norm="batch"), (2, 1, 16, 16, 16), True),
    (dict(BASE, in_channels=2, out_channels=4, channels=(4, 8, 8, 16), strides=((2, 2, 1), 2, 1),
          kernel_size=5, up_kernel_size=(3, 3, 1), num_res_units=1, act=("leakyrelu", {"negative_slope": 0.05}),
          norm=("group", {"num_groups": 2}), adn_ordering="AN", bias=False), (1, 2, 16, 16, 8), True),
    (dict(BASE, num_res_units=2, act=("prelu", {"num_parameters": 1, "init": 0.1}),
          norm=("instance", {"affine": True}), adn_ordering="NA"), (1, 1, 16, 16, 16), True),
    (dict(BASE, num_res_units=1, norm="batch", dropout=0.3), (2, 1, 16, 16, 16), False),
]


@pytest.mark.parametrize("kwargs, shape, train", CASES, ids=[str(c[0]) for c in CASES])
def test_matches_monai(kwargs, shape, train):
    def make():
        return nets.UNet(**kwargs)

    check_twin(make(), UNet(**kwargs), make, shape, seed=0, train=train)


def test_extra_strides_warn_as_in_monai():
    with pytest.warns(UserWarning, match="the last 1 values of strides will not be used"):
        net = UNet(**dict(BASE, strides=(2, 2, 2)))
    assert net(mx.zeros((1, 1, 8, 8, 8))).shape == (1, 2, 8, 8, 8)
    assert sorted(lucid_mlx.torch_state_dict(net)) == sorted(nets.UNet(**BASE).state_dict())


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(BASE, spatial_dims=2), ValueError, r"`spatial_dims` must be 3 \(lucid_mlx is 3-D\), got 2"),
    (dict(BASE, channels=(4,)), ValueError, "`channels` must be a sequence of at least 2"),
    (dict(BASE, strides=(2,)), ValueError, "`strides` must have len"),
    (dict(BASE, kernel_size=(3, 3)), ValueError, "`kernel_size` must be an int or have 3 entries"),
    (dict(BASE, up_kernel_size=4), ValueError, "same padding is not available"),
    (dict(BASE, num_res_units=1.5), TypeError, "num_res_units"),
    (dict(BASE, norm=("group", {})), TypeError, "num_groups"),
    (dict(BASE, adn_ordering="NXA"), ValueError, "`ordering`"),
])
def test_refusals(kwargs, error, match):
    with pytest.raises(error, match=match):
        UNet(**kwargs)
