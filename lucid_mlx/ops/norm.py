"""Batch, instance and group normalisation on channels-first arrays, in MLX ops.

The statistics of float16/bfloat16 inputs are taken in float32 (PyTorch's CPU
kernels accumulate in float too): a float16 sum of 32^3 squares overflows.
The variance used to normalise is the biased one; running variances are
updated with the unbiased one, as PyTorch.

Functions here take arguments validated by :mod:`lucid_mlx.nn.functional`
and return the new running statistics instead of writing them: the
functional ops write them in place, as PyTorch's do.
"""

from __future__ import annotations

from typing import Optional

import mlx.core as mx


def _mean(x: mx.array, axes: tuple[int, ...]) -> mx.array:
    """Mean over ``axes`` (kept), summed one axis at a time.

    MLX's CPU reduction adds a whole 64^3 volume into one float32 running
    sum: 3.4e-5 absolute error on the mean of N(3, 1) data against 4.3e-7
    when each axis is summed on its own (and 3x faster), which moved
    InstanceNorm3d 4e-5 away from float64 where PyTorch stays at 1e-7.
    """
    total = x
    for axis in sorted(axes, reverse=True):
        total = total.sum(axis=axis, keepdims=True)
    count = 1
    for axis in axes:
        count *= x.shape[axis]
    return total / max(count, 1)


def _stats(x: mx.array, axes: tuple[int, ...]) -> tuple[mx.array, mx.array]:
    """Mean and biased variance over ``axes`` (kept), in at least float32."""
    x32 = x.astype(mx.float32) if x.dtype != mx.float32 else x
    mean = _mean(x32, axes)
    var = _mean(mx.square(x32 - mean), axes)
    return mean, var


def _normalise(x, mean, var, weight, bias, eps, channel_shape):
    y = (x.astype(mean.dtype) - mean) * mx.rsqrt(var + eps)
    if weight is not None:
        y = y * weight.astype(y.dtype).reshape(channel_shape)
    if bias is not None:
        y = y + bias.astype(y.dtype).reshape(channel_shape)
    return y.astype(x.dtype)


def batch_norm(
    x: mx.array,
    running_mean: Optional[mx.array],
    running_var: Optional[mx.array],
    weight: Optional[mx.array],
    bias: Optional[mx.array],
    training: bool,
    momentum,
    eps: float,
):
    """Batch norm over axis 1; returns ``(y, new_running_mean, new_running_var)``.

    ``momentum`` may be a float or a scalar array (the modules' cumulative
    average passes ``1 / num_batches_tracked`` without a host round trip).
    The new statistics are ``None`` when none were given or not training.
    Training needs more than one value per channel and eval the running
    statistics (checked by the caller).
    """
    c = x.shape[1]
    channel_shape = (1, c) + (1,) * (x.ndim - 2)
    axes = (0,) + tuple(range(2, x.ndim))
    if training:
        if x.size == 0:  # PyTorch: an empty output, the running statistics untouched
            return mx.zeros_like(x), None, None
        count = x.size // c
        mean, var = _stats(x, axes)
        y = _normalise(x, mean, var, weight, bias, eps, channel_shape)
        if running_mean is None:
            return y, None, None
        # Statistics carry no gradient (PyTorch's buffers are not part of the graph).
        m = mx.stop_gradient(mean.reshape(c))
        v = mx.stop_gradient(var.reshape(c)) * (count / (count - 1))
        new_mean = (1 - momentum) * running_mean + momentum * m
        new_var = (1 - momentum) * running_var + momentum * v
        return y, new_mean.astype(running_mean.dtype), new_var.astype(running_var.dtype)
    mean = running_mean.astype(mx.float32).reshape(channel_shape)
    var = running_var.astype(mx.float32).reshape(channel_shape)
    return _normalise(x, mean, var, weight, bias, eps, channel_shape), None, None


def instance_norm(x, running_mean, running_var, weight, bias, use_input_stats, momentum, eps):
    """Instance norm of (N, C, ...); returns ``(y, new_running_mean, new_running_var)``."""
    n, c = x.shape[:2]
    channel_shape = (1, c) + (1,) * (x.ndim - 2)
    if not use_input_stats:
        mean = running_mean.astype(mx.float32).reshape(channel_shape)
        var = running_var.astype(mx.float32).reshape(channel_shape)
        return _normalise(x, mean, var, weight, bias, eps, channel_shape), None, None
    if x.size == 0:
        # An empty output.  The running statistics stay as they are, as batch_norm
        # leaves them; PyTorch 2.13 makes them NaN for an empty batch (a mean over
        # no instances) and leaves them for empty spatial axes.
        return mx.zeros_like(x), None, None
    axes = tuple(range(2, x.ndim))
    count = x.size // (n * c)
    mean, var = _stats(x, axes)
    y = _normalise(x, mean, var, weight, bias, eps, channel_shape)
    if running_mean is None:
        return y, None, None
    # PyTorch averages the per-instance statistics over the batch.
    m = mx.stop_gradient(mean.reshape(n, c).mean(axis=0))
    v = mx.stop_gradient(var.reshape(n, c).mean(axis=0)) * (count / (count - 1))
    new_mean = ((1 - momentum) * running_mean + momentum * m).astype(running_mean.dtype)
    new_var = ((1 - momentum) * running_var + momentum * v).astype(running_var.dtype)
    return y, new_mean, new_var


def group_norm(x: mx.array, num_groups: int, weight: Optional[mx.array],
               bias: Optional[mx.array], eps: float) -> mx.array:
    """Group norm of (N, C, \\*) with ``num_groups`` dividing C."""
    n, c = x.shape[:2]
    if x.size == 0:  # an empty batch: nothing to normalise (reshape(-1) would be ambiguous)
        return x
    grouped = x.reshape(n, num_groups, -1)
    mean, var = _stats(grouped, (2,))
    y = ((grouped.astype(mean.dtype) - mean) * mx.rsqrt(var + eps)).reshape(x.shape)
    channel_shape = (1, c) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * weight.astype(y.dtype).reshape(channel_shape)
    if bias is not None:
        y = y + bias.astype(y.dtype).reshape(channel_shape)
    return y.astype(x.dtype)
