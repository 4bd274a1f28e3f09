"""Argument checks shared by the transformer blocks (``dropout_rate`` and ``hidden_size``/``num_heads``)."""

from __future__ import annotations

import mlx.nn as mnn

from ... import _args


def check_rate(rate, name: str = "dropout_rate") -> float:
    """A dropout probability in [0, 1).

    MONAI accepts 1.0 as well (every activation dropped while training);
    MLX's dropout cannot scale by 1 / (1 - p) there, and such a network
    cannot learn, so it is refused.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise TypeError(f"`{name}` must be a float, got {rate!r} ({type(rate).__name__})")
    if not 0 <= rate < 1:
        raise ValueError(f"`{name}` must be in [0, 1), got {rate}")
    return float(rate)


def dropout_layer(rate: float, name: str = "dropout_rate") -> mnn.Module:
    """``mlx.nn.Dropout`` (elementwise, as ``torch.nn.Dropout``), or the identity for 0."""
    rate = check_rate(rate, name)
    return mnn.Dropout(rate) if rate else mnn.Identity()


def check_heads(hidden_size, num_heads) -> tuple[int, int]:
    hidden_size = _args.check_int(hidden_size, "hidden_size", minimum=1)
    num_heads = _args.check_int(num_heads, "num_heads", minimum=1)
    if hidden_size % num_heads:
        raise ValueError(f"`hidden_size` (={hidden_size}) must be divisible by `num_heads` (={num_heads})")
    return hidden_size, num_heads
