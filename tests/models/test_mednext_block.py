"""MedNeXt's blocks against MONAI 1.6.1 and a NumPy reference of the ConvNeXt block."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx
from lucid_mlx.models.blocks import mednext_block as lm

monai_block = pytest.importorskip("monai.networks.blocks.mednext_block",
                                  reason="MONAI is the reference for MedNeXt's blocks")
torch = pytest.importorskip("torch", reason="MONAI's blocks run on PyTorch")

from monai_twin import check_twin  # noqa: E402


BLOCKS = [
    # (id, class name, kwargs, input shape, seed)
    ("block-k7", "MedNeXtBlock", dict(in_channels=4, out_channels=4, expansion_ratio=2, kernel_size=7),
     (2, 4, 6, 5, 7), 0),
    ("block-grn-no-res-widen", "MedNeXtBlock", dict(in_channels=3, out_channels=5, expansion_ratio=3,
                                                    kernel_size=3, use_residual_connection=False,
                                                    global_resp_norm=True), (1, 3, 5, 6, 4), 1),
    ("block-layernorm", "MedNeXtBlock", dict(in_channels=2, out_channels=2, kernel_size=3, norm_type="layer"),
     (2, 2, 3, 3, 3), 2),
    ("down-res-grn", "MedNeXtDownBlock", dict(in_channels=3, out_channels=6, expansion_ratio=2, kernel_size=5,
                                              use_residual_connection=True, global_resp_norm=True),
     (1, 3, 8, 7, 6), 3),
    ("down-plain", "MedNeXtDownBlock", dict(in_channels=2, out_channels=4, kernel_size=3), (2, 2, 4, 4, 4), 4),
    ("up-res-grn", "MedNeXtUpBlock", dict(in_channels=6, out_channels=3, expansion_ratio=2, kernel_size=5,
                                          use_residual_connection=True, global_resp_norm=True),
     (1, 6, 3, 4, 2), 5),
    ("up-plain-k7", "MedNeXtUpBlock", dict(in_channels=4, out_channels=2, kernel_size=7), (2, 4, 2, 2, 3), 6),
]


@pytest.mark.parametrize("cls,kwargs,shape,seed", [b[1:] for b in BLOCKS], ids=[b[0] for b in BLOCKS])
def test_block_matches_monai(cls, kwargs, shape, seed):
    torch.manual_seed(seed)
    ref = getattr(monai_block, cls)(**kwargs)
    check_twin(ref, getattr(lm, cls)(**kwargs), lambda: getattr(monai_block, cls)(**kwargs), shape,
               seed=seed, tol=2e-5)


def test_out_block_matches_monai():
    torch.manual_seed(7)
    ref = monai_block.MedNeXtOutBlock(5, 3, dim="3d")
    check_twin(ref, lm.MedNeXtOutBlock(5, 3, dim="3d"), lambda: monai_block.MedNeXtOutBlock(5, 3, dim="3d"),
               (2, 5, 3, 4, 2), seed=7)


def _numpy_block(x, state, k, eps=1e-5):
    """MedNeXtBlock (GroupNorm, residual, GRN) written out in NumPy, in float64."""
    n, c, d, h, w = x.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p), (p, p)))
    y = np.zeros_like(x)
    for i, j, l in np.ndindex(k, k, k):  # depthwise: one kernel per channel
        y += xp[:, :, i:i + d, j:j + h, l:l + w] * state["conv1.weight"][None, :, 0, i, j, l, None, None, None]
    y += state["conv1.bias"][None, :, None, None, None]
    mean = y.mean(axis=(2, 3, 4), keepdims=True)
    var = y.var(axis=(2, 3, 4), keepdims=True)
    y = (y - mean) / np.sqrt(var + eps)
    y = y * state["norm.weight"][None, :, None, None, None] + state["norm.bias"][None, :, None, None, None]
    y = np.einsum("oc,ncdhw->nodhw", state["conv2.weight"][:, :, 0, 0, 0], y)
    y += state["conv2.bias"][None, :, None, None, None]
    y = 0.5 * y * (1 + np.vectorize(math.erf)(y / math.sqrt(2)))
    gx = np.sqrt((y * y).sum(axis=(2, 3, 4), keepdims=True))
    nx = gx / (gx.mean(axis=1, keepdims=True) + 1e-6)
    y = state["global_resp_gamma"] * (y * nx) + state["global_resp_beta"] + y
    y = np.einsum("oc,ncdhw->nodhw", state["conv3.weight"][:, :, 0, 0, 0], y)
    y += state["conv3.bias"][None, :, None, None, None]
    return x + y


def test_block_matches_numpy_reference():
    rng = np.random.default_rng(11)
    block = lm.MedNeXtBlock(3, 3, expansion_ratio=2, kernel_size=5, global_resp_norm=True)
    state = {k: rng.standard_normal(v.shape) * 0.5 for k, v in lucid_mlx.torch_state_dict(block).items()}
    lucid_mlx.load_torch_state_dict(block, {k: v.astype(np.float32) for k, v in state.items()})
    x = rng.standard_normal((2, 3, 4, 6, 5)).astype(np.float32)
    expected = _numpy_block(x.astype(np.float64), state, k=5)
    got = np.array(block(mx.array(x)))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_depthwise_conv_is_grouped_per_channel():
    block = lm.MedNeXtBlock(8, 8, kernel_size=7)
    assert block.conv1.groups == 8 and tuple(block.conv1.weight.shape) == (8, 1, 7, 7, 7)
    up = lm.MedNeXtUpBlock(8, 4, kernel_size=7)
    assert up.conv1.groups == 8 and tuple(up.conv1.weight.shape) == (8, 1, 7, 7, 7)


def test_layer_norm_needs_kernel_sized_volume():
    block = lm.MedNeXtBlock(2, 2, kernel_size=3, norm_type="layer")
    with pytest.raises(ValueError, match=r"norm_type='layer' normalises over \(C, k, k, k\) = \(2, 3, 3, 3\)"):
        block(mx.zeros((1, 2, 4, 4, 4)))


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(dim="2d"), ValueError, "`dim` must be '3d'"),
    (dict(norm_type="instance"), ValueError, "`norm_type` must be one of"),
    (dict(kernel_size=6), ValueError, "`kernel_size` must be odd"),
    (dict(kernel_size=(3, 3, 3)), TypeError, "`kernel_size` must be an int"),
    (dict(out_channels=5), ValueError, "residual connection needs `out_channels`"),
    (dict(expansion_ratio=0), ValueError, "`expansion_ratio` must be >= 1"),
])
def test_bad_block_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        lm.MedNeXtBlock(**{"in_channels": 4, "out_channels": 4, **kwargs})
