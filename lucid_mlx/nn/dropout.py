"""The ``Dropout3d`` module (channel dropout for NCDHW input)."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from .. import _args
from . import functional as F


class Dropout3d(nn.Module):
    r"""Randomly zeroes whole channels of (N, C, D, H, W) input, as ``torch.nn.Dropout3d``.

    In training mode (``module.train()``, MLX's default) each (sample,
    channel) volume is zeroed with probability ``p`` and the others are
    scaled by :math:`1 / (1 - p)`; in eval mode (``module.eval()``) the layer
    is the identity. Neighbouring voxels of a feature map are strongly
    correlated, so dropping single voxels (``mlx.nn.Dropout``) regularises
    little; dropping channels does (Tompson et al., 2015).

    The mask comes from MLX's global random state (``mx.random.seed``), so it
    differs from PyTorch's for the same seed; the distribution is the same.

    Args:
        p (float): Probability of zeroing a channel. Default: ``0.5``.
        inplace (bool): Accepted for PyTorch compatibility and ignored
            (MLX arrays are values). Default: ``False``.

    Shape:
        - Input: (N, C, D, H, W) or (C, D, H, W)
        - Output: same shape as input

    Example:
        >>> drop = Dropout3d(p=0.2)
        >>> drop(mx.ones((20, 16, 4, 32, 32))).shape
        (20, 16, 4, 32, 32)
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p = _args.check_p(p)
        self.inplace = _args.check_bool(inplace, "inplace")

    def _extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def __call__(self, x: mx.array) -> mx.array:
        return F.dropout3d(x, self.p, self.training)
