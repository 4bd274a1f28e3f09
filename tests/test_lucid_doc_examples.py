"""The Conv3d examples of Lucid's documentation, in their consistent reading.

The project was created from Lucid's ``nn.Conv3d`` documentation (kept in
``shared/seeds/``): its class reference gives the two shape examples, its
``nn.Conv3d`` page prints the hand-computed
example with an input of shape (1, 2, 2, 2) labelled (1, 2, 2, 2, 2) and a
result of 204; read consistently, input and weight both hold 1..16 in shape
(1, 2, 2, 2, 2), so the single output is sum(i^2 for i in 1..16) = 1496, and
its gradients are the other operand.  That page's model is built as printed
(Conv3d -> ReLU -> Conv3d -> ReLU -> MaxPool3d -> Linear) on the
(1, 1, 10, 10, 10) input its Linear(16*4*4*4, 10) implies.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mlx_nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

import lucid_mlx.nn.functional as F
from arrays import to_np
from lucid_mlx import nn


def test_lucid_docs_same_padding_keeps_the_volume():
    conv3 = nn.Conv3d(in_channels=1, out_channels=16, kernel_size=3, padding=1)
    x = mx.zeros((2, 1, 16, 32, 32))
    y = conv3(x)
    assert tuple(y.shape) == (2, 16, 16, 32, 32)
    # Zero input: every output voxel is its channel's bias.
    np.testing.assert_allclose(
        to_np(y), np.broadcast_to(to_np(conv3.bias).reshape(1, 16, 1, 1, 1), y.shape), rtol=0, atol=0
    )


def test_lucid_docs_strided_downsampling():
    conv3_stride = nn.Conv3d(16, 32, kernel_size=3, stride=2, padding=1)
    y = conv3_stride(mx.zeros((2, 16, 16, 32, 32)))
    mx.eval(y)
    assert tuple(y.shape) == (2, 32, 8, 16, 16)


def _one_to_sixteen():
    return mx.arange(1, 17, dtype=mx.float32).reshape(1, 2, 2, 2, 2)


def test_lucid_docs_hand_computed_example_module():
    x = _one_to_sixteen()
    conv3d = nn.Conv3d(in_channels=2, out_channels=1, kernel_size=2, bias=False)
    assert tuple(conv3d.weight.shape) == (1, 2, 2, 2, 2)
    conv3d.weight = _one_to_sixteen()
    output = conv3d(x)
    assert tuple(output.shape) == (1, 1, 1, 1, 1)
    assert output.item() == 1496.0 == sum(i * i for i in range(1, 17))

    # output.backward(): d(output)/dx = W and d(output)/dW = x.
    grad_x = mx.grad(lambda x: conv3d(x).sum())(x)
    np.testing.assert_array_equal(to_np(grad_x), to_np(conv3d.weight))

    value, grads = mlx_nn.value_and_grad(conv3d, lambda m, x: m(x).sum())(conv3d, x)
    assert value.item() == 1496.0
    assert set(grads) == {"weight"}
    np.testing.assert_array_equal(to_np(grads["weight"]), to_np(x))


def test_lucid_docs_hand_computed_example_functional():
    x = w = _one_to_sixteen()
    y, (gx, gw) = mx.value_and_grad(lambda x, w: F.conv3d(x, w).sum(), argnums=(0, 1))(x, w)
    assert y.item() == 1496.0
    np.testing.assert_array_equal(to_np(gx), to_np(w))
    np.testing.assert_array_equal(to_np(gw), to_np(x))


def test_lucid_docs_with_bias_adds_it_once_per_output():
    x = _one_to_sixteen()
    conv3d = nn.Conv3d(2, 1, 2)
    conv3d.weight = _one_to_sixteen()
    conv3d.bias = mx.array([4.0])
    assert conv3d(x).item() == 1500.0
    grads = mlx_nn.value_and_grad(conv3d, lambda m: m(x).sum())(conv3d)[1]
    assert grads["bias"].item() == 1.0


class Conv3dModel(mlx_nn.Module):
    """The model of Lucid's nn.Conv3d page, NCDHW throughout, with lucid_mlx's Conv3d and MaxPool3d."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels=1, out_channels=8, kernel_size=3, padding=1)
        self.relu = mlx_nn.ReLU()
        self.conv2 = nn.Conv3d(in_channels=8, out_channels=16, kernel_size=3)
        self.pool = nn.MaxPool3d(kernel_size=2, stride=2)
        self.fc = mlx_nn.Linear(16 * 4 * 4 * 4, 10)

    def __call__(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.pool(x)
        x = x.reshape(x.shape[0], -1)
        return self.fc(x)


def test_lucid_docs_model_trains_one_step():
    mx.random.seed(0)
    model = Conv3dModel()
    x = mx.random.normal((1, 1, 10, 10, 10))
    label = mx.array([3])
    output = model(x)
    assert tuple(output.shape) == (1, 10)

    def loss_fn(model, x, label):
        return mlx_nn.losses.cross_entropy(model(x), label).mean()

    before = {k: to_np(v) for k, v in tree_flatten(model.trainable_parameters())}
    assert set(before) == {
        "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias",
    }
    loss0, grads = mlx_nn.value_and_grad(model, loss_fn)(model, x, label)
    opt = optim.SGD(learning_rate=1e-2)
    opt.update(model, grads)
    mx.eval(model.parameters(), opt.state)
    loss1 = loss_fn(model, x, label)
    assert loss1.item() < loss0.item()
    for name, value in tree_flatten(model.trainable_parameters()):
        assert not np.array_equal(to_np(value), before[name]), f"{name} did not change"
