"""Segmentation losses with MONAI 1.6.1's arguments and results, on MLX arrays.

Where a MONAI script has ``from monai.losses import DiceCELoss``, write
``from lucid_mlx.losses import DiceCELoss``: the same arguments, NCDHW
logits and (B, 1, ...) label maps or one-hot targets, differentiable with
``mx.grad``.
"""

from .dice import DiceCELoss, DiceFocalLoss, DiceLoss
from .focal_loss import FocalLoss, sigmoid_focal_loss, softmax_focal_loss

__all__ = ["DiceLoss", "DiceCELoss", "DiceFocalLoss", "FocalLoss", "sigmoid_focal_loss", "softmax_focal_loss"]
