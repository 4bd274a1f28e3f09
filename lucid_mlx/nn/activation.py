"""Activations whose PyTorch semantics ``mlx.nn`` does not give on NCDHW input.

``mlx.nn.PReLU`` applies its slopes along the last axis (W of NCDHW: silently
wrong whenever W equals C), ``mlx.nn.Softmax`` has no ``dim``, ``mlx.nn.SELU``
rounds its constants to five digits and ``mlx.nn.LeakyReLU`` computes
``max(slope * x, x)``, which is PyTorch's only for slopes in [0, 1].  The
purely elementwise ones (ReLU, ELU, GELU, Sigmoid, ...) are exact as they are.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional

import mlx.core as mx
import mlx.nn as nn

from .. import _args


def _check_tensor(x, layer: str) -> mx.array:
    if not isinstance(x, mx.array):
        raise TypeError(f"{layer}: `input` must be an mlx.core.array, got {type(x).__name__}")
    return x


def _check_float(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"`{name}` must be a finite float, got {value!r}")
    return float(value)


class PReLU(nn.Module):
    r"""Parametric ReLU with one learnable slope per channel, as ``torch.nn.PReLU``.

    .. math::
        \text{PReLU}(x) = \begin{cases} x & x > 0 \\ a_c\, x & \text{otherwise} \end{cases}

    where :math:`a_c` is the slope of the channel of :math:`x`, axis 1 of
    (N, C, \*) input (0-D and 1-D input count as one channel, as in PyTorch).

    Args:
        num_parameters (int): Number of slopes: ``1`` (shared) or the number
            of channels C. Default: ``1``.
        init (float): Initial value of every slope. Default: ``0.25``.
        device, dtype: Accepted for PyTorch compatibility; ``dtype`` sets the
            weight's dtype (``None`` is float32). Default: ``None``.

    Shape:
        - Input: (N, C, \*), or any shape with ``num_parameters=1``
        - Output: same shape as input

    Attributes:
        weight (array): (num_parameters,), filled with ``init``.

    Example:
        >>> act = PReLU(num_parameters=8)
        >>> act(mx.random.normal((2, 8, 4, 4, 4))).shape
        (2, 8, 4, 4, 4)
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = _args.check_int(num_parameters, "num_parameters", minimum=1)
        self.init = _check_float(init, "init")
        _args.device(device)
        self.weight = mx.full((num_parameters,), self.init, _args.float_dtype(dtype))

    def _extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"

    def __call__(self, x: mx.array) -> mx.array:
        _check_tensor(x, "PReLU")
        w = self.weight
        if self.num_parameters > 1:
            # As PyTorch: the channels are axis 1; 0-D and 1-D input have one channel.
            channels = x.shape[1] if x.ndim >= 2 else 1
            if channels != self.num_parameters:
                raise ValueError(
                    f"PReLU: `input` of shape {tuple(x.shape)} must have {self.num_parameters} "
                    f"channels on axis 1 (num_parameters={self.num_parameters})"
                )
            w = w.reshape((-1,) + (1,) * (x.ndim - 2))
        return mx.where(x > 0, x, w * x)


class LeakyReLU(nn.Module):
    r"""``x`` where ``x > 0``, else ``negative_slope * x``, as ``torch.nn.LeakyReLU`` (any slope).

    Args:
        negative_slope (float): Slope for negative inputs. Default: ``1e-2``.
        inplace (bool): Accepted for PyTorch compatibility; ignored. Default: ``False``.
    """

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False):
        super().__init__()
        self.negative_slope = _check_float(negative_slope, "negative_slope")
        self.inplace = inplace

    def _extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"

    def __call__(self, x: mx.array) -> mx.array:
        _check_tensor(x, "LeakyReLU")
        return mx.where(x > 0, x, self.negative_slope * x)


class SELU(nn.Module):
    r"""Scaled ELU with PyTorch's full-precision constants, as ``torch.nn.SELU``.

    Args:
        inplace (bool): Accepted for PyTorch compatibility; ignored. Default: ``False``.
    """

    _ALPHA = 1.6732632423543772848170429916717
    _SCALE = 1.0507009873554804934193349852946

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def __call__(self, x: mx.array) -> mx.array:
        _check_tensor(x, "SELU")
        return self._SCALE * mx.where(x > 0, x, self._ALPHA * (mx.exp(x) - 1))


def _softmax_dim(dim: Optional[int], x: mx.array, layer: str) -> int:
    if dim is None:
        # PyTorch's legacy implicit choice: the channel axis unless 0-, 1- or 3-D.
        return 0 if x.ndim in (0, 1, 3) else 1
    if not -max(x.ndim, 1) <= dim < max(x.ndim, 1):
        raise ValueError(f"{layer}: `dim` {dim} is out of range for input of shape {tuple(x.shape)}")
    return dim


class Softmax(nn.Module):
    r"""Softmax along ``dim``, as ``torch.nn.Softmax``.

    Args:
        dim (int, optional): Axis to normalise; ``None`` picks PyTorch's legacy
            default (axis 1, the channels, except for 0-, 1- and 3-D input,
            where it is axis 0). Default: ``None``.

    Example:
        >>> probs = Softmax(dim=1)(mx.random.normal((1, 3, 4, 4, 4)))  # over the channels
    """

    def __init__(self, dim: Optional[int] = None):
        super().__init__()
        self.dim = None if dim is None else _args.check_int(dim, "dim")

    def _extra_repr(self) -> str:
        return f"dim={self.dim}"

    def __call__(self, x: mx.array) -> mx.array:
        _check_tensor(x, type(self).__name__)
        return mx.softmax(x, axis=_softmax_dim(self.dim, x, type(self).__name__), precise=True)


class LogSoftmax(Softmax):
    r"""Log of the softmax along ``dim``, as ``torch.nn.LogSoftmax``; ``dim`` as :class:`Softmax`."""

    def __call__(self, x: mx.array) -> mx.array:
        _check_tensor(x, "LogSoftmax")
        axis = _softmax_dim(self.dim, x, "LogSoftmax")
        shifted = x - mx.stop_gradient(mx.max(x, axis=axis, keepdims=True))
        return shifted - mx.logsumexp(shifted, axis=axis, keepdims=True)
