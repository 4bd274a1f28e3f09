"""The Swin pieces of SwinUNETR against MONAI 1.6.1's ``monai.networks.nets.swin_unetr``."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mnn
import numpy as np
import pytest

from lucid_mlx.models.nets import swin_transformer as lm

monai_swin = pytest.importorskip("monai.networks.nets.swin_unetr", reason="MONAI is the reference for Swin")
torch = pytest.importorskip("torch", reason="MONAI's Swin runs on PyTorch")

from monai_twin import check_twin  # noqa: E402


@pytest.mark.parametrize("window", [(7, 7, 7), (2, 3, 4), (4, 4, 1)])
def test_relative_position_index_is_monais(window):
    ours = lm.WindowAttention(12, 3, window)
    theirs = monai_swin.WindowAttention(12, 3, window)
    index = theirs.state_dict()["relative_position_index"]
    assert index.dtype == torch.int64  # a persistent buffer: it is in MONAI's state_dict
    assert ours.relative_position_index.dtype == mx.int64
    np.testing.assert_array_equal(np.array(ours.relative_position_index), index.numpy())
    assert "relative_position_index" not in dict(_flat(ours.trainable_parameters()))


def _flat(tree):
    from mlx.utils import tree_flatten
    return tree_flatten(tree)


@pytest.mark.parametrize("dims,window,shift", [
    ((14, 14, 14), (7, 7, 7), (3, 3, 3)),
    ((8, 6, 9), (4, 3, 3), (2, 1, 1)),
    ((4, 8, 8), (4, 4, 4), (0, 2, 2)),  # an unshifted axis: slice(-0, None) covers it whole
])
def test_shifted_window_mask_is_monais(dims, window, shift):
    ours = np.array(lm.compute_mask(dims, window, shift))
    theirs = monai_swin.compute_mask(list(dims), window, shift, "cpu").numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert set(np.unique(ours)) <= {0.0, -100.0}


def test_window_partition_and_reverse_are_monais():
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 9, 5)).astype(np.float32)
    ws = (2, 3, 3)
    ours = lm.window_partition(mx.array(x), ws)
    theirs = monai_swin.window_partition(torch.from_numpy(x), ws)
    np.testing.assert_array_equal(np.array(ours), theirs.numpy())
    np.testing.assert_array_equal(np.array(lm.window_reverse(ours, ws, (2, 4, 6, 9))), x)


@pytest.mark.parametrize("size,window,shift", [
    ((16, 16, 16), (7, 7, 7), (3, 3, 3)),
    ((4, 4, 4), (7, 7, 7), (3, 3, 3)),
    ((8, 3, 9), (4, 4, 4), None),
])
def test_get_window_size_is_monais(size, window, shift):
    assert lm.get_window_size(size, window, shift) == monai_swin.get_window_size(size, window, shift)


MODULES = [
    # (id, factory(lib) -> model, input shape, seed)
    ("merging", lambda m: m.PatchMerging(dim=6), (2, 4, 6, 2, 6), 0),
    ("merging-odd", lambda m: m.PatchMerging(dim=3), (1, 3, 5, 4, 3), 1),
    ("mergingv2-odd", lambda m: m.PatchMergingV2(dim=3), (1, 5, 3, 4, 3), 2),
]


@pytest.mark.parametrize("make,shape,seed", [m[1:] for m in MODULES], ids=[m[0] for m in MODULES])
def test_patch_merging_matches_monai(make, shape, seed):
    torch.manual_seed(seed)
    check_twin(make(monai_swin), make(lm), lambda: make(monai_swin), shape, seed=seed)


class _WithMask(torch.nn.Module):
    """A WindowAttention called with a fixed mask, so the twin helper can drive it."""

    def __init__(self, attn, mask):
        super().__init__()
        self.attn, self.mask = attn, mask

    def forward(self, x):
        return self.attn(x, self.mask)


@pytest.mark.parametrize("flash", [False, True])
def test_window_attention_with_mask_matches_monai(flash):
    window, heads, dim = (2, 2, 3), 3, 12
    mask_np = np.array(lm.compute_mask((4, 4, 6), window, (1, 1, 1)))  # 8 windows
    n = 12

    def build_torch():
        return _WithMask(monai_swin.WindowAttention(dim, heads, window, qkv_bias=True), torch.from_numpy(mask_np))

    class Ours(mnn.Module):
        def __init__(self):
            super().__init__()
            self.attn = lm.WindowAttention(dim, heads, window, qkv_bias=True, use_flash_attention=flash)

        def __call__(self, x):
            return self.attn(x, mx.array(mask_np))

    torch.manual_seed(3)
    ref = build_torch()
    check_twin(ref, Ours(), build_torch, (16, n, dim), seed=3)


BASIC_LAYERS = [
    ("shifted-padded-merging", dict(dim=6, depth=2, num_heads=2, window_size=(3, 3, 3), drop_path=[0.0, 0.0],
                                    qkv_bias=True, downsample="merging"), (2, 6, 4, 5, 7), 4),
    ("shrunk-window-v2", dict(dim=6, depth=3, num_heads=3, window_size=(7, 7, 7), drop_path=0.0,
                              mlp_ratio=2.0, downsample="mergingv2"), (1, 6, 4, 4, 4), 5),
]


@pytest.mark.parametrize("kwargs,shape,seed", [b[1:] for b in BASIC_LAYERS], ids=[b[0] for b in BASIC_LAYERS])
def test_basic_layer_matches_monai(kwargs, shape, seed):
    def build_torch():
        args = dict(kwargs)
        args["downsample"] = monai_swin.MERGING_MODE[args["downsample"]]
        return monai_swin.BasicLayer(**args)

    torch.manual_seed(seed)
    ref = build_torch()
    check_twin(ref, lm.BasicLayer(**kwargs), build_torch, shape, seed=seed, tol=2e-5)


def test_norm_layer_accepts_torch_layernorm_and_refuses_others():
    block = lm.PatchMerging(dim=3, norm_layer=torch.nn.LayerNorm)
    assert type(block.norm).__name__ == "LayerNorm" and type(block.norm).__module__.startswith("mlx")
    with pytest.raises(TypeError, match="`norm_layer` built a torch"):
        lm.PatchMerging(dim=3, norm_layer=torch.nn.BatchNorm1d)
    with pytest.raises(TypeError, match="`norm_layer` must be a class or function"):
        lm.PatchMerging(dim=3, norm_layer="layer")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match=r"`dim` \(=10\) must be divisible by `num_heads` \(=3\)"):
        lm.WindowAttention(10, 3, (2, 2, 2))
    with pytest.raises(ValueError, match="`spatial_dims` must be 3"):
        lm.PatchMergingV2(4, spatial_dims=2)
    with pytest.raises(ValueError, match="`downsample` must be one of"):
        lm.BasicLayer(6, 1, 2, (2, 2, 2), 0.0, downsample="pool")
    with pytest.raises(TypeError, match="`downsample` must be 'merging', 'mergingv2' or a class"):
        lm.BasicLayer(6, 1, 2, (2, 2, 2), 0.0, downsample=lm.PatchMerging(6))
    with pytest.raises(ValueError, match="`drop_path` must have `depth`"):
        lm.BasicLayer(6, 2, 2, (2, 2, 2), [0.1])
    with pytest.raises(ValueError, match="expects \\(B, D, H, W, C\\)"):
        lm.PatchMerging(3)(mx.zeros((1, 3, 4, 4)))
