"""Batch, instance and group normalisation on channels-first arrays, in MLX ops.

The statistics of float16/bfloat16 inputs are taken in float32 (PyTorch's CPU
kernels accumulate in float too): a float16 sum of 32^3 squares overflows.
The variance used to normalise is the biased one; running variances are
updated with the unbiased one, as PyTorch.

The functional ops keep PyTorch's signatures.  PyTorch updates the running
statistics in place; MLX arrays are values, so :func:`batch_norm` and
:func:`instance_norm` write the new statistics into the given arrays with
``a[...] = new`` (MLX's in-place update of the Python object).  The modules
instead use :func:`batch_norm_stats`, which returns the new statistics, and
assign them as module state, which ``mx.compile`` can track.
"""

from __future__ import annotations

from typing import Optional

import mlx.core as mx

from .. import _args


def _check_optional(value, name: str, channels: int) -> None:
    if value is None:
        return
    if not isinstance(value, mx.array):
        raise TypeError(f"`{name}` must be an mlx.core.array or None, got {type(value).__name__}")
    if tuple(value.shape) != (channels,):
        raise ValueError(f"`{name}` must have shape ({channels},) for an input with "
                         f"{channels} channels, got shape {tuple(value.shape)}")


def _check_eps_momentum(eps, momentum) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
        raise ValueError(f"`eps` must be a non-negative number, got {eps!r}")
    if momentum is not None and (isinstance(momentum, bool)
                                 or not isinstance(momentum, (int, float))):
        raise TypeError(f"`momentum` must be a number or None, got {momentum!r}")


def _stats(x: mx.array, axes: tuple[int, ...]) -> tuple[mx.array, mx.array]:
    """Mean and biased variance over ``axes`` (kept), in at least float32."""
    x32 = x.astype(mx.float32) if x.dtype != mx.float32 else x
    mean = x32.mean(axis=axes, keepdims=True)
    var = mx.square(x32 - mean).mean(axis=axes, keepdims=True)
    return mean, var


def _normalise(x, mean, var, weight, bias, eps, channel_shape):
    y = (x.astype(mean.dtype) - mean) * mx.rsqrt(var + eps)
    if weight is not None:
        y = y * weight.astype(y.dtype).reshape(channel_shape)
    if bias is not None:
        y = y + bias.astype(y.dtype).reshape(channel_shape)
    return y.astype(x.dtype)


def batch_norm_stats(
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
    """
    c = x.shape[1]
    channel_shape = (1, c) + (1,) * (x.ndim - 2)
    axes = (0,) + tuple(range(2, x.ndim))
    if training:
        count = x.size // c if c else 0
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {tuple(x.shape)}")
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
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: `running_mean` and `running_var` are required when "
                         "training=False")
    mean = running_mean.astype(mx.float32).reshape(channel_shape)
    var = running_var.astype(mx.float32).reshape(channel_shape)
    return _normalise(x, mean, var, weight, bias, eps, channel_shape), None, None


def _check_norm_input(input, name="input") -> mx.array:
    x = _args.check_array(input, name, (2, 3, 4, 5, 6), "(N, C, ...)")
    return x


def _norm_in_place(stats, input, running_mean, running_var, weight, bias, use_input_stats,
                   momentum, eps) -> mx.array:
    """Validate, normalise with ``stats`` and write new running statistics in place."""
    x = _check_norm_input(input)
    c = x.shape[1]
    for value, name in ((running_mean, "running_mean"), (running_var, "running_var"),
                        (weight, "weight"), (bias, "bias")):
        _check_optional(value, name, c)
    _check_eps_momentum(eps, momentum)
    y, new_mean, new_var = stats(x, running_mean, running_var, weight, bias,
                                 bool(use_input_stats), momentum, eps)
    if new_mean is not None:
        running_mean[...] = new_mean
    if new_var is not None and running_var is not None:
        running_var[...] = new_var
    return y


def batch_norm(
    input: mx.array,
    running_mean: Optional[mx.array],
    running_var: Optional[mx.array],
    weight: Optional[mx.array] = None,
    bias: Optional[mx.array] = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> mx.array:
    """Batch normalisation, as ``torch.nn.functional.batch_norm``.

    In training mode with running statistics given, they are updated in
    place. See :class:`lucid_mlx.nn.BatchNorm3d` for the details.
    """
    return _norm_in_place(batch_norm_stats, input, running_mean, running_var, weight, bias,
                          training, momentum, eps)


def instance_norm_stats(x, running_mean, running_var, weight, bias, use_input_stats,
                        momentum, eps):
    """Instance norm of (N, C, ...); returns ``(y, new_running_mean, new_running_var)``."""
    n, c = x.shape[:2]
    channel_shape = (1, c) + (1,) * (x.ndim - 2)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: `running_mean` and `running_var` are required when "
                             "use_input_stats=False")
        mean = running_mean.astype(mx.float32).reshape(channel_shape)
        var = running_var.astype(mx.float32).reshape(channel_shape)
        return _normalise(x, mean, var, weight, bias, eps, channel_shape), None, None
    axes = tuple(range(2, x.ndim))
    count = x.size // (n * c) if n * c else 0
    if count <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element per channel, "
                         f"got input of shape {tuple(x.shape)}")
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


def instance_norm(
    input: mx.array,
    running_mean: Optional[mx.array] = None,
    running_var: Optional[mx.array] = None,
    weight: Optional[mx.array] = None,
    bias: Optional[mx.array] = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> mx.array:
    """Instance normalisation, as ``torch.nn.functional.instance_norm``.

    See :class:`lucid_mlx.nn.InstanceNorm3d`.  Running statistics, when
    given and ``use_input_stats`` is true, are updated in place.
    """
    return _norm_in_place(instance_norm_stats, input, running_mean, running_var, weight, bias,
                          use_input_stats, momentum, eps)


def group_norm(
    input: mx.array,
    num_groups: int,
    weight: Optional[mx.array] = None,
    bias: Optional[mx.array] = None,
    eps: float = 1e-5,
) -> mx.array:
    """Group normalisation of (N, C, *), as ``torch.nn.functional.group_norm``.

    See :class:`lucid_mlx.nn.GroupNorm`.
    """
    x = _check_norm_input(input)
    num_groups = _args.check_int(num_groups, "num_groups", minimum=1)
    n, c = x.shape[:2]
    if c % num_groups:
        raise ValueError(f"group_norm: the input's {c} channels are not divisible by "
                         f"`num_groups` (={num_groups}), input shape {tuple(x.shape)}")
    _check_optional(weight, "weight", c)
    _check_optional(bias, "bias", c)
    _check_eps_momentum(eps, None)
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
