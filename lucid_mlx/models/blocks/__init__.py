"""MONAI's building blocks (``monai.networks.blocks``) with MONAI's arguments and child names."""

from .acti_norm import ADN
from .activation import GEGLU, MemoryEfficientSwish, Mish, Swish
from .convolutions import Convolution, ResidualUnit

__all__ = ["ADN", "Convolution", "GEGLU", "MemoryEfficientSwish", "Mish", "ResidualUnit", "Swish"]
