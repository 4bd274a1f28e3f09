"""The networks of ``--cases models``: each ``lucid_mlx.models`` network against MONAI's.

A case names the network (the same class name in ``lucid_mlx.models`` and
``monai.networks.nets``), its constructor arguments and the input. The
arguments are MONAI's defaults, or the configuration MONAI's tutorials
use where a network has no defaults (UNet, DynUNet). The standard input is
one 1-channel 96^3 volume; networks whose forward+backward at 96^3 would take
minutes on MLX's Linux CPU backend (whose bundled BLAS runs at a few
GFLOP/s) run at 64^3 or 32^3, and the case's note says so with the
PyTorch-counted FLOPs at 96^3.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class ModelCase:
    name: str
    model: str  # class name in lucid_mlx.models and monai.networks.nets
    input: tuple[int, int, int, int, int]  # N, C_in, D, H, W
    kwargs: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    kind: ClassVar[str] = "network"
    # float16 MONAI on the CPU runs convolutions through slow reference code (see the layer
    # table); ask for it with --dtypes.
    dtypes: ClassVar[tuple[str, ...]] = ("float32",)
    plain_mlx: ClassVar[bool] = False  # no hand-written mx.conv3d version of a network

    def describe(self) -> str:
        n, c, d, h, w = self.input
        size = f"{d}^3" if d == h == w else f"{d}x{h}x{w}"
        return f"{self.model} {n}x{c}x{size}"

    def arguments(self) -> dict[str, Any]:
        """The constructor arguments (a fresh dict: the networks may keep what they are given)."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self.kwargs.items()}

    def as_dict(self) -> dict:
        return {**asdict(self), "network": self.describe()}


_DYNUNET_96 = dict(spatial_dims=3, in_channels=1, out_channels=2, kernel_size=[3, 3, 3, 3, 3],
                   strides=[1, 2, 2, 2, 2], upsample_kernel_size=[2, 2, 2, 2])

MODEL_CASES: dict[str, ModelCase] = {
    case.name: case
    for case in (
        ModelCase("unet", "UNet", (1, 1, 96, 96, 96),
                  dict(spatial_dims=3, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256),
                       strides=(2, 2, 2, 2), num_res_units=2, norm="batch"),
                  note="MONAI's spleen tutorial configuration (41 GFLOP fwd+bwd)"),
        ModelCase("segresnet", "SegResNet", (1, 1, 96, 96, 96),
                  note="MONAI's defaults: init_filters 8, blocks_down (1, 2, 2, 4) (123 GFLOP fwd+bwd)"),
        ModelCase("basic_unet", "BasicUNet", (1, 1, 32, 32, 32),
                  note="MONAI's defaults, features (32, 32, 64, 128, 256, 32); 32^3: at 96^3 "
                       "fwd+bwd is 1008 GFLOP, minutes on this CPU (37 GFLOP at 32^3)"),
        ModelCase("dynunet", "DynUNet", (1, 1, 32, 32, 32), _DYNUNET_96,
                  note="nnU-Net's 5 levels, filters 32..320; 32^3: at 96^3 fwd+bwd is 1593 GFLOP "
                       "(59 GFLOP at 32^3)"),
        ModelCase("unetr", "UNETR", (1, 1, 64, 64, 64), dict(in_channels=1, out_channels=2, img_size=64),
                  note="MONAI's defaults (ViT-B: hidden 768, 12 layers), 4^3 = 64 patches; 64^3: at 96^3 "
                       "fwd+bwd is 582 GFLOP (171 GFLOP at 64^3)"),
        ModelCase("swin_unetr", "SwinUNETR", (1, 1, 64, 64, 64), dict(in_channels=1, out_channels=2),
                  note="MONAI's defaults, feature_size 24; 64^3 (the smallest size that trains: the "
                       "deepest level needs more than one voxel): at 96^3 fwd+bwd is 660 GFLOP (203 at 64^3)"),
        ModelCase("mednext", "MedNeXt", (1, 1, 32, 32, 32),
                  note="MONAI's defaults (MedNeXt-S, k=7 depthwise); 32^3: fwd+bwd is 221 GFLOP at "
                       "32^3, 1771 at 64^3"),
    )
}

# A network small enough for the test suite; run it by name.
EXTRA_MODEL_CASES: dict[str, ModelCase] = {
    "unet_tiny": ModelCase("unet_tiny", "UNet", (1, 1, 8, 8, 8),
                           dict(spatial_dims=3, in_channels=1, out_channels=2, channels=(2, 4),
                                strides=(2,), num_res_units=1), note="smoke test"),
}


def available(case: ModelCase) -> bool:
    """Whether ``lucid_mlx.models`` has the case's network."""
    from .. import models

    return hasattr(models, case.model)
