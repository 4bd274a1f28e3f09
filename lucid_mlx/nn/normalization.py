"""NCDHW normalisation modules: ``BatchNorm3d``, ``InstanceNorm3d``, ``GroupNorm``.

Parameters and buffers carry PyTorch's names (``weight``, ``bias``,
``running_mean``, ``running_var``, ``num_batches_tracked``) so a PyTorch
state_dict maps onto them by name.  MLX has no separate notion of buffers:
like ``mlx.nn.BatchNorm``, the running statistics are module arrays kept
frozen, so ``parameters()``/``save_weights`` include them and optimisers
(which read ``trainable_parameters()``) leave them alone.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from typing import Optional

import mlx.core as mx
import mlx.nn as nn

from .. import _args
from . import functional as F

_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


class _NormBase(nn.Module):
    """Arguments, parameters and buffers shared by batch and instance norm."""

    def __init__(self, num_features, eps, momentum, affine, track_running_stats, device, dtype,
                 bias):
        super().__init__()
        self.num_features = _args.check_int(num_features, "num_features", minimum=1)
        _args.check_eps(eps)
        _args.check_momentum(momentum)
        self.eps = eps
        self.momentum = momentum
        self.affine = _args.check_bool(affine, "affine")
        self.track_running_stats = _args.check_bool(track_running_stats, "track_running_stats")
        self._device = _args.device(device)
        self._dtype = _args.float_dtype(dtype)
        # PyTorch >= 2.6's keyword-only `bias`: an affine scale without shift.
        self._has_bias = self.affine and _args.check_bool(bias, "bias")
        self.reset_parameters()
        if self.track_running_stats:
            self.freeze(keys=list(_BUFFERS), recurse=False)

    def reset_running_stats(self) -> None:
        """Running mean to zeros, running variance to ones, batch count to 0."""
        if self.track_running_stats:
            self.running_mean = mx.zeros((self.num_features,), self._dtype)
            self.running_var = mx.ones((self.num_features,), self._dtype)
            self.num_batches_tracked = mx.array(0, mx.int64)

    def reset_parameters(self) -> None:
        """Running statistics to (0, 1), weight to ones and bias to zeros, as PyTorch."""
        self.reset_running_stats()
        if self.affine:
            self.weight = mx.ones((self.num_features,), self._dtype)
        if self._has_bias:
            self.bias = mx.zeros((self.num_features,), self._dtype)

    def unfreeze(self, *args, **kwargs):
        # Keep the buffers out of trainable_parameters() even after a
        # model-wide unfreeze (mlx.nn.BatchNorm does the same).
        super().unfreeze(*args, **kwargs)
        if self.track_running_stats:
            self.freeze(keys=list(_BUFFERS), recurse=False)
        return self

    def _extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={'bias' in self}, "
                f"track_running_stats={self.track_running_stats}")

    def _affine(self):
        return self.get("weight"), self.get("bias")

    def _stream(self):
        return mx.stream(self._device) if self._device is not None else nullcontext()


class BatchNorm3d(_NormBase):
    r"""Batch normalisation over a 5-D input (N, C, D, H, W), as ``torch.nn.BatchNorm3d``.

    .. math::
        y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot \gamma + \beta

    with mean and (biased) variance per channel over (N, D, H, W). In training
    mode (``module.train()``, MLX's default) the batch statistics normalise
    and, with ``track_running_stats``, update the running estimates:
    ``running = (1 - momentum) * running + momentum * batch`` using the
    unbiased batch variance. In eval mode (``module.eval()``) the running
    estimates normalise; without ``track_running_stats`` the batch
    statistics are used in both modes.

    Args:
        num_features (int): Number of channels C.
        eps (float): Added to the variance for stability. Default: ``1e-5``.
        momentum (float or None): Weight of the new batch in the running
            estimates; ``None`` uses the cumulative average
            (``1 / num_batches_tracked``). Default: ``0.1``.
        affine (bool): Learn a per-channel scale ``weight`` and shift
            ``bias``. Default: ``True``.
        track_running_stats (bool): Keep ``running_mean``, ``running_var``
            and ``num_batches_tracked``. Default: ``True``.
        bias (bool, keyword-only): With ``affine``, also learn ``bias``. Default: ``True``.
        device (str or Device, optional): Device for the layer's ops. Default: ``None``.
        dtype (Dtype, optional): Dtype of parameters and buffers. Default: ``mx.float32``.

    Shape:
        - Input: (N, C, D, H, W)
        - Output: (N, C, D, H, W) (same shape as input)

    Attributes:
        weight (array): (C,), initialised to ones (when ``affine``).
        bias (array): (C,), initialised to zeros (when ``affine``).
        running_mean, running_var (array): (C,), zeros and ones; frozen.
        num_batches_tracked (array): int64 scalar; frozen.

    Example:
        >>> bn = BatchNorm3d(16)
        >>> bn(mx.random.normal((2, 16, 4, 8, 8))).shape
        (2, 16, 4, 8, 8)
        >>> bn.eval()  # now normalises with the running statistics
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None,
                 *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias)

    def __call__(self, x: mx.array) -> mx.array:
        _args.check_array(x, "input", 5, "(N, C, D, H, W)")
        if x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm3d: `input` has {x.shape[1]} channels (shape "
                             f"{tuple(x.shape)}) but num_features={self.num_features}")
        weight, bias = self._affine()
        with self._stream():
            # PyTorch's exponential_average_factor: unused unless training with statistics.
            momentum = 0.0 if self.momentum is None else self.momentum
            if self.training and self.track_running_stats:
                self.num_batches_tracked = self.num_batches_tracked + 1
                if self.momentum is None:  # cumulative average
                    momentum = 1.0 / self.num_batches_tracked.astype(mx.float32)
            # Batch statistics in training, and always without running ones;
            # F.batch_norm updates the running ones in place when it uses the batch's.
            tracked = self.track_running_stats
            return F.batch_norm(
                x, self["running_mean"] if tracked else None, self["running_var"] if tracked else None,
                weight, bias, self.training or not tracked, momentum, self.eps,
            )


class InstanceNorm3d(_NormBase):
    r"""Instance normalisation of (N, C, D, H, W), as ``torch.nn.InstanceNorm3d``.

    Each (sample, channel) volume is normalised by its own mean and biased
    variance. With ``track_running_stats`` the batch-averaged instance
    statistics update running estimates (unbiased variance), which eval mode
    then uses; ``momentum=None`` freezes them, as in PyTorch.

    Args:
        num_features (int): Number of channels C.
        eps (float): Added to the variance for stability. Default: ``1e-5``.
        momentum (float or None): Weight of the new batch in the running
            estimates. Default: ``0.1``.
        affine (bool): Learn per-channel ``weight`` and ``bias``. Default: ``False``.
        track_running_stats (bool): Keep running estimates. Default: ``False``.
        bias (bool, keyword-only): With ``affine``, also learn ``bias``. Default: ``True``.
        device (str or Device, optional): Device for the layer's ops. Default: ``None``.
        dtype (Dtype, optional): Dtype of parameters and buffers. Default: ``mx.float32``.

    Shape:
        - Input: (N, C, D, H, W) or (C, D, H, W)
        - Output: same shape as input

    Example:
        >>> InstanceNorm3d(8, affine=True)(mx.random.normal((2, 8, 4, 4, 4))).shape
        (2, 8, 4, 4, 4)
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None, dtype=None,
                 *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias)

    def __call__(self, x: mx.array) -> mx.array:
        _args.check_array(x, "input", (4, 5), "(N, C, D, H, W) or (C, D, H, W)")
        unbatched = x.ndim == 4
        if unbatched:
            x = x[None]
        if x.shape[1] != self.num_features:
            message = (f"InstanceNorm3d: `input` has {x.shape[1]} channels (shape "
                       f"{tuple(x.shape)}) but num_features={self.num_features}")
            if self.affine or self.track_running_stats:
                raise ValueError(message)
            # PyTorch only warns here: num_features is unused without affine.
            warnings.warn(message, stacklevel=2)
        weight, bias = self._affine()
        use_input_stats = self.training or not self.track_running_stats
        tracked = self.track_running_stats
        # PyTorch passes momentum=None as 0.0 to instance_norm: no update.
        momentum = self.momentum if self.momentum is not None else 0.0
        with self._stream():
            y = F.instance_norm(
                x, self["running_mean"] if tracked else None,
                self["running_var"] if tracked else None,
                weight, bias, use_input_stats, momentum, self.eps,
            )
        return y[0] if unbatched else y


class GroupNorm(nn.Module):
    r"""Group normalisation of (N, C, \*), as ``torch.nn.GroupNorm``.

    The C channels are split into ``num_groups`` groups; each (sample, group)
    is normalised by its mean and biased variance over its channels and all
    spatial positions. Works on NCDHW and any other (N, C, \*) layout.

    Args:
        num_groups (int): Number of groups; must divide ``num_channels``.
        num_channels (int): Number of channels C.
        eps (float): Added to the variance for stability. Default: ``1e-5``.
        affine (bool): Learn per-channel ``weight`` (ones) and ``bias``
            (zeros). Default: ``True``.
        bias (bool, keyword-only): With ``affine``, also learn ``bias``. Default: ``True``.
        device (str or Device, optional): Device for the layer's ops. Default: ``None``.
        dtype (Dtype, optional): Dtype of the parameters. Default: ``mx.float32``.

    Shape:
        - Input: (N, C, \*)
        - Output: same shape as input

    Example:
        >>> GroupNorm(4, 16)(mx.random.normal((2, 16, 4, 8, 8))).shape
        (2, 16, 4, 8, 8)
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        self.num_groups = _args.check_int(num_groups, "num_groups", minimum=1)
        self.num_channels = _args.check_int(num_channels, "num_channels", minimum=1)
        if num_channels % num_groups:
            raise ValueError(f"`num_channels` (={num_channels}) must be divisible by "
                             f"`num_groups` (={num_groups})")
        _args.check_eps(eps)
        self.eps = eps
        self.affine = _args.check_bool(affine, "affine")
        self._has_bias = self.affine and _args.check_bool(bias, "bias")
        self._device = _args.device(device)
        self._dtype = _args.float_dtype(dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Weight to ones and bias to zeros, as PyTorch."""
        if self.affine:
            self.weight = mx.ones((self.num_channels,), self._dtype)
        if self._has_bias:
            self.bias = mx.zeros((self.num_channels,), self._dtype)

    def _extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={'bias' in self}")

    def __call__(self, x: mx.array) -> mx.array:
        _args.check_array(x, "input", (2, 3, 4, 5, 6), "(N, C, ...)")
        if x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: `input` has {x.shape[1]} channels (shape "
                             f"{tuple(x.shape)}) but num_channels={self.num_channels}")
        weight, bias = self.get("weight"), self.get("bias")
        with mx.stream(self._device) if self._device is not None else nullcontext():
            return F.group_norm(x, self.num_groups, weight, bias, self.eps)
