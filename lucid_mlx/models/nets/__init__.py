"""MONAI's 3-D networks on MLX, one file per MONAI file."""

from .dynunet import DynUNet, DynUnet, Dynunet
from .unetr import UNETR
from .vit import ViT

__all__: list[str] = ["DynUNet", "DynUnet", "Dynunet", "UNETR", "ViT"]
