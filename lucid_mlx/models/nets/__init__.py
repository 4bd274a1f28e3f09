"""MONAI's 3-D networks on MLX, one file per MONAI file."""

from .basic_unet import BasicUNet, BasicUnet, Basicunet, basicunet
from .dynunet import DynUNet, DynUnet, Dynunet
from .mednext import (MedNeXt, MedNeXtB, MedNeXtBase, MedNeXtL, MedNeXtLarge, MedNeXtM, MedNeXtMedium, MedNeXtS,
                      MedNeXtSmall, MedNext, MedNextB, MedNextBase, MedNextL, MedNextLarge, MedNextM, MedNextMedium,
                      MedNextS, MedNextSmall)
from .segresnet import SegResNet
from .swin_unetr import SwinUNETR
from .unet import UNet, Unet
from .unetr import UNETR
from .vit import ViT

__all__ = ["BasicUNet", "BasicUnet", "Basicunet", "basicunet", "SegResNet", "UNet", "Unet",
           "DynUNet", "DynUnet", "Dynunet", "UNETR", "ViT",
           "MedNeXt", "MedNeXtB", "MedNeXtBase", "MedNeXtL", "MedNeXtLarge", "MedNeXtM", "MedNeXtMedium",
           "MedNeXtS", "MedNeXtSmall", "MedNext", "MedNextB", "MedNextBase", "MedNextL", "MedNextLarge",
           "MedNextM", "MedNextMedium", "MedNextS", "MedNextSmall", "SwinUNETR"]
