"""Metal kernels for what MLX lacks: grouped conv3d and 3-D padding modes.

The ``.metal`` sources live in the top-level ``metal/`` directory (installed
as ``lucid_mlx.metal``).  Nothing here decides whether a kernel should run:
:mod:`lucid_mlx.ops.dispatch` does, and falls back to the portable path.
"""

from .conv import add_channel_bias, grouped_conv3d
from .pad import pad3d

__all__ = ["add_channel_bias", "grouped_conv3d", "pad3d"]
