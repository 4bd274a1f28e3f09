"""BasicUNet against MONAI's: strict load both ways, eval/train outputs, all gradients, running stats."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx
from lucid_mlx.models import BasicUNet

nets = pytest.importorskip("monai.networks.nets", reason="BasicUNet is checked against MONAI's")
from monai_twin import check_twin  # noqa: E402

SMALL = (4, 4, 8, 8, 16, 4)

# (constructor kwargs, input shape, compare train mode)
CASES = [
    # MONAI's defaults (LeakyReLU 0.1, affine instance norm, deconv) apart from the widths.
    (dict(features=SMALL), (1, 1, 32, 32, 16), True),
    (dict(features=SMALL, upsample="nontrainable", norm="batch", act="relu"), (2, 1, 32, 16, 16), True),
    # Odd sizes exercise UpCat's replicate padding.
    (dict(in_channels=2, out_channels=3, features=SMALL, upsample="pixelshuffle", act="prelu",
          norm=("group", {"num_groups": 2}), bias=False), (1, 2, 18, 17, 16), True),
    # Dropout draws differ between the libraries: eval mode only.
    (dict(features=SMALL, dropout=0.2, upsample="deconvgroup", act="elu", norm="batch"), (2, 1, 16, 16, 16), False),
]


@pytest.mark.parametrize("kwargs, shape, train", CASES, ids=[str(c[0]) for c in CASES])
def test_matches_monai(kwargs, shape, train):
    def make():
        return nets.BasicUNet(**kwargs)

    check_twin(make(), BasicUNet(**kwargs), make, shape, seed=0, train=train)


def test_default_state_dict_keys_are_monais():
    ours = lucid_mlx.torch_state_dict(BasicUNet())
    theirs = nets.BasicUNet().state_dict()
    assert sorted(ours) == sorted(theirs)
    assert all(tuple(ours[k].shape) == tuple(v.shape) for k, v in theirs.items())


def test_output_shape():
    net = BasicUNet(features=SMALL, out_channels=3, norm="batch")
    assert net(mx.zeros((2, 1, 16, 16, 16))).shape == (2, 3, 16, 16, 16)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(spatial_dims=2), ValueError, r"`spatial_dims` must be 3 \(lucid_mlx is 3-D\), got 2"),
    (dict(features=(4, 4, 8)), ValueError, "`features` must be a sequence of 6 ints"),
    (dict(features=SMALL, upsample="bilinear"), ValueError, "`mode` must be one of"),
    (dict(features=SMALL, norm="layer"), ValueError, "'layer' is not supported"),
    (dict(features=SMALL, act="swishy"), ValueError, "'swishy' is not a known name"),
])
def test_refusals(kwargs, error, match):
    with pytest.raises(error, match=match):
        BasicUNet(**kwargs)
