"""The ViT blocks (MLPBlock, SABlock, TransformerBlock, PatchEmbeddingBlock, position embeddings) against MONAI.

These blocks take (B, N, C) tokens and have no running statistics, so a
small local comparison is enough: strict load, output, and the gradients of
``sum(out * cotangent)`` with respect to the input and every parameter
(by PyTorch name, via ``lucid_mlx.to_torch_names``). Parameters MONAI
creates but does not use get a None gradient in PyTorch and zeros in MLX.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mnn
import numpy as np
import pytest

import lucid_mlx
from lucid_mlx.models.blocks import MLPBlock, PatchEmbeddingBlock, SABlock, TransformerBlock
from lucid_mlx.models.blocks.pos_embed_utils import build_fourier_position_embedding, build_sincos_position_embedding

torch = pytest.importorskip("torch", reason="the ViT blocks are checked against MONAI on PyTorch")
mblocks = pytest.importorskip("monai.networks.blocks", reason="the ViT blocks are checked against MONAI")


def compare(original, model, x: np.ndarray, *extra, seed: int = 0, tol: float = 1e-5) -> float:
    """Load ``original`` into ``model`` strictly, compare outputs and gradients; return the max abs difference."""
    assert lucid_mlx.load_torch_state_dict(model, original.state_dict()) == ([], [])
    original.train()
    model.train()
    xt = torch.from_numpy(x).requires_grad_(True)
    t_out = original(xt, *[torch.from_numpy(e) for e in extra])
    cot = np.random.default_rng(seed).standard_normal(tuple(t_out.shape)).astype(np.float32)
    (t_out * torch.from_numpy(cot)).sum().backward()

    def loss(params, x):
        model.update(params)
        out = model(x, *[mx.array(e) for e in extra])
        return (out * mx.array(cot)).sum(), out

    (_, out), (g_params, g_x) = mx.value_and_grad(loss, argnums=(0, 1))(model.trainable_parameters(), mx.array(x))
    worst = 0.0

    def check(a, b, what, scale=None):
        nonlocal worst
        a, b = np.array(a), np.asarray(b)
        scale = scale or max(float(np.abs(b).max(initial=0)), 1e-6)
        err = float(np.abs(a - b).max(initial=0))
        worst = max(worst, err)
        assert err <= tol * scale, f"{what}: {err:.3g} > {tol:g} * {scale:.3g}"

    check(out, t_out.detach().numpy(), "output")
    check(g_x, xt.grad.numpy(), "input gradient", )
    named = lucid_mlx.to_torch_names(model, g_params)
    trainable = {n: p for n, p in original.named_parameters() if p.requires_grad}
    assert sorted(named) == sorted(trainable)
    scale = max(float(p.grad.abs().max()) for p in trainable.values() if p.grad is not None)
    for name, p in trainable.items():
        ref = np.zeros(p.shape, np.float32) if p.grad is None else p.grad.numpy()
        check(named[name], ref, f"gradient of {name}", scale)
    return worst


def _tokens(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(qkv_bias=True, dim_head=4),
    dict(use_combined_linear=False, include_fc=False, qkv_bias=True),
    dict(causal=True, sequence_length=9),
    dict(hidden_input_size=10),
    dict(use_flash_attention=True),
    dict(use_flash_attention=True, causal=True, sequence_length=7),
])
def test_sablock(kwargs):
    torch.manual_seed(0)
    original, model = mblocks.SABlock(12, 3, **kwargs), SABlock(12, 3, **kwargs)
    compare(original, model, _tokens((2, 7, kwargs.get("hidden_input_size", 12))))


def test_sablock_attention_mask_and_saved_attention():
    torch.manual_seed(0)
    original, model = mblocks.SABlock(8, 2, save_attn=True), SABlock(8, 2, save_attn=True)
    mask = np.ones((2, 5), np.float32)
    mask[0, 3:] = 0
    compare(original, model, _tokens((2, 5, 8)), mask)
    np.testing.assert_allclose(np.array(model.att_mat), original.att_mat.numpy(), rtol=1e-5, atol=1e-6)
    assert float(np.array(model.att_mat)[0, :, :, 3:].max()) == 0.0


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(act="GEGLU"),
    dict(act=("gelu", {"approximate": "tanh"}), dropout_mode="swin"),
    dict(act="relu", dropout_mode="vista3d"),
])
def test_mlp(kwargs):
    torch.manual_seed(0)
    original, model = mblocks.MLPBlock(8, 16, **kwargs), MLPBlock(8, 16, **kwargs)
    compare(original, model, _tokens((2, 5, 8)))


def test_mlp_dim_zero_means_hidden_size():
    assert MLPBlock(8, 0).linear1.weight.shape == (8, 8)


@pytest.mark.parametrize("mlp_dim, kwargs", [(20, dict()), (0, dict(qkv_bias=True, causal=True, sequence_length=6))])
def test_transformer_block(mlp_dim, kwargs):
    torch.manual_seed(0)
    original = mblocks.TransformerBlock(12, mlp_dim, 4, **kwargs)
    model = TransformerBlock(12, mlp_dim, 4, **kwargs)
    compare(original, model, _tokens((2, 6, 12)))


@pytest.mark.parametrize("kwargs", [
    dict(proj_type="conv"),
    dict(proj_type="perceptron", pos_embed_type="none"),
    dict(proj_type="conv", pos_embed_type="sincos", pos_embed_kwargs={"temperature": 100.0}),
    dict(proj_type="perceptron", pos_embed_type="fourier", pos_embed_kwargs={"scales": [1.0, 2.0, 0.5]}),
])
def test_patch_embedding(kwargs):
    torch.manual_seed(0)
    args = dict(in_channels=2, img_size=(8, 12, 4), patch_size=(4, 4, 2), hidden_size=12, num_heads=2)
    original, model = mblocks.PatchEmbeddingBlock(**args, **kwargs), PatchEmbeddingBlock(**args, **kwargs)
    compare(original, model, _tokens((2, 2, 8, 12, 4)))
    frozen = kwargs.get("pos_embed_type") in ("sincos", "fourier")
    assert ("position_embeddings" in dict(model.trainable_parameters())) is not frozen


def test_sincos_embedding_equals_monais():
    from monai.networks.blocks.pos_embed_utils import build_sincos_position_embedding as reference

    ours = build_sincos_position_embedding([3, 2, 4], 18, 3, temperature=50.0)
    np.testing.assert_allclose(np.array(ours), reference([3, 2, 4], 18, 3, 50.0).detach().numpy(),
                               rtol=1e-6, atol=1e-6)
    assert build_fourier_position_embedding(2, 8).shape == (1, 8, 8)


@pytest.mark.parametrize("make, error, match", [
    (lambda: SABlock(10, 3), ValueError, r"`hidden_size` \(=10\) must be divisible by `num_heads` \(=3\)"),
    (lambda: SABlock(8, 2, rel_pos_embedding="decomposed"), ValueError, r"`rel_pos_embedding` must be None"),
    (lambda: SABlock(8, 2, causal=True), ValueError, r"`sequence_length` is needed"),
    (lambda: SABlock(8, 2, use_flash_attention=True, save_attn=True), ValueError, r"`save_attn` needs"),
    (lambda: SABlock(8, 2, 0.1, use_flash_attention=True), ValueError, r"`use_flash_attention` with `dropout_rate`"),
    (lambda: SABlock(8, 2, dropout_rate=1.0), ValueError, r"`dropout_rate` must be in \[0, 1\), got 1.0"),
    (lambda: MLPBlock(8, 8, dropout_mode="jax"), ValueError, r"`dropout_mode` must be one of"),
    (lambda: TransformerBlock(8, 8, 2, with_cross_attention=True), ValueError, r"`with_cross_attention` must be False"),
    (lambda: PatchEmbeddingBlock(1, 8, 16, 8, 2), ValueError, r"`patch_size` \(16, 16, 16\) must not exceed"),
    (lambda: PatchEmbeddingBlock(1, 10, 4, 8, 2, proj_type="perceptron"), ValueError, r"must be divisible by `patch_size`"),
    (lambda: PatchEmbeddingBlock(1, 8, 4, 8, 2, pos_embed_type="rope"), ValueError, r"`pos_embed_type` must be one of"),
    (lambda: PatchEmbeddingBlock(1, 8, 4, 8, 2, spatial_dims=2), ValueError, r"`spatial_dims` must be 3"),
    (lambda: PatchEmbeddingBlock(1, 8, 4, 8, 2, pos_embed_kwargs={"temperature": 3.0}), ValueError,
     r"`pos_embed_kwargs` is only used by 'sincos' and 'fourier'"),
    (lambda: build_sincos_position_embedding(2, 8), ValueError, r"`embed_dim` must be divisible by 6"),
])
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_calls():
    attn = SABlock(8, 2, causal=True, sequence_length=4)
    with pytest.raises(ValueError, match=r"5 tokens, more than `sequence_length` \(=4\)"):
        attn(mx.zeros((1, 5, 8)))
    with pytest.raises(ValueError, match=r"`attn_mask` must have shape \(B, N\) = \(1, 3\)"):
        SABlock(8, 2)(mx.zeros((1, 3, 8)), mx.ones((1, 4)))
    with pytest.raises(ValueError, match="`context` is for cross-attention"):
        TransformerBlock(8, 8, 2)(mx.zeros((1, 3, 8)), context=mx.zeros((1, 3, 8)))
    assert isinstance(MLPBlock(8, 8, dropout_rate=0.0).drop1, mnn.Identity)
