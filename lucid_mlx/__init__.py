"""lucid_mlx: PyTorch's Conv3d and an NCDHW 3-D toolkit on Apple's MLX."""

from . import distributed, models, nn
from .torch_io import (
    IncompatibleKeys,
    KeyReport,
    check_torch_state_dict,
    load_torch_state_dict,
    save_torch_state_dict,
    to_torch_names,
    torch_names,
    torch_state_dict,
)
from .ops.autotune import autotuning, get_autotune, set_autotune
from .ops.autotune import save_cache as save_autotune_cache
from .workspace import get_workspace_limit, reset_workspace_limit, set_workspace_limit

__version__ = "0.1.0"

__all__ = [
    "models",
    "nn",
    "distributed",
    "IncompatibleKeys",
    "load_torch_state_dict",
    "save_torch_state_dict",
    "torch_state_dict",
    "KeyReport",
    "check_torch_state_dict",
    "to_torch_names",
    "torch_names",
    "get_workspace_limit",
    "reset_workspace_limit",
    "set_workspace_limit",
    "autotuning",
    "get_autotune",
    "set_autotune",
    "save_autotune_cache",
    "__version__",
]
