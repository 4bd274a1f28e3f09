"""MONAI's ``MLPBlock``: the transformer's two-layer feed-forward network."""

from __future__ import annotations

from typing import Union

import mlx.core as mx
import mlx.nn as mnn

from ... import _args
from ..layers import get_act_layer, split_args
from ._vit_args import dropout_layer

_MODES = ("vit", "swin", "vista3d")


class MLPBlock(mnn.Module):
    r"""``linear2(drop(act(linear1(x))))`` followed by dropout, as ``monai.networks.blocks.MLPBlock``.

    Args:
        hidden_size (int): Input and output features.
        mlp_dim (int): Hidden features; ``0`` means ``hidden_size``.
        dropout_rate (float): Dropout probability. Default: ``0.0``.
        act: Activation name or ``(name, {kwargs})``; ``"GEGLU"`` doubles
            ``linear1``'s outputs and gates half of them. Default: ``"GELU"``.
        dropout_mode (str): ``"vit"`` (dropout after both layers), ``"swin"``
            (the same dropout layer used twice) or ``"vista3d"`` (none).
            Default: ``"vit"``.

    Shape:
        - Input: (..., hidden_size); output: same shape.

    Example:
        >>> mlp = MLPBlock(32, 64)
        >>> mlp(mx.zeros((2, 8, 32))).shape
        (2, 8, 32)
    """

    def __init__(self, hidden_size: int, mlp_dim: int, dropout_rate: float = 0.0,
                 act: Union[tuple, str] = "GELU", dropout_mode: str = "vit"):
        super().__init__()
        hidden_size = _args.check_int(hidden_size, "hidden_size", minimum=1)
        mlp_dim = _args.check_int(mlp_dim, "mlp_dim", minimum=0) or hidden_size
        if dropout_mode not in _MODES:
            raise ValueError(f"`dropout_mode` must be one of {_MODES}, got {dropout_mode!r}")
        act_name = split_args(act)[0]
        gated = isinstance(act_name, str) and act_name.upper() == "GEGLU"
        self.linear1 = mnn.Linear(hidden_size, mlp_dim * 2 if gated else mlp_dim)
        self.linear2 = mnn.Linear(mlp_dim, hidden_size)
        self.fn = get_act_layer(act)
        if dropout_mode == "vista3d":
            self.drop1, self.drop2 = mnn.Identity(), mnn.Identity()
        else:
            # "swin" shares one parameterless layer; two identical ones behave the same.
            self.drop1 = dropout_layer(dropout_rate)
            self.drop2 = dropout_layer(dropout_rate)

    def __call__(self, x: mx.array) -> mx.array:
        return self.drop2(self.linear2(self.drop1(self.fn(self.linear1(x)))))
