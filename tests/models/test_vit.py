"""ViT (UNETR's encoder) against MONAI: classification heads, position embeddings, hidden states."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx
from lucid_mlx.models import ViT

torch = pytest.importorskip("torch", reason="ViT is checked against MONAI on PyTorch")
monai_nets = pytest.importorskip("monai.networks.nets", reason="ViT is checked against MONAI")

BASE = dict(in_channels=1, img_size=(16, 8, 8), patch_size=4, hidden_size=12, mlp_dim=16, num_layers=2, num_heads=2)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(classification=True, num_classes=3),
    dict(classification=True, post_activation=None, proj_type="perceptron", pos_embed_type="sincos"),
    dict(pos_embed_type="none", qkv_bias=True, num_layers=0),
])
def test_matches_monai(kwargs):
    torch.manual_seed(0)
    args = dict(BASE, **kwargs)
    original, model = monai_nets.ViT(**args), ViT(**args)
    assert lucid_mlx.load_torch_state_dict(model, original.state_dict()) == ([], [])
    x = np.random.default_rng(0).standard_normal((2, 1, 16, 8, 8)).astype(np.float32)
    original.eval()
    model.eval()
    with torch.no_grad():
        t_out, t_hidden = original(torch.from_numpy(x))
    out, hidden = model(mx.array(x))
    np.testing.assert_allclose(np.array(out), t_out.numpy(), rtol=1e-5, atol=1e-5)
    assert len(hidden) == len(t_hidden) == args["num_layers"]
    for a, b in zip(hidden, t_hidden):
        np.testing.assert_allclose(np.array(a), b.numpy(), rtol=1e-5, atol=1e-5)
    if args.get("classification"):
        assert out.shape == (2, args.get("num_classes", 2))
        tanh = args.get("post_activation", "Tanh") == "Tanh"
        head = "classification_head.0.weight" if tanh else "classification_head.weight"
        assert head in lucid_mlx.torch_state_dict(model)


def test_gradients_through_class_token():
    torch.manual_seed(0)
    kwargs = dict(BASE, classification=True)
    original, model = monai_nets.ViT(**kwargs), ViT(**kwargs)
    lucid_mlx.load_torch_state_dict(model, original.state_dict())
    x = np.random.default_rng(1).standard_normal((2, 1, 16, 8, 8)).astype(np.float32)
    original(torch.from_numpy(x))[0].sum().backward()
    grads = mx.grad(lambda p: (model.update(p), model(mx.array(x))[0].sum())[1])(model.trainable_parameters())
    named = lucid_mlx.to_torch_names(model, grads)
    for name in ("cls_token", "classification_head.0.weight", "patch_embedding.position_embeddings"):
        np.testing.assert_allclose(np.array(named[name]), original.get_parameter(name).grad.numpy(),
                                   rtol=1e-4, atol=1e-6, err_msg=name)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"`spatial_dims` must be 3"):
        ViT(**BASE, spatial_dims=2)
    with pytest.raises(ValueError, match=r"`num_layers` must be >= 0"):
        ViT(**dict(BASE, num_layers=-1))
    with pytest.raises(TypeError, match=r"`classification` must be a bool"):
        ViT(**BASE, classification="yes")
