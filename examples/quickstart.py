"""A tour of lucid_mlx's Conv3d: the examples of Lucid's Conv3d documentation, then a grouped,
reflect-padded convolution with its gradients.

Run:  python examples/quickstart.py
"""

import mlx.core as mx
import mlx.nn as mlx_nn
import mlx.optimizers as optim

import lucid_mlx.nn.functional as F
from lucid_mlx import nn


def shapes() -> None:
    print("== Output shapes (NCDHW in, NCDHW out)")
    conv = nn.Conv3d(1, 16, 3, padding=1)
    x = mx.zeros((2, 1, 16, 32, 32))
    print(f"{conv}\n  {tuple(x.shape)} -> {tuple(conv(x).shape)}")
    conv = nn.Conv3d(16, 32, 3, stride=2, padding=1)
    x = mx.zeros((2, 16, 16, 32, 32))
    print(f"{conv}\n  {tuple(x.shape)} -> {tuple(conv(x).shape)}")


def hand_computed() -> None:
    print("\n== Input and weight both hold 1..16 in shape (1, 2, 2, 2, 2)")
    conv = nn.Conv3d(in_channels=2, out_channels=1, kernel_size=2, bias=False)
    values = mx.arange(1, 17, dtype=mx.float32).reshape(1, 2, 2, 2, 2)
    conv.weight = values

    def total(x, w):
        return F.conv3d(x, w).sum()

    out = conv(values)
    grad_x, grad_w = mx.grad(total, argnums=(0, 1))(values, conv.weight)
    print(f"  output = {out.item():.0f} (sum of squares 1..16 = {sum(i * i for i in range(1, 17))})")
    print(f"  d out / d x == W: {mx.array_equal(grad_x, conv.weight).item()}")
    print(f"  d out / d W == x: {mx.array_equal(grad_w, values).item()}")


class LucidDocsModel(mlx_nn.Module):
    """The model of Lucid's nn.Conv3d page: Conv3d -> ReLU -> Conv3d -> ReLU -> MaxPool3d -> Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv3d(1, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv3d(8, 16, kernel_size=3)
        self.pool = nn.MaxPool3d(kernel_size=2, stride=2)
        self.fc = mlx_nn.Linear(16 * 4 * 4 * 4, 10)

    def __call__(self, x):
        x = mx.maximum(self.conv1(x), 0)
        x = mx.maximum(self.conv2(x), 0)
        x = self.pool(x)
        return self.fc(x.reshape(x.shape[0], -1))


def train_lucid_docs_model() -> None:
    print("\n== The Lucid documentation's model, a few SGD steps on a (1, 1, 10, 10, 10) input")
    mx.random.seed(0)
    model = LucidDocsModel()
    x = mx.random.normal((1, 1, 10, 10, 10))
    target = mx.array([3])

    def loss_fn(model, x, y):
        return mlx_nn.losses.cross_entropy(model(x), y).mean()

    step = mlx_nn.value_and_grad(model, loss_fn)
    opt = optim.SGD(learning_rate=0.05)
    for i in range(5):
        loss, grads = step(model, x, target)
        opt.update(model, grads)
        mx.eval(model.parameters(), opt.state)
        print(f"  step {i}: loss {loss.item():.4f}")


def grouped_reflect() -> None:
    print("\n== Grouped (groups=4), reflect-padded conv and its gradients")
    mx.random.seed(1)
    conv = nn.Conv3d(8, 16, 3, padding=1, groups=4, padding_mode="reflect")
    x = mx.random.normal((2, 8, 6, 7, 8))
    print(f"{conv}\n  weight {tuple(conv.weight.shape)}, output {tuple(conv(x).shape)}")

    def loss_fn(model, x):
        return (model(x) ** 2).mean()

    loss, grads = mlx_nn.value_and_grad(conv, loss_fn)(conv, x)
    grad_x = mx.grad(lambda x: loss_fn(conv, x))(x)
    print(f"  loss {loss.item():.4f}")
    print(f"  |dL/dW| {mx.abs(grads['weight']).sum().item():.4f}, "
          f"|dL/db| {mx.abs(grads['bias']).sum().item():.4f}, |dL/dx| {mx.abs(grad_x).sum().item():.4f}")
    depthwise = nn.Conv3d(8, 16, 3, padding="same", groups=8, padding_mode="circular")
    print(f"{depthwise}\n  output {tuple(depthwise(x).shape)}")


if __name__ == "__main__":
    shapes()
    hand_computed()
    train_lucid_docs_model()
    grouped_reflect()
