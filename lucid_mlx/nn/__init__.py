"""NCDHW neural-network layers with PyTorch's semantics, as ``mlx.nn.Module``s."""

from . import functional
from .conv import Conv3d

__all__ = ["functional", "Conv3d"]
