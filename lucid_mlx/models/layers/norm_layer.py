"""The ``norm_layer`` argument of MONAI's transformer blocks, on MLX.

MONAI takes a class called with a channel count, ``torch.nn.LayerNorm`` by
default. Here it is any callable returning an ``mlx.nn.Module``;
``mlx.nn.LayerNorm`` is the default. A port that still passes
``torch.nn.LayerNorm`` gets ``mlx.nn.LayerNorm``, which has the same
arithmetic (eps 1e-5, affine ``weight`` and ``bias``) and parameter names.
"""

from __future__ import annotations

from typing import Callable

import mlx.nn as nn

__all__ = ["resolve_norm_layer"]


def resolve_norm_layer(norm_layer) -> Callable[[int], nn.Module]:
    """A builder ``channels -> mlx.nn.Module`` for ``norm_layer``; raises TypeError for anything else."""
    if getattr(norm_layer, "__module__", "").startswith("torch.") and getattr(norm_layer, "__name__", "") == "LayerNorm":
        return nn.LayerNorm
    if isinstance(norm_layer, nn.Module) or not callable(norm_layer):
        raise TypeError(f"`norm_layer` must be a class or function building an mlx.nn.Module from a channel "
                        f"count (default mlx.nn.LayerNorm), got {norm_layer!r}")

    def build(channels: int) -> nn.Module:
        layer = norm_layer(channels)
        if not isinstance(layer, nn.Module):
            raise TypeError(f"`norm_layer` built a {type(layer).__module__}.{type(layer).__name__}, "
                            "expected an mlx.nn.Module (for example mlx.nn.LayerNorm)")
        return layer

    return build
