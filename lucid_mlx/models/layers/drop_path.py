"""Stochastic depth (``DropPath``), as MONAI's ``monai.networks.layers.DropPath``."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

__all__ = ["DropPath"]


class DropPath(nn.Module):
    r"""Drops the whole residual branch of a sample with probability ``drop_prob``.

    In training mode each sample of the batch keeps its input with
    probability :math:`1 - p` and is zeroed otherwise (one draw per sample,
    broadcast over every other axis); kept samples are scaled by
    :math:`1 / (1 - p)` when ``scale_by_keep``, so the expectation is
    unchanged. In eval mode, or with ``drop_prob=0``, the layer is the
    identity. Used on the residual branches of transformer blocks (Huang et
    al., 2016, "Deep Networks with Stochastic Depth").

    The draws come from MLX's global random state (``mx.random.seed``), so
    they differ from PyTorch's for the same seed; the distribution is the same.

    Args:
        drop_prob (float): Probability of dropping a sample's branch, in
            [0, 1]. Default: ``0.0``.
        scale_by_keep (bool): Scale kept samples by :math:`1 / (1 - p)`.
            Default: ``True``.

    Shape:
        - Input: (N, \*)
        - Output: same shape as input

    Example:
        >>> DropPath(0.1)(mx.ones((4, 8, 8, 8, 24))).shape
        (4, 8, 8, 8, 24)
    """

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        if isinstance(drop_prob, bool) or not isinstance(drop_prob, (int, float)):
            raise TypeError(f"`drop_prob` must be a number in [0, 1], got {drop_prob!r}")
        if not 0 <= drop_prob <= 1:
            raise ValueError(f"`drop_prob` must be between 0 and 1, got {drop_prob}")
        if not isinstance(scale_by_keep, bool):
            raise TypeError(f"`scale_by_keep` must be a bool, got {scale_by_keep!r}")
        self.drop_prob = float(drop_prob)
        self.scale_by_keep = scale_by_keep

    def _extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}, scale_by_keep={self.scale_by_keep}"

    def __call__(self, x: mx.array) -> mx.array:
        if self.drop_prob == 0 or not self.training:
            return x
        keep_prob = 1 - self.drop_prob
        keep = mx.random.bernoulli(keep_prob, (x.shape[0],) + (1,) * (x.ndim - 1)).astype(x.dtype)
        if keep_prob > 0 and self.scale_by_keep:
            keep = keep / keep_prob
        return x * keep
