"""No network holds a module under two public paths; MONAI's double registrations are aliases.

A module reachable under two paths of an MLX parameter tree is two sets of
weights to MLX (gradients and optimizer updates split between them), so a
lucid_mlx network registers each module once and declares MONAI's other
names in ``torch_aliases()``. Checked for each network with PReLU
activations where it takes them, and its main options: the names MONAI
registers one parameter under are exactly the names lucid_mlx lists for
one array.
"""

from __future__ import annotations

import pytest
from mlx.utils import tree_flatten, tree_unflatten

import lucid_mlx
from lucid_mlx import models

nets = pytest.importorskip("monai.networks.nets", reason="the double registrations are MONAI's")

CASES = {
    "BasicUNet": dict(spatial_dims=3, features=(4, 4, 8, 8, 16, 4), act=("prelu", {"num_parameters": 1})),
    "UNet": dict(spatial_dims=3, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2),
                 num_res_units=2, act="PRELU"),
    "SegResNet": dict(init_filters=4, act="PRELU", norm="batch", blocks_down=(1, 1), blocks_up=(1,)),
    "SegResNet-noconv": dict(init_filters=4, act="PRELU", use_conv_final=False, upsample_mode="deconv",
                             norm="instance", blocks_down=(1, 1, 1), blocks_up=(1, 1)),
    "DynUNet": dict(spatial_dims=3, in_channels=1, out_channels=2, kernel_size=[3, 3, 3, 3],
                    strides=[1, 2, 2, 2], upsample_kernel_size=[2, 2, 2], filters=[4, 8, 8, 16],
                    act_name="PRELU", res_block=True, deep_supervision=True, deep_supr_num=2),
    "UNETR": dict(in_channels=1, out_channels=2, img_size=(32, 32, 32), feature_size=4, hidden_size=24,
                  mlp_dim=48, num_heads=2),
    "ViT": dict(in_channels=1, img_size=(32, 32, 32), patch_size=16, hidden_size=24, mlp_dim=48, num_heads=2,
                num_layers=2, classification=True),
    "SwinUNETR": dict(in_channels=1, out_channels=2, feature_size=12, depths=(1, 1, 1, 1),
                      num_heads=(1, 1, 1, 1), use_v2=True),
    "MedNeXt": dict(spatial_dims=3, init_filters=4, in_channels=1, out_channels=2, blocks_down=(1, 1, 1, 1),
                    blocks_bottleneck=1, blocks_up=(1, 1, 1, 1), deep_supervision=True,
                    use_residual_connection=True, global_resp_norm=True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_monai_double_registrations_are_aliases(case):
    name = case.split("-")[0]
    ours, theirs = getattr(models, name)(**CASES[case]), getattr(nets, name)(**CASES[case])
    report = lucid_mlx.check_torch_state_dict(ours, theirs.state_dict())
    assert report.ok and report.shared == [], str(report)

    registered: dict[int, set[str]] = {}
    for key, p in theirs.named_parameters(remove_duplicate=False):
        registered.setdefault(id(p), set()).add(key)
    monai_groups = sorted(sorted(g) for g in registered.values())
    # A tree of the model's own paths, named the PyTorch way: {PyTorch name: MLX path}.
    paths = tree_unflatten([(path, path) for path, _ in tree_flatten(ours.trainable_parameters())])
    held: dict[str, set[str]] = {}
    for key, path in lucid_mlx.to_torch_names(ours, paths, aliases=True).items():
        held.setdefault(path, set()).add(key)
    assert sorted(sorted(g) for g in held.values()) == monai_groups
