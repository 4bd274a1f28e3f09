"""A small 3-D network and its training, shared by the data-parallel ranks and the reference.

The same function trains on one rank's shard (inside a job) or on the whole
batch (alone): the loss of a shard is its sum of squared errors times
``size / (elements of the global batch)``, so that after
``nn.average_gradients`` divides by ``size`` every step follows the
gradient of the global mean loss, even when the shards are uneven.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

from lucid_mlx import distributed as dist
from lucid_mlx.nn import BatchNorm3d, Conv3d, GroupNorm, SyncBatchNorm3d

STEPS = 5
SPATIAL = (6, 6, 6)


@dataclass(frozen=True)
class Setting:
    name: str
    norm: str  # "none", "group" or "batch"
    extra_samples: int = 0  # global batch = 2 * size + extra_samples


def settings() -> list[Setting]:
    return [Setting("no_norm", "none"), Setting("group_norm", "group"),
            Setting("sync_batch_norm", "batch"),
            Setting("sync_batch_norm_uneven", "batch", extra_samples=1)]


class SmallNet(nn.Module):
    def __init__(self, norm: str):
        super().__init__()
        make = {"none": lambda c: nn.Identity(), "group": lambda c: GroupNorm(4, c),
                "batch": BatchNorm3d}[norm]
        # A bias before a batch norm cancels out: its gradient is round-off, which Adam
        # would blow up to full-size steps of noise (as PyTorch models, leave it out).
        bias = norm != "batch"
        self.conv1 = Conv3d(2, 8, 3, padding=1, bias=bias)
        self.norm1 = make(8)
        self.conv2 = Conv3d(8, 8, 3, stride=2, padding=1, bias=bias)
        self.norm2 = make(8)
        self.head = Conv3d(8, 1, 1)

    def __call__(self, x):
        x = nn.relu(self.norm1(self.conv1(x)))
        x = nn.relu(self.norm2(self.conv2(x)))
        return self.head(x)


def make_model(setting: Setting, sync: bool) -> nn.Module:
    mx.random.seed(0)  # the same initial weights on every rank and in the reference
    model = SmallNet(setting.norm)
    return SyncBatchNorm3d.convert_sync_batchnorm(model) if sync else model


def global_batch(setting: Setting, step: int, size: int):
    rng = np.random.default_rng([step, len(setting.name)])
    n = 2 * size + setting.extra_samples
    x = rng.standard_normal((n, 2) + SPATIAL).astype(np.float32)
    y = rng.standard_normal((n, 1) + tuple(s // 2 for s in SPATIAL)).astype(np.float32)
    return x, y


def train(setting: Setting, size: int, *, shard: bool) -> dict[str, np.ndarray]:
    """``STEPS`` Adam steps; returns the first step's gradients and the final arrays."""
    model = make_model(setting, sync=shard)
    if shard:
        dist.broadcast_parameters(model)
    optimizer = optim.Adam(learning_rate=1e-2)

    def loss_fn(model, x, y, scale):
        return mx.square(model(x) - y).sum() * scale

    loss_and_grad = nn.value_and_grad(model, loss_fn)
    record = {f"initial/{k}": v for k, v in tree_flatten(model.parameters())}
    for step in range(STEPS):
        x, y = global_batch(setting, step, size)
        scale = (size if shard else 1) / y.size
        if shard:
            x, y = dist.shard_batch((x, y))
        loss, grads = loss_and_grad(model, mx.array(x), mx.array(y), scale)
        if shard:
            grads = nn.average_gradients(grads)
        optimizer.update(model, grads)
        with dist.deadline():
            mx.eval(model.parameters(), optimizer.state, loss)
        if step == 0:
            record.update({f"grad0/{k}": v for k, v in tree_flatten(grads)})
    record.update({f"final/{k}": v for k, v in tree_flatten(model.parameters())})
    if shard:
        record["in_sync"] = mx.array(dist.parameters_in_sync(model))
        record["optimizer_in_sync"] = mx.array(dist.parameters_in_sync(optimizer.state))
    return {k: np.array(v) for k, v in record.items()}
