"""Normalisation: ``batch_norm``, ``instance_norm`` and ``group_norm`` (modules in
:mod:`lucid_mlx.nn.normalization`).

PyTorch updates the running statistics in place; MLX arrays are values, so
:func:`batch_norm` and :func:`instance_norm` write the new statistics into
the given arrays with ``a[...] = new`` (MLX's in-place update of the Python
object).  The modules pass their own ``running_mean``/``running_var``, so
the update lands in the module's state, which ``mx.compile`` tracks when
given ``inputs=model.state, outputs=model.state``.
"""

from __future__ import annotations

import math
from typing import Optional

import mlx.core as mx

from ... import _args
from ...ops import norm as _norm


def _norm_input(input) -> mx.array:
    return _args.check_array(input, "input", (2, 3, 4, 5, 6), "(N, C, ...)")


def _check_vectors(x: mx.array, **vectors) -> None:
    c = x.shape[1]
    for name, value in vectors.items():
        _args.check_vector(value, name, c, f"for an input with {c} channels")


def _with_running_stats(op, name: str, flag: str, check_batch, input, running_mean, running_var,
                        weight, bias, use_batch: bool, momentum, eps) -> mx.array:
    """What batch_norm and instance_norm share: validate, normalise, update in place.

    ``use_batch`` (the argument named ``flag``) says whether the batch's
    statistics normalise and update the running ones; ``check_batch(x, eps)``
    adds the op's own limits for that case.
    """
    x = _norm_input(input)
    _check_vectors(x, running_mean=running_mean, running_var=running_var, weight=weight,
                   bias=bias)
    eps = _args.check_eps(eps)
    momentum = _args.check_momentum(momentum)
    use_batch = _args.check_bool(use_batch, flag)
    if use_batch:
        if running_mean is not None and momentum is None:
            raise TypeError(f"{name}: `momentum` must be a number to update the running "
                            f"statistics, got None")
        check_batch(x, eps)
    elif running_mean is None or running_var is None:
        raise ValueError(f"{name}: `running_mean` and `running_var` are required when "
                         f"{flag}=False")
    y, new_mean, new_var = op(x, running_mean, running_var, weight, bias, use_batch, momentum, eps)
    for running, new in ((running_mean, new_mean), (running_var, new_var)):
        if running is not None and new is not None:
            running[...] = new
    return y


def _check_batch_norm_batch(x: mx.array, eps: float) -> None:
    if eps <= 0:  # PyTorch: 1 / sqrt(var + 0) of a constant channel is inf
        raise ValueError(f"batch_norm: `eps` must be positive when training, got {eps}")
    # PyTorch's _verify_batch_size: an empty batch is fine, a single value is not.
    if x.shape[0] * math.prod(x.shape[2:]) == 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                         f"got input of shape {tuple(x.shape)}")


def _check_instance_norm_batch(x: mx.array, eps: float) -> None:
    # PyTorch's _verify_spatial_size: one element per instance is an error
    # even in an empty batch; no elements at all is an empty output.
    if math.prod(x.shape[2:]) == 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element per channel, "
                         f"got input of shape {tuple(x.shape)}")


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
    place. ``momentum`` may also be a scalar float array (what
    :class:`lucid_mlx.nn.BatchNorm3d` passes for ``momentum=None``).  See
    :class:`lucid_mlx.nn.BatchNorm3d` for the details.
    """
    return _with_running_stats(_norm.batch_norm, "batch_norm", "training", _check_batch_norm_batch,
                               input, running_mean, running_var, weight, bias, training, momentum,
                               eps)


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
    return _with_running_stats(_norm.instance_norm, "instance_norm", "use_input_stats",
                               _check_instance_norm_batch, input, running_mean, running_var,
                               weight, bias, use_input_stats, momentum, eps)


def group_norm(
    input: mx.array,
    num_groups: int,
    weight: Optional[mx.array] = None,
    bias: Optional[mx.array] = None,
    eps: float = 1e-5,
) -> mx.array:
    """Group normalisation of (N, C, \\*), as ``torch.nn.functional.group_norm``.

    See :class:`lucid_mlx.nn.GroupNorm`.
    """
    x = _norm_input(input)
    num_groups = _args.check_int(num_groups, "num_groups", minimum=1)
    c = x.shape[1]
    if c % num_groups:
        raise ValueError(f"group_norm: the input's {c} channels are not divisible by "
                         f"`num_groups` (={num_groups}), input shape {tuple(x.shape)}")
    _check_vectors(x, weight=weight, bias=bias)
    eps = _args.check_eps(eps)
    return _norm.group_norm(x, num_groups, weight, bias, eps)
