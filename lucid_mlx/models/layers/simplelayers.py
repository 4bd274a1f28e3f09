"""``SkipConnection``: a branch combined with its own input, as MONAI's."""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mnn

from ... import _args

_MODES = ("cat", "add", "mul")


class SkipConnection(mnn.Module):
    r"""Combines the input with ``submodule(input)``, as ``monai.networks.layers.SkipConnection``::

        --+--submodule--o--
          |_____________|

    Args:
        submodule (Module): The branch, kept under the name ``submodule``.
        dim (int): Axis of the concatenation in ``"cat"`` mode. Default: ``1`` (channels).
        mode (str): ``"cat"`` (input first), ``"add"`` or ``"mul"``. Default: ``"cat"``.

    Example:
        >>> skip = SkipConnection(lucid_mlx.nn.Conv3d(2, 3, 1))
        >>> skip(mx.zeros((1, 2, 4, 4, 4))).shape
        (1, 5, 4, 4, 4)
    """

    def __init__(self, submodule: mnn.Module, dim: int = 1, mode: str = "cat"):
        super().__init__()
        if not isinstance(submodule, mnn.Module):
            raise TypeError(f"`submodule` must be an mlx.nn.Module, got {type(submodule).__name__}")
        self.submodule = submodule
        self.dim = _args.check_int(dim, "dim")
        mode = getattr(mode, "value", mode)  # MONAI's SkipMode enum members carry the name
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}, got {mode!r}")
        self.mode = mode

    def __call__(self, x: mx.array) -> mx.array:
        y = self.submodule(x)
        if self.mode == "cat":
            return mx.concatenate([x, y], axis=self.dim)
        return x + y if self.mode == "add" else x * y
