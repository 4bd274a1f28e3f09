"""MONAI's own activations (``monai.networks.blocks.activation``) on MLX arrays.

All are elementwise except :class:`GEGLU`, which halves the last axis as
MONAI's does.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn


class Swish(nn.Module):
    r""":math:`x \cdot \sigma(\alpha x)`, as ``monai.networks.blocks.Swish``.

    Args:
        alpha (float): The scale inside the sigmoid. Default: ``1.0``.
    """

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f"`alpha` must be a float, got {alpha!r}")
        self.alpha = float(alpha)

    def __call__(self, x: mx.array) -> mx.array:
        return x * mx.sigmoid(self.alpha * x)


class MemoryEfficientSwish(Swish):
    r""":math:`x \cdot \sigma(x)` (SiLU), as ``monai.networks.blocks.MemoryEfficientSwish``.

    MONAI's saves memory with a hand-written backward; MLX's autodiff of the
    same expression needs nothing more.

    Args:
        inplace (bool): Accepted for MONAI compatibility; ignored. Default: ``False``.
    """

    def __init__(self, inplace: bool = False):
        super().__init__(alpha=1.0)
        self.inplace = inplace


class Mish(nn.Module):
    r""":math:`x \tanh(\mathrm{softplus}(x))`, as ``monai.networks.blocks.Mish``.

    Args:
        inplace (bool): Accepted for MONAI compatibility; ignored. Default: ``False``.
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def __call__(self, x: mx.array) -> mx.array:
        return x * mx.tanh(mx.logaddexp(x, 0.0))


class GEGLU(nn.Module):
    r"""Gated GELU: splits the last axis into halves ``a, b`` and returns
    ``a * gelu(b)`` (exact erf GELU), as ``monai.networks.blocks.GEGLU``.

    Shape:
        - Input: (\*, 2F)
        - Output: (\*, F)
    """

    def __call__(self, x: mx.array) -> mx.array:
        if x.ndim == 0 or x.shape[-1] % 2:
            raise ValueError(f"GEGLU: the last axis of `input` must have an even size, got shape "
                             f"{tuple(x.shape)}")
        a, b = mx.split(x, 2, axis=-1)
        return a * nn.gelu(b)
