"""lucid_mlx.nn.Conv3d as an mlx.nn.Module with PyTorch's behaviour."""

from __future__ import annotations

import math

import mlx.core as mx
import mlx.nn as mlx_nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten

import lucid_mlx.nn.functional as F
from arrays import DTYPES, assert_close, rounded, to_np, torch_pad_order
from lucid_mlx import nn
from reference import conv3d_ref, pad_ref, padding_pairs


def _set(conv: nn.Conv3d, wn: np.ndarray, bn: np.ndarray | None = None) -> None:
    conv.weight = mx.array(wn.astype(np.float32)).astype(conv.weight.dtype)
    if bn is not None:
        conv.bias = mx.array(bn.astype(np.float32)).astype(conv.bias.dtype)


# ---------------------------------------------------------------------------
# Shapes and parameters


@pytest.mark.parametrize(
    "args, kwargs, x_shape, y_shape",
    [
        ((1, 16, 3), dict(padding=1), (2, 1, 8, 9, 10), (2, 16, 8, 9, 10)),
        ((4, 8, (3, 5, 2)), dict(stride=(2, 1, 1), padding=(4, 2, 0)), (2, 4, 10, 12, 14), (2, 8, 8, 12, 13)),
        ((4, 6, 2), dict(padding="same", groups=2), (1, 4, 5, 6, 7), (1, 6, 5, 6, 7)),
        ((3, 3, 3), dict(padding="valid", groups=3, dilation=2), (1, 3, 6, 7, 8), (1, 3, 2, 3, 4)),
        ((2, 4, 3), dict(stride=2), (3, 2, 7, 8, 9), (3, 4, 3, 3, 4)),
        ((2, 4, (1, 2, 3)), dict(padding="same", padding_mode="circular"), (1, 2, 4, 5, 6), (1, 4, 4, 5, 6)),
        ((2, 4, 3), dict(), (2, 5, 6, 7), (4, 3, 4, 5)),  # unbatched, as PyTorch
        ((2, 4, 3), dict(padding=1), (0, 2, 5, 6, 7), (0, 4, 5, 6, 7)),  # empty batch
    ],
)
def test_output_shapes(args, kwargs, x_shape, y_shape):
    conv = nn.Conv3d(*args, **kwargs)
    y = conv(mx.zeros(x_shape))
    mx.eval(y)
    assert tuple(y.shape) == y_shape


@pytest.mark.parametrize(
    "c_in, c_out, kernel, groups, bias",
    [(3, 5, 3, 1, True), (4, 6, (1, 2, 3), 2, False), (6, 12, 3, 6, True), (8, 4, (2, 2, 1), 4, True)],
)
def test_parameters_have_pytorch_shapes(c_in, c_out, kernel, groups, bias):
    conv = nn.Conv3d(c_in, c_out, kernel, groups=groups, bias=bias)
    k = (kernel,) * 3 if isinstance(kernel, int) else kernel
    params = dict(tree_flatten(conv.parameters()))
    assert tuple(params["weight"].shape) == (c_out, c_in // groups) + k
    assert conv.weight.dtype == mx.float32
    if bias:
        assert "bias" in conv
        assert set(params) == {"weight", "bias"}
        assert tuple(conv.bias.shape) == (c_out,)
    else:
        assert "bias" not in conv
        assert set(params) == {"weight"}
    assert set(dict(tree_flatten(conv.trainable_parameters()))) == set(params)


@pytest.mark.parametrize(
    "c_in, c_out, kernel, groups",
    [(8, 64, 3, 1), (8, 64, (2, 3, 4), 4), (16, 32, 3, 16), (2, 1000, 1, 1)],
)
def test_initialisation_statistics(c_in, c_out, kernel, groups):
    """U(-b, b), b = 1/sqrt(fan_in), fan_in = in/groups * KD*KH*KW, for weight and bias."""
    mx.random.seed(0)
    conv = nn.Conv3d(c_in, c_out, kernel, groups=groups)
    k = (kernel,) * 3 if isinstance(kernel, int) else kernel
    bound = 1.0 / math.sqrt(c_in // groups * math.prod(k))
    w = to_np(conv.weight).ravel()
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.9 * bound  # the whole interval is used
    # Uniform on [-b, b]: mean 0, std b/sqrt(3); 5 standard errors of slack.
    se = bound / math.sqrt(3) / math.sqrt(w.size)
    assert abs(w.mean()) < 5 * se
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=5 / math.sqrt(w.size) + 0.02)
    b = to_np(conv.bias)
    assert np.abs(b).max() <= bound
    if b.size >= 100:
        assert np.abs(b).max() > 0.9 * bound
        assert abs(b.mean()) < 5 * bound / math.sqrt(3 * b.size)


def test_initialisation_draws_from_mlx_random_seed():
    mx.random.seed(3)
    a = nn.Conv3d(2, 3, 3)
    mx.random.seed(3)
    b = nn.Conv3d(2, 3, 3)
    c = nn.Conv3d(2, 3, 3)
    np.testing.assert_array_equal(to_np(a.weight), to_np(b.weight))
    assert not np.array_equal(to_np(b.weight), to_np(c.weight))


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("bias", [True, False])
def test_reset_parameters_redraws_within_bounds(dtype, bias):
    conv = nn.Conv3d(4, 6, (3, 2, 2), groups=2, bias=bias, dtype=dtype)
    bound = 1.0 / math.sqrt(2 * 3 * 2 * 2)
    before = to_np(conv.weight)
    conv.weight = mx.zeros_like(conv.weight)
    if bias:
        conv.bias = mx.zeros_like(conv.bias)
    conv.reset_parameters()
    after = to_np(conv.weight)
    assert conv.weight.dtype == dtype and after.shape == before.shape
    assert np.abs(after).max() <= bound * (1 + 1e-2) and np.abs(after).max() > 0
    assert not np.array_equal(before, after)
    if bias:
        assert conv.bias.dtype == dtype
        assert np.abs(to_np(conv.bias)).max() <= bound * (1 + 1e-2)
        assert np.abs(to_np(conv.bias)).max() > 0
    else:
        assert "bias" not in conv


# ---------------------------------------------------------------------------
# repr


@pytest.mark.parametrize(
    "args, kwargs, text",
    [
        (
            (16, 33, (3, 5, 2)),
            dict(stride=(2, 1, 1), padding=(4, 2, 0), dilation=(3, 1, 1), bias=False, padding_mode="reflect"),
            "Conv3d(16, 33, kernel_size=(3, 5, 2), stride=(2, 1, 1), padding=(4, 2, 0), "
            "dilation=(3, 1, 1), bias=False, padding_mode=reflect)",
        ),
        ((16, 33, 3), dict(stride=2), "Conv3d(16, 33, kernel_size=(3, 3, 3), stride=(2, 2, 2))"),
        ((1, 16, 3), dict(padding=1), "Conv3d(1, 16, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(1, 1, 1))"),
        ((2, 4, 3), dict(), "Conv3d(2, 4, kernel_size=(3, 3, 3), stride=(1, 1, 1))"),
        (
            (4, 8, 2),
            dict(padding="same", groups=4),
            "Conv3d(4, 8, kernel_size=(2, 2, 2), stride=(1, 1, 1), padding=same, groups=4)",
        ),
        ((4, 8, (1, 2, 3)), dict(padding="valid"), "Conv3d(4, 8, kernel_size=(1, 2, 3), stride=(1, 1, 1), padding=valid)"),
        (
            (3, 3, 3),
            dict(padding=(0, 1, 0), groups=3, padding_mode="circular"),
            "Conv3d(3, 3, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(0, 1, 0), groups=3, "
            "padding_mode=circular)",
        ),
        (
            (2, 2, 3),
            dict(padding=[1, 1, 1], dilation=2, padding_mode="replicate"),
            "Conv3d(2, 2, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(1, 1, 1), "
            "dilation=(2, 2, 2), padding_mode=replicate)",
        ),
        ((2, 2, 3), dict(padding_mode="zeros", dtype=mx.float16), "Conv3d(2, 2, kernel_size=(3, 3, 3), stride=(1, 1, 1))"),
    ],
)
def test_repr_matches_pytorch(args, kwargs, text):
    assert repr(nn.Conv3d(*args, **kwargs)) == text


def test_repr_inside_a_container():
    model = mlx_nn.Sequential(nn.Conv3d(1, 2, 3), mlx_nn.ReLU())
    assert "Conv3d(1, 2, kernel_size=(3, 3, 3), stride=(1, 1, 1))" in repr(model)


def test_attributes_are_normalised_as_pytorch():
    conv = nn.Conv3d(4, 8, [3, 2, 1], stride=2, padding=1, dilation=(1, 2, 1), groups=2)
    assert conv.in_channels == 4 and conv.out_channels == 8 and conv.groups == 2
    assert conv.kernel_size == (3, 2, 1)
    assert conv.stride == (2, 2, 2)
    assert conv.padding == (1, 1, 1)
    assert conv.dilation == (1, 2, 1)
    assert conv.padding_mode == "zeros"
    assert nn.Conv3d(1, 1, 2, padding="same").padding == "same"


# ---------------------------------------------------------------------------
# dtypes and devices


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16], ids=["float16", "bfloat16"])
def test_low_precision_parameters_and_output(dtype):
    conv = nn.Conv3d(2, 4, 3, padding=1, groups=2, dtype=dtype)
    assert conv.weight.dtype == dtype and conv.bias.dtype == dtype
    x, xn = rounded(np.random.default_rng(0), (1, 2, 4, 5, 6), dtype)
    y = conv(x)
    assert y.dtype == dtype
    want = conv3d_ref(xn, to_np(conv.weight), to_np(conv.bias), 1, 1, 1, 2)
    assert_close(y, want)


@pytest.mark.parametrize("device", [None, "cpu", mx.cpu, mx.Device(mx.cpu)], ids=["None", "str", "DeviceType", "Device"])
def test_device_cpu(device):
    mx.random.seed(1)
    conv = nn.Conv3d(2, 4, 3, padding=1, groups=2, padding_mode="reflect", device=device)
    x, xn = rounded(np.random.default_rng(0), (2, 2, 4, 5, 6))
    xp = pad_ref(xn, (1,) * 6, "reflect")
    assert_close(conv(x), conv3d_ref(xp, to_np(conv.weight), to_np(conv.bias), groups=2))


def test_device_cpu_runs_on_cpu_even_when_default_is_gpu():
    if not mx.is_available(mx.gpu):
        pytest.skip("no GPU backend in this MLX build")
    conv = nn.Conv3d(2, 4, 3, device="cpu")
    x = mx.random.normal((1, 2, 5, 5, 5))
    with mx.stream(mx.cpu):
        want = to_np(conv(x))
    with mx.stream(mx.gpu):
        y = conv(x)
    np.testing.assert_array_equal(to_np(y), want)


# ---------------------------------------------------------------------------
# Module == functional == reference, every padding mode


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    "kernel, padding, stride, dilation, groups",
    [
        (3, 1, 1, 1, 1),
        ((2, 4, 3), "same", 1, 1, 2),  # even kernel: one more on the high side
        ((2, 3, 2), "same", 1, (2, 1, 1), 4),  # depthwise, dilated
        (3, (2, 0, 1), 2, 1, 2),
        ((1, 2, 3), "valid", (1, 2, 1), 1, 1),
    ],
)
def test_module_matches_functional_and_reference(padding_mode, kernel, padding, stride, dilation, groups):
    mx.random.seed(2)
    conv = nn.Conv3d(4, 8, kernel, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, padding_mode=padding_mode)
    x, xn = rounded(np.random.default_rng(0), (2, 4, 5, 6, 7))
    y = conv(x)
    pairs = padding_pairs(padding, conv.kernel_size, conv.dilation)
    wn, bn = to_np(conv.weight), to_np(conv.bias)
    if padding_mode == "zeros":
        want = conv3d_ref(xn, wn, bn, stride, pairs, dilation, groups)
        same = F.conv3d(x, conv.weight, conv.bias, stride, padding, dilation, groups)
    else:
        mode = padding_mode
        want = conv3d_ref(pad_ref(xn, torch_pad_order(pairs), mode), wn, bn, stride, 0, dilation, groups)
        xp = F.pad(x, torch_pad_order(pairs), mode=mode)
        same = F.conv3d(xp, conv.weight, conv.bias, stride, 0, dilation, groups)
    assert_close(y, want)
    np.testing.assert_array_equal(to_np(y), to_np(same))


def test_module_without_bias_matches_functional():
    conv = nn.Conv3d(3, 6, 2, groups=3, bias=False)
    x = mx.random.normal((2, 3, 4, 4, 4))
    np.testing.assert_array_equal(to_np(conv(x)), to_np(F.conv3d(x, conv.weight, groups=3)))


# ---------------------------------------------------------------------------
# MLX transforms, optimisers and serialisation


@pytest.mark.parametrize(
    "kwargs",
    [dict(padding=1), dict(groups=2, padding="same", kernel_size=2), dict(groups=4, stride=2),
     dict(padding=1, padding_mode="circular", groups=2), dict(padding=(1, 0, 2), padding_mode="reflect")],
    ids=str,
)
def test_compile_gives_the_same_result(kwargs):
    kwargs = {"kernel_size": 3, **kwargs}
    conv = nn.Conv3d(4, 8, **kwargs)
    x = mx.random.normal((2, 4, 6, 5, 7))
    compiled = mx.compile(conv)
    assert_close(compiled(x), to_np(conv(x)))
    assert_close(compiled(x * 2), to_np(conv(x * 2)))  # the second call reuses the trace

    def loss(params, x):
        conv.update(params)
        return (conv(x) ** 2).mean()

    plain = mx.grad(loss)(conv.trainable_parameters(), x)
    fused = mx.compile(mx.grad(loss))(conv.trainable_parameters(), x)
    for (name, a), (_, b) in zip(tree_flatten(plain), tree_flatten(fused)):
        assert_close(b, to_np(a), what=name)


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(groups=2, padding="same"), dict(groups=4, padding_mode="replicate", padding=1), dict(bias=False)],
    ids=str,
)
def test_optimizer_step_changes_weights_and_lowers_the_loss(kwargs):
    mx.random.seed(4)
    conv = nn.Conv3d(4, 4, 3, **kwargs)
    x = mx.random.normal((2, 4, 6, 6, 6))
    target = mx.random.normal(conv(x).shape)

    def loss_fn(model, x, target):
        return ((model(x) - target) ** 2).mean()

    loss_and_grad = mlx_nn.value_and_grad(conv, loss_fn)
    opt = optim.SGD(learning_rate=0.05)
    before = {k: to_np(v) for k, v in tree_flatten(conv.parameters())}
    loss0, grads = loss_and_grad(conv, x, target)
    assert set(dict(tree_flatten(grads))) == set(before)
    opt.update(conv, grads)
    mx.eval(conv.parameters(), opt.state)
    loss1 = loss_fn(conv, x, target)
    for name, value in tree_flatten(conv.parameters()):
        assert not np.array_equal(to_np(value), before[name]), f"{name} did not change"
    assert loss1.item() < loss0.item()


def test_adam_trains_in_a_few_steps():
    mx.random.seed(5)
    teacher = nn.Conv3d(2, 4, 3, padding=1, groups=2, padding_mode="circular")
    student = nn.Conv3d(2, 4, 3, padding=1, groups=2, padding_mode="circular")
    x = mx.random.normal((2, 2, 5, 5, 5))
    target = teacher(x)

    def loss_fn(model):
        return ((model(x) - target) ** 2).mean()

    step = mlx_nn.value_and_grad(student, loss_fn)
    opt = optim.Adam(learning_rate=1e-2)
    losses = []
    for _ in range(20):
        loss, grads = step(student)
        opt.update(student, grads)
        mx.eval(student.parameters(), opt.state)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
@pytest.mark.parametrize("bias", [True, False])
def test_save_and_load_weights_round_trip(tmp_path, suffix, bias):
    mx.random.seed(6)
    conv = nn.Conv3d(4, 6, (3, 2, 1), groups=2, bias=bias, padding="same", padding_mode="reflect")
    path = str(tmp_path / f"conv{suffix}")
    conv.save_weights(path)
    mx.random.seed(7)
    other = nn.Conv3d(4, 6, (3, 2, 1), groups=2, bias=bias, padding="same", padding_mode="reflect")
    assert not np.array_equal(to_np(conv.weight), to_np(other.weight))
    other.load_weights(path)
    for (name, a), (_, b) in zip(tree_flatten(conv.parameters()), tree_flatten(other.parameters())):
        np.testing.assert_array_equal(to_np(a), to_np(b), err_msg=name)
    x = mx.random.normal((1, 4, 4, 5, 3))
    np.testing.assert_array_equal(to_np(conv(x)), to_np(other(x)))


def test_load_weights_rejects_a_wrong_shape():
    conv = nn.Conv3d(4, 6, 3, groups=2)
    with pytest.raises(ValueError):
        conv.load_weights([("weight", mx.zeros((6, 4, 3, 3, 3))), ("bias", mx.zeros((6,)))])


def test_freeze_excludes_parameters_from_training():
    conv = nn.Conv3d(2, 2, 3)
    conv.freeze(keys=["bias"])
    assert set(dict(tree_flatten(conv.trainable_parameters()))) == {"weight"}
