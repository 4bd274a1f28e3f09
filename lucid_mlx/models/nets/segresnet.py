"""SegResNet (Myronenko 2018, "3D MRI brain tumor segmentation using autoencoder regularization"),
the encoder-decoder without the VAE branch, as ``monai.networks.nets.SegResNet``."""

from __future__ import annotations

from typing import Optional, Union

import mlx.core as mx
import mlx.nn as mnn

from ... import _args
from ... import nn as lnn
from ..blocks.segresnet_block import ResBlock, get_conv_layer, get_upsample_layer
from ..layers.convutils import check_spatial_dims
from ..layers.factories import get_act_layer, get_norm_layer


def _blocks(value, name: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not value:
        raise TypeError(f"`{name}` must be a non-empty tuple of ints, got {value!r}")
    return tuple(_args.check_int(v, name, minimum=0) for v in value)


class SegResNet(mnn.Module):
    r"""SegResNet: ResNet-style encoder, light decoder with additive skips, as MONAI's.

    The encoder has ``len(blocks_down)`` levels; level ``i`` has
    ``init_filters * 2**i`` channels, is entered by a stride-2 convolution
    (except level 0) and holds ``blocks_down[i]`` :class:`ResBlock`\ s. Each
    decoder level halves the channels with a 1x1x1 convolution, upsamples by
    2 (``upsample_mode``), adds the encoder feature map of that resolution
    and applies ``blocks_up[i]`` ResBlocks. ``conv_final`` is norm, act and a
    1x1x1 convolution to ``out_channels``.

    Parameter names are MONAI's: ``convInit.conv.weight``,
    ``down_layers.1.0.conv.weight``, ``up_samples.0.1.deconv.weight``, ...
    MONAI registers the activation module twice, as ``act_mod`` and as
    ``conv_final.1``. Here it is registered once, as ``act_mod`` (the name
    MONAI's ``named_parameters()`` reports); ``conv_final.1`` is a
    :class:`~lucid_mlx.nn.Reuse` of it and an alias (:meth:`torch_aliases`).
    With a PReLU, both keys load and save and training sees one slope, as
    in PyTorch.

    Args:
        spatial_dims (int): Must be 3. Default: ``3``.
        init_filters (int): Channels of the first level. Default: ``8``.
        in_channels (int): Input channels. Default: ``1``.
        out_channels (int): Output channels. Default: ``2``.
        dropout_prob (float, optional): Channel dropout after ``convInit``. Default: ``None``.
        act: Activation name or ``(name, {kwargs})``. Default: ``("RELU", {"inplace": True})``.
        norm: Normalisation name or ``(name, {kwargs})``. Default: ``("GROUP", {"num_groups": 8})``.
        norm_name (str): Deprecated in MONAI: ``"group"`` means
            ``norm=("group", {"num_groups": num_groups})``; anything else but
            ``""`` is an error. Default: ``""``.
        num_groups (int): Groups for ``norm_name="group"``. Default: ``8``.
        use_conv_final (bool): Apply ``conv_final``; without it the output has
            ``init_filters`` channels. Default: ``True``.
        blocks_down (tuple): ResBlocks per encoder level. Default: ``(1, 2, 2, 4)``.
        blocks_up (tuple): ResBlocks per decoder level; one level fewer than
            ``blocks_down``. Default: ``(1, 1, 1)``.
        upsample_mode (str): ``"nontrainable"`` (trilinear), ``"deconv"``,
            ``"deconvgroup"`` or ``"pixelshuffle"``. Default: ``"nontrainable"``.

    Shape:
        - Input: (N, in_channels, D, H, W), each size divisible by ``2 ** (len(blocks_down) - 1)``
        - Output: (N, out_channels, D, H, W)

    Example:
        >>> net = SegResNet(init_filters=8, in_channels=1, out_channels=2)
        >>> net(mx.zeros((1, 1, 32, 32, 32))).shape
        (1, 2, 32, 32, 32)
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        init_filters: int = 8,
        in_channels: int = 1,
        out_channels: int = 2,
        dropout_prob: Optional[float] = None,
        act: Union[tuple, str] = ("RELU", {"inplace": True}),
        norm: Union[tuple, str] = ("GROUP", {"num_groups": 8}),
        norm_name: str = "",
        num_groups: int = 8,
        use_conv_final: bool = True,
        blocks_down: tuple = (1, 2, 2, 4),
        blocks_up: tuple = (1, 1, 1),
        upsample_mode: str = "nontrainable",
    ):
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.init_filters = _args.check_int(init_filters, "init_filters", minimum=1)
        self.in_channels = in_channels
        self.blocks_down = _blocks(blocks_down, "blocks_down")
        self.blocks_up = _blocks(blocks_up, "blocks_up") if blocks_up else ()
        if len(self.blocks_up) != len(self.blocks_down) - 1:
            raise ValueError(f"`blocks_up` must have one level fewer than `blocks_down` (the decoder "
                             f"returns to full resolution), got {blocks_up!r} and {blocks_down!r}")
        self.dropout_prob = dropout_prob
        self.act = act
        self.act_mod = get_act_layer(act)
        if norm_name:
            if norm_name.lower() != "group":
                raise ValueError(f"`norm_name`={norm_name!r} is deprecated in MONAI; use `norm` instead")
            norm = ("group", {"num_groups": num_groups})
        self.norm = norm
        self.upsample_mode = getattr(upsample_mode, "value", upsample_mode)
        if not isinstance(use_conv_final, bool):
            raise TypeError(f"`use_conv_final` must be a bool, got {use_conv_final!r}")
        self.use_conv_final = use_conv_final

        f = self.init_filters
        self.convInit = get_conv_layer(3, in_channels, f)
        self.down_layers = [
            lnn.Sequential(get_conv_layer(3, f * 2**i // 2, f * 2**i, stride=2) if i else mnn.Identity(),
                           *[ResBlock(3, f * 2**i, norm=norm, act=act) for _ in range(n)])
            for i, n in enumerate(self.blocks_down)
        ]
        n_up = len(self.blocks_up)
        self.up_layers = [
            lnn.Sequential(*[ResBlock(3, f * 2 ** (n_up - i) // 2, norm=norm, act=act) for _ in range(n)])
            for i, n in enumerate(self.blocks_up)
        ]
        self.up_samples = [
            lnn.Sequential(get_conv_layer(3, f * 2 ** (n_up - i), f * 2 ** (n_up - i) // 2, kernel_size=1),
                           get_upsample_layer(3, f * 2 ** (n_up - i) // 2, upsample_mode=upsample_mode))
            for i in range(n_up)
        ]
        # Registered twice, MLX would hold two slopes of a PReLU, and an optimizer step would
        # keep whichever path it writes last; Reuse keeps one (see torch_aliases).
        self.conv_final = lnn.Sequential(get_norm_layer(norm, spatial_dims=3, channels=f),
                                         lnn.Reuse(self.act_mod),
                                         get_conv_layer(3, f, out_channels, kernel_size=1, bias=True))
        if dropout_prob is not None:
            self.dropout = lnn.Dropout3d(dropout_prob)

    def torch_aliases(self) -> dict[str, str]:
        """MONAI's second name for the activation: ``conv_final.1`` is ``act_mod``."""
        return {"conv_final.1": "act_mod"}

    def encode(self, x: mx.array) -> tuple[mx.array, list[mx.array]]:
        """The encoder: the deepest feature map and every level's output, shallowest first."""
        x = self.convInit(x)
        if self.dropout_prob is not None:
            x = self.dropout(x)
        down_x = []
        for down in self.down_layers:
            x = down(x)
            down_x.append(x)
        return x, down_x

    def decode(self, x: mx.array, down_x: list[mx.array]) -> mx.array:
        """The decoder; ``down_x`` deepest first, as :meth:`encode` returns it reversed."""
        for i, (up, upl) in enumerate(zip(self.up_samples, self.up_layers)):
            x = upl(up(x) + down_x[i + 1])
        return self.conv_final(x) if self.use_conv_final else x

    def __call__(self, x: mx.array) -> mx.array:
        _args.check_array(x, "input", 5, "(N, C, D, H, W)")
        factor = 2 ** (len(self.blocks_down) - 1)
        if any(s % factor for s in x.shape[2:]):
            raise ValueError(f"SegResNet: the spatial sizes of `input` {tuple(x.shape[2:])} must be "
                             f"divisible by {factor} (2 ** (len(blocks_down) - 1))")
        x, down_x = self.encode(x)
        return self.decode(x, down_x[::-1])
