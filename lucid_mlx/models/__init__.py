"""MONAI 1.6.1's 3-D segmentation networks on MLX.

Each network takes MONAI's constructor arguments and defaults, and its
parameter and buffer names are MONAI's state_dict keys, so a MONAI
checkpoint loads in one call::

    model = lucid_mlx.models.UNet(spatial_dims=3, in_channels=1, out_channels=2,
                                  channels=(16, 32, 64), strides=(2, 2))
    lucid_mlx.load_torch_state_dict(model, monai_model.state_dict())

The building blocks are where MONAI keeps them: ``lucid_mlx.models.blocks``
(``Convolution``, ``ResidualUnit``, ``ADN``) and ``lucid_mlx.models.layers``
(``get_act_layer``, ``get_norm_layer``, ``get_dropout_layer``).
"""

from . import blocks, layers, nets
from .nets import *  # noqa: F401,F403

__all__ = ["blocks", "layers", "nets"] + list(nets.__all__)
