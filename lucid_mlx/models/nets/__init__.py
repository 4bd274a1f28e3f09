"""MONAI's 3-D networks on MLX, one file per MONAI file."""

from .basic_unet import BasicUNet, BasicUnet, Basicunet, basicunet
from .dynunet import DynUNet, DynUnet, Dynunet
from .segresnet import SegResNet
from .unet import UNet, Unet
from .unetr import UNETR
from .vit import ViT

__all__ = ["BasicUNet", "BasicUnet", "Basicunet", "basicunet", "SegResNet", "UNet", "Unet",
           "DynUNet", "DynUnet", "Dynunet", "UNETR", "ViT"]
