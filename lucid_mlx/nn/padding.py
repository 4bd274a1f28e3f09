"""Padding modules for (N, C, D, H, W) input: :func:`lucid_mlx.nn.functional.pad` as layers."""

from __future__ import annotations

from typing import Sequence, Union

import mlx.core as mx
import mlx.nn as nn

from .. import _args
from . import functional as F

_pad_6 = Union[int, Sequence[int]]


class _Pad3d(nn.Module):
    _mode = "constant"

    def __init__(self, padding: _pad_6):
        super().__init__()
        # PyTorch's order, last dimension first: (W_lo, W_hi, H_lo, H_hi, D_lo, D_hi).
        self.padding = _args.ntuple(padding, 6, "padding", minimum=None)

    def _extra_repr(self) -> str:
        return str(self.padding)

    def __call__(self, x: mx.array) -> mx.array:
        return F.pad(x, self.padding, mode=self._mode)


class ConstantPad3d(_Pad3d):
    r"""Pads the last three dimensions with a constant, as ``torch.nn.ConstantPad3d``.

    Args:
        padding (int or tuple): The same amount on all six sides, or
            ``(W_lo, W_hi, H_lo, H_hi, D_lo, D_hi)``; negative amounts crop.
        value (float): The fill value.

    Shape:
        - Input: (N, C, D_in, H_in, W_in) or (C, D_in, H_in, W_in)
        - Output: :math:`D_{out} = D_{in} + D_{lo} + D_{hi}`, likewise H and W.

    Example:
        >>> ConstantPad3d((1, 1, 0, 0, 2, 0), 3.5)(mx.zeros((1, 2, 4, 4, 4))).shape
        (1, 2, 6, 4, 6)
    """

    def __init__(self, padding: _pad_6, value: float):
        super().__init__(padding)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"`value` must be a float, got {value!r}")
        self.value = float(value)

    def _extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"

    def __call__(self, x: mx.array) -> mx.array:
        return F.pad(x, self.padding, mode="constant", value=self.value)


class ZeroPad3d(ConstantPad3d):
    r"""Pads the last three dimensions with zeros, as ``torch.nn.ZeroPad3d``.

    Args:
        padding (int or tuple): As :class:`ConstantPad3d`.
    """

    def __init__(self, padding: _pad_6):
        super().__init__(padding, 0.0)

    def _extra_repr(self) -> str:
        return str(self.padding)


class ReflectionPad3d(_Pad3d):
    r"""Pads by mirroring at the border, without repeating it, as ``torch.nn.ReflectionPad3d``.

    Args:
        padding (int or tuple): As :class:`ConstantPad3d`; each amount must be
            smaller than the dimension it pads.
    """

    _mode = "reflect"


class ReplicationPad3d(_Pad3d):
    r"""Pads by repeating the border values, as ``torch.nn.ReplicationPad3d``.

    Args:
        padding (int or tuple): As :class:`ConstantPad3d`.
    """

    _mode = "replicate"


class CircularPad3d(_Pad3d):
    r"""Pads by wrapping around (periodic boundary), as ``torch.nn.CircularPad3d``.

    Args:
        padding (int or tuple): As :class:`ConstantPad3d`; each amount at most
            the dimension it pads.
    """

    _mode = "circular"
