"""lucid_mlx: PyTorch's Conv3d and an NCDHW 3-D toolkit on Apple's MLX."""

from . import nn
from .torch_io import IncompatibleKeys, load_torch_state_dict, save_torch_state_dict, torch_state_dict

__version__ = "0.1.0"

__all__ = [
    "nn",
    "IncompatibleKeys",
    "load_torch_state_dict",
    "save_torch_state_dict",
    "torch_state_dict",
    "__version__",
]
