"""MONAI's layer factories and helpers (``monai.networks.layers``) for lucid_mlx.models."""

from .convutils import check_spatial_dims, same_padding, stride_minus_kernel_padding
from .drop_path import DropPath
from .factories import Act, Dropout, Norm, get_act_layer, get_dropout_layer, get_norm_layer, split_args
from .simplelayers import SkipConnection

__all__ = [
    "Act",
    "Dropout",
    "DropPath",
    "Norm",
    "SkipConnection",
    "check_spatial_dims",
    "get_act_layer",
    "get_dropout_layer",
    "get_norm_layer",
    "same_padding",
    "split_args",
    "stride_minus_kernel_padding",
]
