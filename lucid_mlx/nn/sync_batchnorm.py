"""Batch normalisation with statistics over every rank's batch: ``SyncBatchNorm3d``.

Under data parallelism each rank sees a shard of the batch.  ``BatchNorm3d``
would normalise each shard by its own statistics, so two ranks with two
volumes each train a different network from one process with four.  The
synchronised version combines the shards' statistics so that every rank
normalises exactly as ``BatchNorm3d`` would on the concatenated batch.

Each rank sends its count, mean and sum of squared deviations per channel
in one ``all_gather`` (equivalent to sending sums and sums of squares, but
combined with Chan's parallel-variance formula, which keeps the precision
of ``BatchNorm3d``'s two-pass variance where ``E[x^2] - E[x]^2`` would
cancel catastrophically for inputs far from zero mean).  Counts travel
with the statistics, so uneven shards, even an empty one, are exact.

The gather's vjp all-sums the statistics' cotangents
(:func:`lucid_mlx.distributed.all_gather`): MLX's own collectives
differentiate as if the other ranks did not depend on this rank's
statistics, which gives wrong input gradients.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Optional

import mlx.core as mx
import mlx.nn as nn

from .. import _args
from ..distributed.collectives import all_gather
from ..distributed.group import Group, get_group
from .normalization import BatchNorm3d


def sync_batch_norm_stats(x: mx.array, running_mean: Optional[mx.array],
                          running_var: Optional[mx.array], weight: Optional[mx.array],
                          bias: Optional[mx.array], momentum, eps: float,
                          group: Group) -> tuple[mx.array, Optional[mx.array], Optional[mx.array]]:
    """Training-mode batch norm of (N, C, ...) over every rank's batch.

    Returns ``(y, new_running_mean, new_running_var)`` like
    ``BatchNorm3d``'s statistics helper; the new statistics are ``None``
    when no running statistics were given.  Every rank of ``group`` must
    call it, with the same number of channels.
    """
    c = x.shape[1]
    channel_shape = (1, c) + (1,) * (x.ndim - 2)
    axes = (0,) + tuple(range(2, x.ndim))
    count = x.size // c if c else 0
    x32 = x.astype(mx.float32) if x.dtype != mx.float32 else x
    local_mean = x32.sum(axis=axes) / max(count, 1)  # an empty shard contributes zeros
    local_m2 = mx.square(x32 - local_mean.reshape(channel_shape)).sum(axis=axes)
    local = mx.stack([mx.full((c,), float(count)), local_mean, local_m2])
    stats = all_gather(local, group=group).reshape(-1, 3, c)
    counts, means, m2s = stats[:, 0], stats[:, 1], stats[:, 2]
    total = counts.sum(axis=0)
    mean = (counts * means).sum(axis=0) / total
    # Chan et al.: the spread within each shard plus the spread of the shard means.
    var = (m2s.sum(axis=0) + (counts * mx.square(means - mean)).sum(axis=0)) / total
    y = (x32 - mean.reshape(channel_shape)) * mx.rsqrt(var.reshape(channel_shape) + eps)
    if weight is not None:
        y = y * weight.astype(mx.float32).reshape(channel_shape)
    if bias is not None:
        y = y + bias.astype(mx.float32).reshape(channel_shape)
    y = y.astype(x.dtype)
    if running_mean is None:
        return y, None, None
    # Running statistics carry no gradient; the variance is the unbiased one over all ranks.
    m = mx.stop_gradient(mean)
    v = mx.stop_gradient(var) * (total / (total - 1))
    new_mean = ((1 - momentum) * running_mean + momentum * m).astype(running_mean.dtype)
    new_var = ((1 - momentum) * running_var + momentum * v).astype(running_var.dtype)
    return y, new_mean, new_var


class SyncBatchNorm3d(BatchNorm3d):
    r"""``BatchNorm3d`` whose training statistics span every rank, as ``torch.nn.SyncBatchNorm``.

    In training mode with more than one rank, the mean and (biased)
    variance per channel are those of the concatenation of every rank's
    batch, in one collective per layer, and the running statistics are
    updated exactly as ``BatchNorm3d`` would on that concatenated batch
    (unbiased variance over the global count; ``momentum=None`` gives the
    cumulative average).  The backward pass is exact too: each rank gets the
    gradient of the sum of all ranks' losses.  In eval mode, and in a job of
    one rank, it is ``BatchNorm3d``.

    Parameters and buffers have ``BatchNorm3d``'s names, so checkpoints load
    either way.  Every rank must call the layer the same number of times
    per step, since each call is a collective; shards may be uneven (a step
    where all ranks together hold one value per channel leaves NaN in
    ``running_var``, where ``BatchNorm3d`` would raise, because checking the
    global count would cost a host round trip per layer).

    ``GroupNorm`` and ``InstanceNorm3d`` normalise each sample on its own and
    need no synchronisation: they are exact under data parallelism as they
    are, and the cheaper choice for new networks.

    Args:
        num_features (int): Number of channels C.
        eps (float): Added to the variance for stability. Default: ``1e-5``.
        momentum (float or None): Weight of the new batch in the running
            estimates; ``None`` for the cumulative average. Default: ``0.1``.
        affine (bool): Learn ``weight`` and ``bias``. Default: ``True``.
        track_running_stats (bool): Keep running estimates. Default: ``True``.
        device (str or Device, optional): Device for the layer's ops. Default: ``None``.
        dtype (Dtype, optional): Dtype of parameters and buffers. Default: ``mx.float32``.
        bias (bool, keyword-only): With ``affine``, also learn ``bias``. Default: ``True``.
        group (Group, optional, keyword-only): The ranks to synchronise over.
            Default: the global group of :mod:`lucid_mlx.distributed`.

    Shape:
        - Input: (N, C, D, H, W); N may differ between ranks, even be 0
        - Output: (N, C, D, H, W)

    Example:
        >>> model = SyncBatchNorm3d.convert_sync_batchnorm(model)  # every BatchNorm3d
        >>> bn = SyncBatchNorm3d(16)
        >>> bn(mx.random.normal((2, 16, 4, 8, 8))).shape
        (2, 16, 4, 8, 8)
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None,
                 *, bias: bool = True, group: Optional[Group] = None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)
        if group is not None and not isinstance(group, Group):
            raise TypeError(f"`group` must be an mlx.core.distributed.Group or None, got "
                            f"{type(group).__name__}")
        self._group = group

    def __call__(self, x: mx.array) -> mx.array:
        group = get_group(self._group)
        if not self.training or group.size() == 1:
            return super().__call__(x)
        _args.check_array(x, "input", 5, "(N, C, D, H, W)")
        if x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm3d: `input` has {x.shape[1]} channels (shape "
                             f"{tuple(x.shape)}) but num_features={self.num_features}")
        # BatchNorm3d keeps its device as `_device`; honour it the same way.
        device = getattr(self, "_device", None)
        with mx.stream(device) if device is not None else nullcontext():
            momentum = self.momentum
            if self.track_running_stats:
                self.num_batches_tracked = self.num_batches_tracked + 1
                if momentum is None:  # cumulative average, as BatchNorm3d
                    momentum = 1.0 / self.num_batches_tracked.astype(mx.float32)
            tracked = self.track_running_stats
            y, mean, var = sync_batch_norm_stats(
                x, self["running_mean"] if tracked else None,
                self["running_var"] if tracked else None,
                self.get("weight"), self.get("bias"), momentum, self.eps, group)
            if tracked:
                self.running_mean, self.running_var = mean, var
            return y

    @classmethod
    def convert_sync_batchnorm(cls, module: nn.Module,
                               group: Optional[Group] = None) -> nn.Module:
        """Replace every ``BatchNorm3d`` in ``module`` by a ``SyncBatchNorm3d``, recursively.

        As ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``: the new layers
        take over the weights, buffers, training mode and frozen state of the
        old ones, containers are updated in place, and the converted module
        is returned (a new object when ``module`` itself is a
        ``BatchNorm3d``).  Layers that already are ``SyncBatchNorm3d`` stay.

        Args:
            module (Module): A model, or one ``BatchNorm3d``.
            group (Group, optional): Passed to the new layers. Default: ``None``.

        Returns:
            Module: The converted module.

        Example:
            >>> model = SyncBatchNorm3d.convert_sync_batchnorm(UNet3d(norm="batch"))
        """
        if not isinstance(module, nn.Module):
            raise TypeError(f"`module` must be an mlx.nn.Module, got {type(module).__name__}")
        if group is not None and not isinstance(group, Group):
            raise TypeError(f"`group` must be an mlx.core.distributed.Group or None, got "
                            f"{type(group).__name__}")
        return _convert(cls, module, group)


def _convert(cls, value, group):
    if isinstance(value, BatchNorm3d) and not isinstance(value, SyncBatchNorm3d):
        return _to_sync(cls, value, group)
    if isinstance(value, nn.Module):
        for key, child in list(value.items()):
            if isinstance(child, (nn.Module, list, tuple, dict)):
                converted = _convert(cls, child, group)
                if converted is not child:
                    value[key] = converted
        return value
    if isinstance(value, (list, tuple)):
        items = [_convert(cls, v, group) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return type(value)(items)
    if isinstance(value, dict):
        items = {k: _convert(cls, v, group) for k, v in value.items()}
        if all(items[k] is value[k] for k in value):
            return value
        return items
    return value


def _to_sync(cls, bn: BatchNorm3d, group) -> "SyncBatchNorm3d":
    arrays = dict(bn.parameters())
    floating = bn.get("weight", bn.get("running_mean"))
    dtype = floating.dtype if floating is not None else getattr(bn, "_dtype", None)
    sync = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats,
               getattr(bn, "_device", None), dtype, bias="bias" in bn, group=group)
    sync.update(arrays)
    trainable = {k for k, _ in bn.trainable_parameters().items()}
    frozen = [k for k in arrays if k not in trainable]
    if frozen:
        sync.freeze(keys=frozen, recurse=False)
    sync.train(bn.training)
    return sync
