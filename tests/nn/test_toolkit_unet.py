"""The toolkit layers together: a tiny encoder-decoder built only from lucid_mlx
layers must train, compile and give the same output compiled and not.

The random configurations of each layer are in its own test file
(test_pooling.py, test_conv_transpose.py).
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mnn
import mlx.optimizers as optim
import numpy as np

from lucid_mlx import nn


class TinyUNet(mnn.Module):
    def __init__(self):
        super().__init__()
        self.enc = mnn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.BatchNorm3d(4), mnn.ReLU())
        self.pool = nn.MaxPool3d(2)
        self.mid = mnn.Sequential(nn.Conv3d(4, 8, 3, padding=1, groups=2), nn.GroupNorm(2, 8),
                                  mnn.ReLU(), nn.Dropout3d(0.1))
        self.up = nn.ConvTranspose3d(8, 4, 2, stride=2, groups=2)
        self.up2 = nn.Upsample(scale_factor=2, mode="trilinear")
        self.head = mnn.Sequential(nn.InstanceNorm3d(8, affine=True), nn.Conv3d(8, 3, 1),
                                   nn.AdaptiveAvgPool3d((4, 4, None)), nn.AvgPool3d(1))

    def __call__(self, x):
        skip = self.enc(x)
        y = self.mid(self.pool(skip))
        y = mx.concatenate([self.up(y), self.up2(y)[:, :4]], axis=1)
        return self.head(y + mx.concatenate([skip, skip], axis=1))


def test_tiny_unet_trains_and_compiles():
    mx.random.seed(0)
    model = TinyUNet()
    x = mx.random.normal((2, 1, 8, 8, 8))
    target = mx.random.normal((2, 3, 4, 4, 8))
    opt = optim.Adam(learning_rate=1e-2)

    def loss_fn(model, x):
        return mx.square(model(x) - target).mean()

    step = mnn.value_and_grad(model, loss_fn)
    losses = []
    for _ in range(5):
        loss, grads = step(model, x)
        opt.update(model, grads)
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()  # Dropout3d off, BatchNorm3d on running statistics
    eager = model(x)
    compiled = mx.compile(model)(x)
    np.testing.assert_allclose(np.array(compiled), np.array(eager), rtol=1e-5, atol=1e-5)
    assert eager.shape == (2, 3, 4, 4, 8)
