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


@pytest.mark.parametrize("act_mod_last", [False, True], ids=["act_mod-first", "act_mod-last"])
def test_shared_prelu_trains_as_monai(act_mod_last):
    """One Adam step equals MONAI's: the PReLU that MONAI registers twice is one slope here.

    ``act_mod_last`` moves ``act_mod`` behind ``conv_final`` in both models'
    attribute order, which decided the result while lucid_mlx registered the
    module twice (the optimizer wrote the slope once per path, the last write won).
    """
    import mlx.nn as mnn
    import mlx.optimizers as optim
    import torch

    from monai_twin import randomise

    kwargs = dict(init_filters=4, act="prelu", norm="batch", blocks_down=(1, 1), blocks_up=(1,))
    original, net = nets.SegResNet(**kwargs), SegResNet(**kwargs)
    randomise(original, seed=3)
    if act_mod_last:
        original._modules["act_mod"] = original._modules.pop("act_mod")
        net["act_mod"] = net.pop("act_mod")  # an mlx.nn.Module is a dict of its attributes
    assert lucid_mlx.check_torch_state_dict(net, original.state_dict()).shared == []
    lucid_mlx.load_torch_state_dict(net, original.state_dict())
    assert net.conv_final[1].module is net.act_mod
    slope_before = np.array(net.act_mod.weight)

    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8, 8)).astype(np.float32)
    original.train(), net.train()
    original(torch.from_numpy(x)).square().mean().backward()
    torch.optim.Adam(original.parameters(), lr=0.01).step()
    _, grads = mnn.value_and_grad(net, lambda m, xx: m(xx).square().mean())(net, mx.array(x))
    optim.Adam(learning_rate=0.01, bias_correction=True).update(net, grads)

    # MONAI reports the slope under the name registered first; aliases=True lists both.
    ours = lucid_mlx.to_torch_names(net, grads, aliases=True)
    slope = "conv_final.1.weight" if act_mod_last else "act_mod.weight"
    assert slope in dict(original.named_parameters())
    for name, p in original.named_parameters():
        np.testing.assert_allclose(np.array(ours[name]), p.grad.numpy(), rtol=1e-4, atol=1e-7, err_msg=name)
    # Adam's first step moves each weight by about lr * sign(grad), so where a gradient
    # is tiny its rounding shows in the step: held to 1e-3 of the step size.
    after = lucid_mlx.torch_state_dict(net)
    for name, value in original.state_dict().items():
        np.testing.assert_allclose(np.array(after[name]), value.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)
    assert np.abs(np.array(after["act_mod.weight"]) - slope_before).min() > 0.009  # the slope moved

    # Saved back, the stepped weights load strictly into a fresh MONAI model.
    fresh = nets.SegResNet(**kwargs)
    fresh.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in after.items()}, strict=True)
    for name in ("act_mod.weight", "conv_final.1.weight"):
        np.testing.assert_array_equal(fresh.state_dict()[name].numpy(), np.array(after["act_mod.weight"]))


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
