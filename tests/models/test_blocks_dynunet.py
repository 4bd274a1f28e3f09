"""DynUNet's and UNETR's blocks: padding arithmetic against MONAI's, names, and the blocks on their own."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx
from lucid_mlx.models.blocks import (UnetOutBlock, UnetrBasicBlock, UnetResBlock, UnetrPrUpBlock, UnetrUpBlock,
                                     UnetUpBlock, get_conv_layer)
from lucid_mlx.models.blocks.dynunet_block import get_output_padding, get_padding

torch = pytest.importorskip("torch", reason="the blocks are checked against MONAI on PyTorch")
mdyn = pytest.importorskip("monai.networks.blocks.dynunet_block", reason="the blocks are checked against MONAI")
munetr = pytest.importorskip("monai.networks.blocks.unetr_block", reason="the blocks are checked against MONAI")
from monai_twin import check_twin  # noqa: E402


@pytest.mark.parametrize("kernel, stride", [(3, 1), (3, 2), (1, 1), (2, 2), (5, 2), ((3, 3, 1), (2, 2, 1)),
                                             ((3, 1, 3), 1), (4, (2, 1, 2))])
def test_padding_equals_monais(kernel, stride):
    padding = get_padding(kernel, stride)
    assert padding == mdyn.get_padding(kernel, stride)
    if all(o >= 0 for o in np.atleast_1d(2 * np.array(padding) + np.array(stride) - np.array(kernel))):
        assert get_output_padding(kernel, stride, padding) == mdyn.get_output_padding(kernel, stride, padding)


def test_padding_errors():
    with pytest.raises(ValueError, match="padding would be negative"):
        get_padding(1, 4)
    with pytest.raises(ValueError, match="output padding would be negative"):
        get_output_padding(5, 1, 0)
    with pytest.raises(ValueError, match="must have the same length"):
        get_padding((3, 3), (1, 1, 1))


@pytest.mark.parametrize("kwargs", [dict(), dict(act="relu", norm="batch", bias=True, conv_only=False),
                                    dict(is_transposed=True, kernel_size=2, stride=2)])
def test_get_conv_layer_names_equal_monais(kwargs):
    ours = get_conv_layer(3, 2, 4, **kwargs)
    theirs = mdyn.get_conv_layer(3, 2, 4, **kwargs)
    assert {k: tuple(v.shape) for k, v in lucid_mlx.torch_state_dict(ours).items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()}


# Each block through the shared twin check: (MONAI class, ours, args, input shape).
BLOCKS = {
    "res-stride": (mdyn.UnetResBlock, UnetResBlock, (3, 2, 4, 3, (2, 1, 2), "batch"), (2, 2, 6, 5, 6)),
    "res-identity": (mdyn.UnetResBlock, UnetResBlock, (3, 4, 4, 3, 1, ("instance", {"affine": True})),
                     (1, 4, 5, 5, 5)),
    "out": (mdyn.UnetOutBlock, UnetOutBlock, (3, 4, 2), (2, 4, 3, 3, 3)),
    "unetr-basic": (munetr.UnetrBasicBlock, UnetrBasicBlock, (3, 2, 4, 3, 2, "batch"), (2, 2, 6, 6, 6)),
    "prup-conv-res": (munetr.UnetrPrUpBlock, UnetrPrUpBlock, (3, 6, 4, 2, 3, 1, 2, "batch", True, True),
                      (2, 6, 2, 2, 2)),
}


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_matches_monai(name):
    monai_cls, ours_cls, args, shape = BLOCKS[name]
    torch.manual_seed(0)
    check_twin(monai_cls(*args), ours_cls(*args), lambda: monai_cls(*args), shape, seed=0, grad_tol=1e-4)


@pytest.mark.parametrize("monai_cls, ours_cls, args", [
    (mdyn.UnetUpBlock, UnetUpBlock, (3, 6, 3, 3, 1, 2, "batch")),
    (munetr.UnetrUpBlock, UnetrUpBlock, (3, 6, 3, 3, 2, "batch", True)),
])
def test_up_blocks_match_monai(monai_cls, ours_cls, args):
    torch.manual_seed(0)
    original, model = monai_cls(*args), ours_cls(*args)
    lucid_mlx.load_torch_state_dict(model, original.state_dict())
    rng = np.random.default_rng(0)
    x, skip = (rng.standard_normal(s).astype(np.float32) for s in ((2, 6, 2, 3, 2), (2, 3, 4, 6, 4)))
    with torch.no_grad():
        expected = original(torch.from_numpy(x), torch.from_numpy(skip)).numpy()
    np.testing.assert_allclose(np.array(model(mx.array(x), mx.array(skip))), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="differ in batch or spatial size"):
        model(mx.array(x), mx.zeros((2, 3, 4, 6, 5)))


def test_res_block_projects_only_when_needed():
    assert UnetResBlock(3, 4, 4, 3, 1, "batch").downsample is False
    assert "conv3" not in UnetResBlock(3, 4, 4, 3, 1, "batch")
    assert UnetResBlock(3, 4, 4, 3, (1, 2, 1), "batch").downsample is True
    with pytest.raises(ValueError, match=r"`spatial_dims` must be 3"):
        UnetResBlock(2, 4, 4, 3, 1, "batch")
