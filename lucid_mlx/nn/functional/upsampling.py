"""Resizing: ``interpolate`` (module :class:`lucid_mlx.nn.Upsample`)."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import mlx.core as mx

from ... import _args
from ..._args import LINEAR_MODES
from ...ops import upsample as _upsample


def _sizes_and_scales(x, size, scale_factor, recompute_scale_factor):
    """The output size and the scale factors that set the source indices."""
    dims = x.ndim - 2
    _args.size_or_scale(size, scale_factor)
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor=True is not meaningful "
                             "with an explicit `size`")
        out = list(_args.ntuple(size, dims, "size", minimum=1))
        return out, [None] * dims
    if isinstance(scale_factor, (tuple, list)) and len(scale_factor) != dims:
        raise ValueError(f"interpolate: `scale_factor` must be a number or a sequence of "
                         f"{dims} numbers for input of shape {tuple(x.shape)}, "
                         f"got {scale_factor!r}")
    scales = _args.scale_factor(scale_factor)
    if not isinstance(scales, tuple):
        scales = (scales,) * dims
    # PyTorch truncates in double precision (upsample_compute_output_size).
    out = [int(n * s) for n, s in zip(x.shape[2:], scales)]
    if any(o < 1 for o in out):
        raise ValueError(f"interpolate: scale_factor={scale_factor!r} gives an empty output "
                         f"{tuple(out)} for input of shape {tuple(x.shape)}")
    if recompute_scale_factor:
        return out, [None] * dims
    return out, list(scales)


def interpolate(
    input: mx.array,
    size: Union[int, Sequence[int], None] = None,
    scale_factor: Union[float, Sequence[float], None] = None,
    mode: str = "nearest",
    align_corners: Optional[bool] = None,
    recompute_scale_factor: Optional[bool] = None,
) -> mx.array:
    """Resize (N, C, \\*spatial) input, as ``torch.nn.functional.interpolate``.

    See :class:`lucid_mlx.nn.Upsample` for the modes and index rules.

    Shape:
        - Input: (N, C, L), (N, C, H, W) or (N, C, D, H, W)
        - Output: (N, C, \\*size) or (N, C, \\*floor(in * scale_factor))
    """
    x = _args.check_array(input, "input", (3, 4, 5), "(N, C, L), (N, C, H, W) or (N, C, D, H, W)")
    mode = _args.interpolate_mode(mode)
    linear = mode in LINEAR_MODES
    if linear and LINEAR_MODES[x.ndim - 3] != mode:
        raise ValueError(f"interpolate: mode={mode!r} needs {LINEAR_MODES.index(mode) + 3}-D "
                         f"input, got shape {tuple(x.shape)}")
    if align_corners is not None:
        if not linear:
            raise ValueError("interpolate: `align_corners` can only be set with the linear "
                             f"modes (linear, bilinear, trilinear), got mode={mode!r}")
        if not isinstance(align_corners, bool):
            raise TypeError(f"interpolate: `align_corners` must be a bool or None, got {align_corners!r}")
    if any(n == 0 for n in x.shape[1:]):  # PyTorch's "Non-empty 5D data tensor expected"
        raise ValueError(f"interpolate: the channel and spatial dimensions of `input` must be "
                         f"non-empty, got shape {tuple(x.shape)}")
    out, scales = _sizes_and_scales(x, size, scale_factor, recompute_scale_factor)
    if mode == "area" and x.ndim != 5:
        raise ValueError(f"interpolate: mode='area' is implemented for 5-D input only, "
                         f"got shape {tuple(x.shape)}")
    return _upsample.interpolate(x, out, scales, mode, bool(align_corners))
