"""A small 3-D U-Net built only from lucid_mlx's NCDHW layers.

Each level is two (Conv3d 3x3x3 -> norm -> ReLU) blocks; the encoder
halves the grid with MaxPool3d, the decoder doubles it with a stride-2
ConvTranspose3d and concatenates the skip connection along channels
(axis 1, as in PyTorch).  Attribute names follow the usual PyTorch layout,
so the same network written in PyTorch loads with
``lucid_mlx.load_torch_state_dict``.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

from lucid_mlx import nn as lnn

NORMS = ("batch", "instance", "group")


def _norm(kind: str, channels: int) -> nn.Module:
    # BatchNorm is the default: in eval mode it applies fixed running
    # statistics, so a whole-volume prediction sees the features training
    # saw.  Instance/group statistics depend on each input's field of view,
    # and on small patches they erase the absolute intensity that tells the
    # tissues apart; here they learned markedly slower.
    if kind == "batch":
        return lnn.BatchNorm3d(channels)
    if kind == "instance":
        return lnn.InstanceNorm3d(channels, affine=True)
    # Groups of 4 channels: GroupNorm's middle ground between the two.
    return lnn.GroupNorm(max(1, channels // 4), channels)


def double_conv(c_in: int, c_out: int, norm: str) -> nn.Sequential:
    """(Conv3d -> norm -> ReLU) x 2; the convs drop their bias, the norm has one."""
    return nn.Sequential(
        lnn.Conv3d(c_in, c_out, 3, padding=1, bias=False), _norm(norm, c_out), nn.ReLU(),
        lnn.Conv3d(c_out, c_out, 3, padding=1, bias=False), _norm(norm, c_out), nn.ReLU(),
    )


class UNet3d(nn.Module):
    """3-D U-Net on (N, in_channels, D, H, W), returning per-class logits.

    Args:
        in_channels: input channels. Default: ``1``.
        num_classes: output channels (one logit per class). Default: ``4``.
        channels: feature channels per level, finest first; ``len(channels)``
            levels means ``len(channels) - 1`` poolings, so D, H and W must
            be multiples of ``2 ** (len(channels) - 1)``. Default: ``(8, 16, 32)``.
        norm: ``'batch'``, ``'instance'`` or ``'group'``. Default: ``'batch'``.

    Shape:
        - Input: (N, in_channels, D, H, W)
        - Output: (N, num_classes, D, H, W)
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 4,
                 channels: tuple[int, ...] = (8, 16, 32), norm: str = "batch"):
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"`channels` needs at least 2 levels, got {channels!r}")
        if norm not in NORMS:
            raise ValueError(f"`norm` must be one of {NORMS}, got {norm!r}")
        self.channels = tuple(channels)
        self.encoders = [double_conv(c_in, c_out, norm)
                         for c_in, c_out in zip((in_channels,) + self.channels[:-1], self.channels)]
        self.pool = lnn.MaxPool3d(2)
        coarse_to_fine = self.channels[::-1]
        self.ups = [lnn.ConvTranspose3d(c_in, c_out, 2, stride=2)
                    for c_in, c_out in zip(coarse_to_fine, coarse_to_fine[1:])]
        self.decoders = [double_conv(2 * c, c, norm) for c in coarse_to_fine[1:]]
        self.head = lnn.Conv3d(self.channels[0], num_classes, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal conv weights and zero biases, as nnU-Net does.

        PyTorch's default (uniform, a=sqrt(5)) shrinks each ReLU layer's
        output variance about six-fold; measured here, that left the
        U-Net predicting one class after 300 steps, where He init learns.
        """
        for _, module in self.named_modules():
            if isinstance(module, (lnn.Conv3d, lnn.ConvTranspose3d)):
                # A stride-2, kernel-2 transposed conv feeds each output voxel
                # from one tap per input channel: its fan-in is C_in.
                fan_in = module.weight[0].size if isinstance(module, lnn.Conv3d) else module.weight.shape[0]
                module.weight = mx.random.normal(module.weight.shape) * (2.0 / fan_in) ** 0.5
                if "bias" in module:
                    module.bias = mx.zeros_like(module.bias)

    @property
    def multiple(self) -> int:
        """D, H and W must be multiples of this."""
        return 2 ** (len(self.channels) - 1)

    def __call__(self, x: mx.array) -> mx.array:
        if any(s % self.multiple for s in x.shape[2:]):
            raise ValueError(
                f"UNet3d input spatial shape {tuple(x.shape[2:])} must be multiples of {self.multiple}"
            )
        skips = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x if i == 0 else self.pool(x))
            skips.append(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips[:-1])):
            x = decoder(mx.concatenate([up(x), skip], axis=1))
        return self.head(x)
