"""lucid_mlx: PyTorch's Conv3d and an NCDHW 3-D toolkit on Apple's MLX."""

from . import nn

__version__ = "0.1.0"

__all__ = ["nn", "__version__"]
