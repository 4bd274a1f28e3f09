"""UNETR against MONAI 1.6.1: a configuration table through the shared twin check, and argument errors."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx
from lucid_mlx.models import UNETR

monai_nets = pytest.importorskip("monai.networks.nets", reason="UNETR is checked against MONAI")
from monai_twin import check_twin, torch  # noqa: E402


SMALL = dict(in_channels=1, out_channels=2, img_size=32, feature_size=4, hidden_size=24, mlp_dim=32, num_heads=4)
# (kwargs, input shape, seed). For defaults-small, seeds 0 and 2 put one leaky-ReLU
# input of the full-resolution blocks on different sides of 0 in the two libraries
# (checked by recording every LeakyReLU input), the kink monai_twin describes.
CONFIGS = {
    "defaults-small": (SMALL, (1, 1, 32, 32, 32), 1),
    "perceptron-batch-qkv": (dict(SMALL, in_channels=2, img_size=(16, 32, 16), proj_type="perceptron",
                                  norm_name="batch", qkv_bias=True), (2, 2, 16, 32, 16), 2),
    "anisotropic-basic-blocks": (dict(SMALL, img_size=(16, 32, 16), conv_block=False, res_block=False,
                                      norm_name=("group", {"num_groups": 2})), (1, 1, 16, 32, 16), 2),
    "conv-block-no-res": (dict(SMALL, img_size=16, res_block=False, num_heads=2, hidden_size=12,
                               norm_name=("instance", {"affine": True})), (2, 1, 16, 16, 16), 3),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_monai(name):
    kwargs, shape, seed = CONFIGS[name]
    torch.manual_seed(0)
    original, model = monai_nets.UNETR(**kwargs), UNETR(**kwargs)
    check_twin(original, model, lambda: monai_nets.UNETR(**kwargs), shape, seed=seed, tol=1e-5, grad_tol=1e-4)


def test_state_dict_keys_are_monais():
    torch.manual_seed(0)
    original, model = monai_nets.UNETR(**SMALL), UNETR(**SMALL)
    ours = {k: tuple(v.shape) for k, v in lucid_mlx.torch_state_dict(model).items()}
    assert ours == {k: tuple(v.shape) for k, v in original.state_dict().items()}


def test_save_attn_keeps_monais_attention():
    kwargs = dict(SMALL, save_attn=True)
    torch.manual_seed(0)
    original, model = monai_nets.UNETR(**kwargs), UNETR(**kwargs)
    lucid_mlx.load_torch_state_dict(model, original.state_dict())
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32, 32)).astype(np.float32)
    original.eval()
    model.eval()
    with torch.no_grad():
        original(torch.from_numpy(x))
    model(mx.array(x))
    for ours, theirs in zip(model.vit.blocks, original.vit.blocks):
        assert ours.attn.att_mat.shape == (1, 4, 8, 8)
        np.testing.assert_allclose(np.array(ours.attn.att_mat), theirs.attn.att_mat.numpy(), rtol=1e-5, atol=1e-6)


def test_dropout_eval_matches():
    kwargs = dict(SMALL, dropout_rate=0.2)
    torch.manual_seed(0)
    check_twin(monai_nets.UNETR(**kwargs), UNETR(**kwargs), lambda: monai_nets.UNETR(**kwargs), (1, 1, 32, 32, 32),
               train=False)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(spatial_dims=2), ValueError, r"`spatial_dims` must be 3 \(lucid_mlx is 3-D\), got 2"),
    (dict(img_size=40), ValueError, r"`img_size` must be a multiple of the patch size 16"),
    (dict(img_size=(32, 32)), ValueError, r"`img_size` must be an int or a sequence of 3 ints"),
    (dict(hidden_size=25), ValueError, r"`hidden_size` \(=25\) must be divisible by `num_heads` \(=4\)"),
    (dict(dropout_rate=1.5), ValueError, r"`dropout_rate` must be in \[0, 1\), got 1.5"),
    (dict(proj_type="linear"), ValueError, r"`proj_type` must be one of \('conv', 'perceptron'\)"),
    (dict(norm_name="layer"), ValueError, r"`norm` 'layer' is not supported"),
    (dict(res_block="yes"), TypeError, r"`res_block` must be a bool"),
    (dict(feature_size=0), ValueError, r"`feature_size` must be >= 1"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        UNETR(**dict(SMALL, **kwargs))


def test_wrong_input_size_is_a_clear_error():
    model = UNETR(**SMALL)
    with pytest.raises(ValueError, match=r"gives 27 patches, but the position embeddings are for img_size"):
        model(mx.zeros((1, 1, 48, 48, 48)))
