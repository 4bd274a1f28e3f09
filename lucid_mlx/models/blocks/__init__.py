"""MONAI's building blocks (``monai.networks.blocks``) with MONAI's arguments and child names."""

from .acti_norm import ADN
from .activation import GEGLU, MemoryEfficientSwish, Mish, Swish
from .convolutions import Convolution, ResidualUnit
from .segresnet_block import ResBlock
from .upsample import SubpixelUpsample, UpSample

__all__ = ["ADN", "Convolution", "GEGLU", "MemoryEfficientSwish", "Mish", "ResBlock", "ResidualUnit",
           "SubpixelUpsample", "Swish", "UpSample"]
