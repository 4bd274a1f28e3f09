"""DynUNet against MONAI 1.6.1: outputs, gradients, shared-module names and optimizer steps."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mnn
import mlx.optimizers as optim
import numpy as np
import pytest

import lucid_mlx
from lucid_mlx.models import DynUNet

monai_nets = pytest.importorskip("monai.networks.nets", reason="DynUNet is checked against MONAI")
from monai_twin import check_twin, randomise, torch  # noqa: E402

CONFIGS = {
    "plain": (dict(in_channels=2, out_channels=3, kernel_size=[3, 3, 3], strides=[1, 2, 2],
                   upsample_kernel_size=[2, 2], filters=[4, 8, 12]), (2, 2, 8, 8, 8)),
    # A strided input block: the output is at half resolution.
    "stride2-input": (dict(in_channels=1, out_channels=2, kernel_size=[3, 3, 3], strides=[2, 2, 2],
                           upsample_kernel_size=[2, 2], filters=[4, 6, 8]), (1, 1, 16, 16, 16)),
    "res-batch-deep": (dict(in_channels=2, out_channels=2, kernel_size=[3, 3, 3, 3], strides=[1, 2, 2, 2],
                            upsample_kernel_size=[2, 2, 2], filters=[4, 6, 8, 10], norm_name="batch",
                            res_block=True, deep_supervision=True, deep_supr_num=2, trans_bias=True),
                       (1, 2, 16, 16, 16)),
    # Anisotropic kernels and strides, group norm, PReLU, filters longer than needed.
    "anisotropic-group-prelu": (dict(in_channels=1, out_channels=2, kernel_size=[[3, 3, 1], 3, [1, 3, 3], 3],
                                     strides=[1, [2, 2, 1], 2, [1, 2, 2]],
                                     upsample_kernel_size=[[2, 2, 1], 2, [1, 2, 2]],
                                     filters=[4, 8, 8, 8, 99], norm_name=("group", {"num_groups": 2}),
                                     act_name=("prelu", {"num_parameters": 1, "init": 0.2}),
                                     deep_supervision=True, deep_supr_num=1),
                                (1, 1, 8, 16, 8)),
    "res-instance-relu": (dict(in_channels=1, out_channels=1, kernel_size=[3, 3, 3], strides=[1, 2, 2],
                               upsample_kernel_size=[2, 2], filters=[4, 4, 8], norm_name="instance",
                               act_name="relu", res_block=True), (2, 1, 8, 8, 8)),
}

def _pair(kwargs):
    torch.manual_seed(0)
    return monai_nets.DynUNet(spatial_dims=3, **kwargs), DynUNet(spatial_dims=3, **kwargs)


# check_twin draws its cotangents from the eval outputs, but with deep supervision
# the train output gains a head axis. Seen through these subclasses (same
# state_dict names), both modes give 1 + deep_supr_num maps of one shape: in
# train mode the heads, in eval mode the single output repeated.
class _MonaiHeads(monai_nets.DynUNet):
    def forward(self, x):
        out = super().forward(x)
        return list(out.unbind(1)) if out.ndim == 6 else [out] * (1 + self.deep_supr_num)


class _Heads(DynUNet):
    def __call__(self, x):
        out = super().__call__(x)
        return [out[:, i] for i in range(out.shape[1])] if out.ndim == 6 else [out] * (1 + self.deep_supr_num)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_monai(name):
    kwargs, shape = CONFIGS[name]
    torch.manual_seed(0)
    deep = kwargs.get("deep_supervision", False)
    make_torch = lambda: (_MonaiHeads if deep else monai_nets.DynUNet)(spatial_dims=3, **kwargs)  # noqa: E731
    original, model = make_torch(), (_Heads if deep else DynUNet)(spatial_dims=3, **kwargs)
    check_twin(original, model, make_torch, shape, seed=1, tol=1e-5, grad_tol=1e-4)


def test_dropout_eval_matches_and_train_drops():
    kwargs = dict(CONFIGS["plain"][0], dropout=0.3)
    original, model = _pair(kwargs)
    check_twin(original, model, lambda: monai_nets.DynUNet(spatial_dims=3, **kwargs), (1, 2, 8, 8, 8),
               train=False)
    model.train()
    x = mx.ones((1, 2, 8, 8, 8))
    assert not mx.array_equal(model(x), model(x)).item()


def test_state_dict_holds_skip_layer_names_once_in_mlx():
    kwargs, _ = CONFIGS["res-batch-deep"]
    original, model = _pair(kwargs)
    monai_keys = list(original.state_dict())
    ours = lucid_mlx.torch_state_dict(model)
    assert sorted(ours) == sorted(monai_keys)
    skip = [k for k in monai_keys if k.startswith("skip_layers.")]
    assert len(skip) == len(monai_keys) - len(lucid_mlx.torch_names(model)) > 30
    # The MLX model has one array per weight: skip_layers is not a second registration.
    assert not any(path.startswith("skip_layers") for path in lucid_mlx.torch_names(model))
    assert ours["skip_layers.next_layer.super_head.conv.conv.weight"] is ours[
        "deep_supervision_heads.0.conv.conv.weight"]
    assert ours["skip_layers.next_layer.next_layer.next_layer.conv1.conv.weight"] is ours[
        "bottleneck.conv1.conv.weight"]


def test_deep_supervision_only_in_training():
    kwargs, shape = CONFIGS["res-batch-deep"]
    _, model = _pair(kwargs)
    x = mx.zeros(shape)
    assert model(x).shape == (1, 3, 2, 16, 16, 16)
    model.eval()
    assert model(x).shape == (1, 2, 16, 16, 16)


def test_default_filters_are_nnunets():
    kwargs = dict(in_channels=1, out_channels=2, kernel_size=[3] * 7, strides=[1] + [2] * 6,
                  upsample_kernel_size=[2] * 6)
    original, model = _pair(kwargs)
    assert model.filters == original.filters == [32, 64, 128, 256, 320, 320, 320]
    shapes = {k: tuple(v.shape) for k, v in lucid_mlx.torch_state_dict(model).items()}
    assert shapes == {k: tuple(v.shape) for k, v in original.state_dict().items()}


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_one_optimizer_step_equals_monai(optimizer, tmp_path):
    """Shared blocks must be one weight set: an SGD or Adam step lands where PyTorch's does."""
    kwargs = dict(in_channels=2, out_channels=2, kernel_size=[3, 3, 3], strides=[1, 2, 2],
                  upsample_kernel_size=[2, 2], filters=[4, 6, 8], norm_name="batch", res_block=True,
                  deep_supervision=True, trans_bias=True)
    shape = (2, 2, 8, 8, 8)
    original, model = _pair(kwargs)
    randomise(original, 2)
    lucid_mlx.load_torch_state_dict(model, original.state_dict())
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    target = np.random.default_rng(4).standard_normal((2, 2, 2, 8, 8, 8)).astype(np.float32)

    original.train()
    model.train()
    if optimizer == "sgd":
        t_opt, opt = torch.optim.SGD(original.parameters(), lr=0.05), optim.SGD(learning_rate=0.05)
    else:
        t_opt = torch.optim.Adam(original.parameters(), lr=1e-3)
        opt = optim.Adam(learning_rate=1e-3, bias_correction=True)  # PyTorch's Adam corrects the bias
    t_opt.zero_grad()
    ((original(torch.from_numpy(x)) - torch.from_numpy(target)) ** 2).mean().backward()
    t_opt.step()

    loss_fn = lambda m, x, y: ((m(x) - y) ** 2).mean()  # noqa: E731
    _, grads = mnn.value_and_grad(model, loss_fn)(model, mx.array(x), mx.array(target))
    opt.update(model, grads)
    mx.eval(model.parameters())

    after = lucid_mlx.torch_state_dict(model)
    worst = 0.0
    for name, value in original.state_dict().items():
        ref = value.numpy()
        diff = np.abs(np.array(after[name], dtype=ref.dtype) - ref).max(initial=0)
        worst = max(worst, float(diff))
        assert diff <= 1e-5 * max(1.0, np.abs(ref).max(initial=0)), name
    # Saved back, MONAI loads the stepped weights strictly under both names.
    path = tmp_path / "stepped.safetensors"
    lucid_mlx.save_torch_state_dict(model, path)
    from safetensors.torch import load_file

    fresh = monai_nets.DynUNet(spatial_dims=3, **kwargs)
    fresh.load_state_dict(load_file(path), strict=True)
    for name, value in fresh.state_dict().items():
        assert torch.allclose(value.float(), original.state_dict()[name].float(), rtol=1e-5, atol=1e-6), name


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(spatial_dims=2), ValueError, r"`spatial_dims` must be 3 \(lucid_mlx is 3-D\), got 2"),
    (dict(strides=[1, 2], kernel_size=[3, 3], upsample_kernel_size=[2]), ValueError, "at least 3 levels"),
    (dict(kernel_size=[3, 3]), ValueError, r"`kernel_size` must have 3 entries"),
    (dict(upsample_kernel_size=[2, 2, 2]), ValueError, r"`upsample_kernel_size` must have 2 entries"),
    (dict(kernel_size=[3, [3, 3], 3]), ValueError, r"`kernel_size` entry 1 must be an int or have 3 entries"),
    (dict(filters=[4, 8]), ValueError, r"`filters` must have at least len\(strides\) = 3"),
    (dict(deep_supervision=True, deep_supr_num=2), ValueError, r"`deep_supr_num` must be at least 1 and less"),
    (dict(deep_supervision=True, deep_supr_num=0), ValueError, r"`deep_supr_num` must be at least 1"),
    (dict(res_block=1), TypeError, r"`res_block` must be a bool"),
    (dict(norm_name="layer"), ValueError, r"`norm` 'layer' is not supported"),
    (dict(strides=[1, 4, 2], kernel_size=[3, 1, 3]), ValueError, r"padding would be negative"),
])
def test_bad_arguments(kwargs, error, match):
    args = dict(spatial_dims=3, in_channels=1, out_channels=2, kernel_size=[3, 3, 3], strides=[1, 2, 2],
                upsample_kernel_size=[2, 2], filters=[4, 4, 4])
    args.update(kwargs)
    with pytest.raises(error, match=match):
        DynUNet(**args)


def test_size_not_divisible_is_a_clear_error():
    model = DynUNet(3, 1, 1, kernel_size=[3, 3, 3], strides=[1, 2, 2], upsample_kernel_size=[2, 2],
                    filters=[2, 2, 2])
    with pytest.raises(ValueError, match=r"differ in batch or spatial size"):
        model(mx.zeros((1, 1, 6, 8, 8)))
