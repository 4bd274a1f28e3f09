"""``ADN``: activation, dropout and normalisation in a chosen order, as MONAI's."""

from __future__ import annotations

from typing import Optional, Union

from ... import nn as lnn
from ..layers.factories import get_act_layer, get_dropout_layer, get_norm_layer


class ADN(lnn.Sequential):
    r"""Optional activation (``A``), dropout (``D``) and normalisation (``N``)
    layers applied in the order of ``ordering``, as ``monai.networks.blocks.ADN``.

    The children are named ``A``, ``D`` and ``N`` and appear in ``ordering``'s
    order, so state_dict keys are MONAI's (``N.weight``, ``A.weight``, ...).
    A layer whose argument is ``None`` is left out.

    Args:
        ordering (str): Letters from ``"A"``, ``"D"``, ``"N"`` (any case). Default: ``"NDA"``.
        in_channels (int, optional): Channels C, for the norm (and nothing else). Default: ``None``.
        act: Activation name or ``(name, {kwargs})``; see
            :func:`~lucid_mlx.models.layers.get_act_layer`. Default: ``"RELU"``.
        norm: Normalisation name or ``(name, {kwargs})``. Default: ``None``.
        norm_dim (int, optional): Spatial dimensions of the norm (3). Default: ``None``
            (``dropout_dim``).
        dropout: Dropout probability or ``(name, {kwargs})``. Default: ``None``.
        dropout_dim (int, optional): 1 drops elements, 2 or 3 whole channels.
            Default: ``None`` (``norm_dim``).

    Example:
        >>> ADN("NA", in_channels=8, act="prelu", norm="batch", norm_dim=3)
        ADN(
          (N): BatchNorm3d(8, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
          (A): PReLU(num_parameters=1)
        )
    """

    def __init__(
        self,
        ordering: str = "NDA",
        in_channels: Optional[int] = None,
        act: Union[tuple, str, None] = "RELU",
        norm: Union[tuple, str, None] = None,
        norm_dim: Optional[int] = None,
        dropout: Union[tuple, str, float, None] = None,
        dropout_dim: Optional[int] = None,
    ):
        super().__init__()
        if not isinstance(ordering, str):
            raise TypeError(f"`ordering` must be a str of 'A', 'D' and 'N', got {ordering!r}")
        bad = [c for c in ordering.upper() if c not in "ADN"]
        if bad:
            raise ValueError(f"`ordering` must contain only 'A', 'D' and 'N', got {ordering!r}")
        layers = {}
        if norm is not None:
            if norm_dim is None and dropout_dim is None:
                raise ValueError("`norm_dim` or `dropout_dim` must be given with a `norm`")
            layers["N"] = get_norm_layer(norm, spatial_dims=norm_dim or dropout_dim, channels=in_channels)
        if act is not None:
            layers["A"] = get_act_layer(act)
        if dropout is not None:
            if norm_dim is None and dropout_dim is None:
                raise ValueError("`norm_dim` or `dropout_dim` must be given with a `dropout`")
            layers["D"] = get_dropout_layer(dropout, dropout_dim=dropout_dim or norm_dim)
        for letter in ordering.upper():
            # As MONAI: a repeated letter re-adds the same child, which keeps its first place.
            if letter in layers:
                self.add_module(letter, layers[letter])
