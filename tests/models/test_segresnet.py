"""SegResNet against MONAI's: strict load both ways, eval/train outputs, all gradients, running stats."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx
from lucid_mlx.models import SegResNet

nets = pytest.importorskip("monai.networks.nets", reason="SegResNet is checked against MONAI's")
from monai_twin import check_twin  # noqa: E402

# (constructor kwargs, input shape, compare train mode)
CASES = [
    (dict(), (1, 1, 16, 16, 8), True),  # MONAI's defaults: GroupNorm(8), ReLU, trilinear upsampling
    # A PReLU is registered twice in MONAI (act_mod and conv_final.1): one slope, both keys.
    (dict(init_filters=4, upsample_mode="deconv", norm="batch", act="prelu", blocks_down=(1, 1, 1),
          blocks_up=(1, 1)), (2, 1, 8, 8, 8), True),
    (dict(init_filters=4, in_channels=2, out_channels=3, upsample_mode="pixelshuffle",
          norm=("instance", {"affine": True}), use_conv_final=False, blocks_down=(1, 2, 1), blocks_up=(2, 1)),
     (1, 2, 16, 16, 16), True),
    (dict(init_filters=4, norm_name="group", num_groups=2, upsample_mode="deconvgroup", act="elu",
          blocks_down=(2, 1), blocks_up=(1,)), (1, 1, 8, 8, 8), True),
    (dict(init_filters=8, dropout_prob=0.2, blocks_down=(1, 1), blocks_up=(1,)), (1, 1, 8, 8, 8), False),
]


@pytest.mark.parametrize("kwargs, shape, train", CASES, ids=[str(c[0]) for c in CASES])
def test_matches_monai(kwargs, shape, train):
    def make():
        return nets.SegResNet(**kwargs)

    check_twin(make(), SegResNet(**kwargs), make, shape, seed=0, train=train)


def test_shared_prelu_is_one_slope_in_training():
    """An optimiser step moves act_mod.weight and conv_final.1.weight together, as in PyTorch."""
    import mlx.nn as mnn
    import mlx.optimizers as optim

    net = SegResNet(init_filters=4, act="prelu", norm="batch", blocks_down=(1, 1), blocks_up=(1,))
    assert net.act_mod is net.conv_final[1]
    x = mx.array(np.random.default_rng(0).standard_normal((2, 1, 8, 8, 8)).astype(np.float32))
    _, grads = mnn.value_and_grad(net, lambda xx: net(xx).square().mean())(x)
    before = np.array(net.act_mod.weight)
    optim.SGD(learning_rate=0.5).update(net, grads)
    state = lucid_mlx.torch_state_dict(net)
    np.testing.assert_array_equal(np.array(state["act_mod.weight"]), np.array(state["conv_final.1.weight"]))
    assert not np.array_equal(np.array(state["act_mod.weight"]), before)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(spatial_dims=2), ValueError, r"`spatial_dims` must be 3 \(lucid_mlx is 3-D\), got 2"),
    (dict(norm_name="batch"), ValueError, "`norm_name`='batch' is deprecated"),
    (dict(blocks_up=(1, 1)), ValueError, "`blocks_up` must have one level fewer"),
    (dict(upsample_mode="bicubic"), ValueError, "`mode` must be one of"),
    (dict(init_filters=4), ValueError, "divisible by `num_groups`"),
    (dict(use_conv_final=1), TypeError, "use_conv_final"),
])
def test_refusals(kwargs, error, match):
    with pytest.raises(error, match=match):
        SegResNet(**kwargs)


def test_input_sizes_must_divide():
    with pytest.raises(ValueError, match="must be divisible by 8"):
        SegResNet()(mx.zeros((1, 1, 16, 12, 16)))
