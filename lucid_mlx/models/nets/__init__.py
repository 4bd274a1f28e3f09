"""MONAI's 3-D networks on MLX, one file per MONAI file."""

from .basic_unet import BasicUNet, BasicUnet, Basicunet, basicunet
from .segresnet import SegResNet
from .unet import UNet, Unet

__all__ = ["BasicUNet", "BasicUnet", "Basicunet", "basicunet", "SegResNet", "UNet", "Unet"]
