"""NCDHW neural-network layers with PyTorch's semantics, as ``mlx.nn.Module``s."""

from . import functional
from .activation import LeakyReLU, LogSoftmax, PReLU, SELU, Softmax
from .container import Reuse, Sequential
from .conv import Conv3d
from .conv_transpose import ConvTranspose3d
from .dropout import Dropout3d
from .normalization import BatchNorm3d, GroupNorm, InstanceNorm3d
from .sync_batchnorm import SyncBatchNorm3d
from .padding import CircularPad3d, ConstantPad3d, ReflectionPad3d, ReplicationPad3d, ZeroPad3d
from .pooling import AdaptiveAvgPool3d, AdaptiveMaxPool3d, AvgPool3d, MaxPool3d
from .upsampling import Upsample

__all__ = [
    "functional",
    "Conv3d",
    "ConvTranspose3d",
    "MaxPool3d",
    "AvgPool3d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool3d",
    "BatchNorm3d",
    "SyncBatchNorm3d",
    "InstanceNorm3d",
    "GroupNorm",
    "Upsample",
    "Dropout3d",
    "Sequential",
    "Reuse",
    "PReLU",
    "LeakyReLU",
    "SELU",
    "Softmax",
    "LogSoftmax",
    "ConstantPad3d",
    "ZeroPad3d",
    "ReflectionPad3d",
    "ReplicationPad3d",
    "CircularPad3d",
]
