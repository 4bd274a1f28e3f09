"""The NCDHW ``ConvTranspose3d`` module."""

from __future__ import annotations

from typing import Optional, Sequence

import mlx.core as mx

from .. import _args
from .._args import _size_3
from . import functional as F
from ._conv_base import _ConvNd


class ConvTranspose3d(_ConvNd):
    r"""3-D transposed convolution over (N, C_in, D, H, W), as ``torch.nn.ConvTranspose3d``.

    The gradient of :class:`Conv3d` with respect to its input: each input
    voxel scatters ``weight`` into the output at ``stride`` spacing. Often
    used to upsample in decoders (``kernel_size=2, stride=2`` doubles each
    dimension).

    Args:
        in_channels (int): Number of channels in the input.
        out_channels (int): Number of channels produced.
        kernel_size (int or tuple): Size of the kernel (KD, KH, KW).
        stride (int or tuple): Spacing of the scattered kernels. Default: ``1``.
        padding (int or tuple): Crops ``padding`` voxels from both sides of
            each dimension of the full output. Default: ``0``.
        output_padding (int or tuple): Extra size added to the high side of
            each dimension, smaller than ``stride`` or ``dilation``; resolves
            the ambiguity of which input size a strided conv came from.
            Default: ``0``.
        groups (int): Blocked connections from input to output channels.
            Default: ``1``.
        bias (bool): Add a learnable bias. Default: ``True``.
        dilation (int or tuple): Spacing between kernel elements. Default: ``1``.
        padding_mode (str): Only ``'zeros'``, as in PyTorch. Default: ``'zeros'``.
        device (str or Device, optional): Device for the layer's ops. Default: ``None``.
        dtype (Dtype, optional): ``mx.float32``, ``mx.float16`` or ``mx.bfloat16``.
            Default: ``mx.float32``.

    Shape:
        - Input: (N, C_in, D_in, H_in, W_in) or (C_in, D_in, H_in, W_in)
        - Output: (N, C_out, D_out, H_out, W_out) or unbatched, where

        .. math::
            D_{out} = (D_{in} - 1) \times \text{stride}[0] - 2 \times \text{padding}[0]
            + \text{dilation}[0] \times (\text{kernel\_size}[0] - 1)
            + \text{output\_padding}[0] + 1

        and likewise for H and W. ``module(x, output_size=...)`` picks the
        output padding that gives that size, as PyTorch.

    Attributes:
        weight (array): Shape (in_channels, out_channels / groups, KD, KH, KW),
            drawn from :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})` with
            :math:`k = \text{groups} / (C_{out} \cdot KD \cdot KH \cdot KW)`
            (PyTorch computes the fan-in from the weight's second dimension).
        bias (array): Shape (out_channels,), same distribution; absent when
            ``bias=False``.

    Example:
        >>> up = ConvTranspose3d(16, 8, kernel_size=2, stride=2)
        >>> up(mx.zeros((1, 16, 4, 8, 8))).shape
        (1, 8, 8, 16, 16)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: _size_3,
        stride: _size_3 = 1,
        padding: _size_3 = 0,
        output_padding: _size_3 = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: _size_3 = 1,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, dilation, groups, bias, device, dtype,
            transposed=True,
        )
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose3d supports only padding_mode='zeros' (as PyTorch), "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.padding = _args.triple(padding, "padding", minimum=0)
        self.output_padding = _args.check_output_padding(output_padding, self.stride, self.dilation)

    def _output_padding(self, x: mx.array, output_size: Sequence[int]) -> tuple[int, int, int]:
        """The output padding that makes the output ``output_size`` (PyTorch's rule)."""
        size = list(output_size)
        if len(size) == x.ndim:
            size = size[-3:]  # the full output shape given: keep its spatial part
        if len(size) != 3:
            raise ValueError(f"`output_size` must have 3 spatial sizes, got {tuple(output_size)}")
        smallest_sizes = _args.transposed_output_shape(x.shape[-3:], self.kernel_size, self.stride,
                                                       self.padding, (0, 0, 0), self.dilation)
        pads = []
        for want, smallest, s in zip(size, smallest_sizes, self.stride):
            if not smallest <= want < smallest + s:
                raise ValueError(
                    f"`output_size` {tuple(output_size)} is not reachable for input of shape "
                    f"{tuple(x.shape)}: each size must lie in [{smallest}, {smallest + s - 1}] "
                    f"for the corresponding dimension")
            pads.append(want - smallest)
        return tuple(pads)  # type: ignore[return-value]

    def __call__(self, x: mx.array, output_size: Optional[Sequence[int]] = None) -> mx.array:
        op = self.output_padding
        if output_size is not None:
            _args.check_array(x, "input", (4, 5), "(N, C_in, D, H, W) or (C_in, D, H, W)")
            op = self._output_padding(x, output_size)
        bias = self._bias()
        with self._stream():
            return F.conv_transpose3d(x, self.weight, bias, self.stride, self.padding, op,
                                      self.groups, self.dilation)
