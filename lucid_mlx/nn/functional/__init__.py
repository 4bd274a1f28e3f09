"""Functional NCDHW ops with PyTorch's signatures and semantics.

Every function validates its arguments (with the helpers of
:mod:`lucid_mlx._args`) before any MLX op runs, and then calls the
implementation in :mod:`lucid_mlx.ops`, which takes validated, normalised
arguments.  The modules in :mod:`lucid_mlx.nn` call these functions, as
PyTorch's ``forward`` methods call ``torch.nn.functional``.  One module per
layer family, as in :mod:`lucid_mlx.nn`.
"""

from .conv import conv3d, conv_transpose3d
from .dropout import dropout3d
from .normalization import batch_norm, group_norm, instance_norm
from .padding import PAD_MODES, pad
from .pooling import adaptive_avg_pool3d, adaptive_max_pool3d, avg_pool3d, max_pool3d
from .upsampling import interpolate

__all__ = [
    "conv3d",
    "conv_transpose3d",
    "pad",
    "max_pool3d",
    "avg_pool3d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool3d",
    "batch_norm",
    "instance_norm",
    "group_norm",
    "interpolate",
    "dropout3d",
]
