"""MONAI's building blocks (``monai.networks.blocks``) with MONAI's arguments and child names."""

from .acti_norm import ADN
from .activation import GEGLU, MemoryEfficientSwish, Mish, Swish
from .convolutions import Convolution, ResidualUnit
from .dynunet_block import UnetBasicBlock, UnetOutBlock, UnetResBlock, UnetUpBlock, get_conv_layer
from .mednext_block import MedNeXtBlock, MedNeXtDownBlock, MedNeXtOutBlock, MedNeXtUpBlock
from .mlp import MLPBlock
from .patchembedding import PatchEmbed, PatchEmbeddingBlock
from .segresnet_block import ResBlock
from .selfattention import SABlock
from .transformerblock import TransformerBlock
from .unetr_block import UnetrBasicBlock, UnetrPrUpBlock, UnetrUpBlock
from .upsample import SubpixelUpsample, UpSample

__all__ = ["ADN", "Convolution", "GEGLU", "MemoryEfficientSwish", "Mish", "ResBlock", "ResidualUnit",
           "SubpixelUpsample", "Swish", "UpSample",
           "MLPBlock", "PatchEmbeddingBlock", "SABlock", "TransformerBlock",
           "UnetBasicBlock", "UnetOutBlock", "UnetResBlock", "UnetUpBlock", "get_conv_layer",
           "UnetrBasicBlock", "UnetrPrUpBlock", "UnetrUpBlock",
           "MedNeXtBlock", "MedNeXtDownBlock", "MedNeXtOutBlock", "MedNeXtUpBlock", "PatchEmbed"]
