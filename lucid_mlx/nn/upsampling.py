"""The ``Upsample`` module: :func:`lucid_mlx.nn.functional.interpolate` as a layer."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import mlx.core as mx
import mlx.nn as nn

from .. import _args
from . import functional as F


class Upsample(nn.Module):
    r"""Resizes (N, C, D, H, W) input (or 3-D/4-D), as ``torch.nn.Upsample``.

    Give either ``size`` or ``scale_factor``. The output size is ``size``, or
    ``floor(in * scale_factor)`` per dimension.

    Modes, with PyTorch's source-index rules (computed in float32 as PyTorch
    does, so the same pixels are picked):

    - ``'nearest'``: output ``i`` copies input ``min(floor(i * s), in - 1)``
      where ``s = 1 / scale_factor`` when a scale factor is given (and
      ``recompute_scale_factor`` is not true), else ``in / out``. This is
      PyTorch's (legacy) nearest, not OpenCV's centred one.
    - ``'nearest-exact'``: ``min(floor((i + 0.5) * s), in - 1)``.
    - ``'linear'``, ``'bilinear'``, ``'trilinear'`` (for 3-, 4-, 5-D input):
      linear blend of the two neighbours of ``src = s * (i + 0.5) - 0.5``
      (clamped at 0), or with ``align_corners=True`` of
      ``src = i * (in - 1) / (out - 1)``, which keeps the corner pixels.
    - ``'area'`` (5-D): adaptive average pooling to the output size.

    Args:
        size (int or tuple, optional): Output spatial size.
        scale_factor (float or tuple, optional): Multiplier for the spatial size.
        mode (str): One of the modes above. Default: ``'nearest'``.
        align_corners (bool, optional): For the linear modes only. Default:
            ``None`` (meaning ``False``).
        recompute_scale_factor (bool, optional): Derive the index scale from
            the output size instead of ``scale_factor``. Default: ``None``.

    Shape:
        - Input: (N, C, D_in, H_in, W_in)
        - Output: (N, C, D_out, H_out, W_out) with
          :math:`D_{out} = \lfloor D_{in} \times \text{scale\_factor} \rfloor`
          or ``size``, likewise for H and W.

    Example:
        >>> up = Upsample(scale_factor=2, mode="trilinear", align_corners=False)
        >>> up(mx.zeros((1, 8, 4, 5, 6))).shape
        (1, 8, 8, 10, 12)
    """

    def __init__(
        self,
        size: Union[int, Sequence[int], None] = None,
        scale_factor: Union[float, Sequence[float], None] = None,
        mode: str = "nearest",
        align_corners: Optional[bool] = None,
        recompute_scale_factor: Optional[bool] = None,
    ):
        super().__init__()
        self.mode = _args.interpolate_mode(mode)
        _args.size_or_scale(size, scale_factor)
        self.size = size
        # As PyTorch: scale factors are stored (and shown) as floats.
        self.scale_factor = None if scale_factor is None else _args.scale_factor(scale_factor)
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def _extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"

    def __call__(self, x: mx.array) -> mx.array:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)

