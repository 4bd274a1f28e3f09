"""MONAI's 3-D networks on MLX, one file per MONAI file."""

from .dynunet import DynUNet, DynUnet, Dynunet
from .mednext import (MedNeXt, MedNeXtB, MedNeXtBase, MedNeXtL, MedNeXtLarge, MedNeXtM, MedNeXtMedium, MedNeXtS,
                      MedNeXtSmall, MedNext, MedNextB, MedNextBase, MedNextL, MedNextLarge, MedNextM, MedNextMedium,
                      MedNextS, MedNextSmall)
from .swin_unetr import SwinUNETR
from .unetr import UNETR
from .vit import ViT

__all__: list[str] = ["DynUNet", "DynUnet", "Dynunet", "UNETR", "ViT",
                       "MedNeXt", "MedNeXtB", "MedNeXtBase", "MedNeXtL", "MedNeXtLarge", "MedNeXtM", "MedNeXtMedium",
                       "MedNeXtS", "MedNeXtSmall", "MedNext", "MedNextB", "MedNextBase", "MedNextL", "MedNextLarge",
                       "MedNextM", "MedNextMedium", "MedNextS", "MedNextSmall", "SwinUNETR"]
