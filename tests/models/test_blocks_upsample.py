"""UpSample, SubpixelUpsample, pixelshuffle and ICNR against MONAI's."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx import nn as lnn
from lucid_mlx.models.blocks import SubpixelUpsample, UpSample
from lucid_mlx.models.blocks.upsample import icnr_weight, pixelshuffle

blocks = pytest.importorskip("monai.networks.blocks", reason="the upsamplers are checked against MONAI's")
from monai_twin import check_twin, torch  # noqa: E402

CASES = [
    dict(in_channels=4, out_channels=2, mode="deconv"),
    dict(in_channels=4, out_channels=2, mode="deconv", kernel_size=3, scale_factor=(2, 2, 1)),
    dict(in_channels=4, out_channels=2, mode="deconvgroup", kernel_size=4),
    dict(in_channels=4, out_channels=2, mode="nontrainable"),  # 1x1x1 pre-conv, trilinear, aligned corners
    dict(in_channels=4, out_channels=4, mode="nontrainable", interp_mode="nearest", align_corners=None,
         scale_factor=(2, 1, 3)),
    dict(in_channels=4, out_channels=4, mode="nontrainable", size=(7, 5, 6), align_corners=False),
    dict(in_channels=4, out_channels=2, mode="pixelshuffle"),
    dict(in_channels=4, out_channels=2, mode="pixelshuffle", apply_pad_pool=False, bias=False),
]


@pytest.mark.parametrize("kwargs", CASES, ids=str)
def test_upsample_matches_monai(kwargs):
    def make():
        return blocks.UpSample(3, **kwargs)

    check_twin(make(), UpSample(3, **kwargs), make, (2, 4, 4, 5, 3), seed=0)


def test_icnr_and_pixelshuffle_are_monais():
    from monai.networks import utils

    base = torch.randn(2, 3, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    conv = torch.nn.Conv3d(3, 16, 3)
    utils.icnr_init(conv, 2, init=lambda k: k.copy_(base))
    np.testing.assert_array_equal(np.array(icnr_weight(base.numpy(), 2)), conv.weight.detach().numpy())
    x = torch.randn(2, 16, 2, 3, 4, generator=torch.Generator().manual_seed(1))
    np.testing.assert_array_equal(np.array(pixelshuffle(mx.array(x.numpy()), 3, 2)),
                                  utils.pixelshuffle(x, 3, 2).numpy())


def test_subpixel_default_conv_is_icnr_initialised():
    up = SubpixelUpsample(3, 2, 3, scale_factor=2)
    w = np.array(up.conv_block.weight)  # (3 * 8, 2, 3, 3, 3)
    assert w.shape == (24, 2, 3, 3, 3)
    # ICNR: the 8 filters of each output channel's block were drawn once.
    assert len(np.unique(w.round(7))) == 3 * 2 * 27


@pytest.mark.parametrize("call, error, match", [
    (lambda: UpSample(2, 4, 4), ValueError, "`spatial_dims` must be 3"),
    (lambda: UpSample(3, 4, 4, mode="bilinear"), ValueError, "`mode` must be one of"),
    (lambda: UpSample(3, None, 4, mode="deconv"), ValueError, "`in_channels` must be given"),
    (lambda: UpSample(3, 4, 2, mode="nontrainable", pre_conv=None), ValueError, "must equal `in_channels`"),
    (lambda: UpSample(3, 4, 4, mode="nontrainable", interp_mode="nearest"), ValueError, "`align_corners`"),
    (lambda: UpSample(3, 4, 4, mode="nontrainable", interp_mode="bicubic"), ValueError, "bicubic"),
    (lambda: UpSample(3, 4, 4, mode="deconv", size=8), ValueError, "`size` applies to mode='nontrainable'"),
    (lambda: SubpixelUpsample(3, 4, 4, scale_factor=0), ValueError, "`scale_factor`"),
    (lambda: pixelshuffle(mx.zeros((1, 12, 2, 2, 2)), 3, 2), ValueError, "divisible by scale_factor"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
