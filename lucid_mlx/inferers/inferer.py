"""``SlidingWindowInferer``: the sliding-window settings kept in an object, as MONAI's ``inferer.py``."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence, Union

import mlx.core as mx

from .. import _args
from .._args import check_bool, check_float
from . import _windows
from .sliding_window import BLEND_MODES, Output, _per_axis, sliding_window_inference


class SlidingWindowInferer:
    """Sliding-window inference with fixed settings, MONAI's ``SlidingWindowInferer`` on MLX.

    ``inferer(inputs, network)`` runs :func:`sliding_window_inference` with
    the settings given here; ``device``, ``buffer_steps`` and ``buffer_dim``
    may also be given per call as keywords, and any other arguments go to the
    network.

    Args:
        roi_size, sw_batch_size, overlap, mode, sigma_scale, padding_mode,
        cval, sw_device, device, progress, buffer_steps, buffer_dim,
        with_coord: As :func:`sliding_window_inference`. ``sw_batch_size``
            defaults to ``1``.
        cache_roi_weight_map (bool): Compute the window weight map once here
            instead of on every call; needs a ``roi_size`` with every entry
            positive. Default: ``False``.
        cpu_thresh (int, optional): Stitch on the CPU when the input has more
            voxels than this and no ``device`` is set (MONAI's switch to save
            GPU memory). Default: ``None``.

    Example:
        >>> inferer = SlidingWindowInferer(roi_size=(64, 64, 64), sw_batch_size=4, overlap=0.5, mode="gaussian")
        >>> seg = inferer(volume, model)
    """

    def __init__(
        self,
        roi_size: Union[int, Sequence[int | None], None],
        sw_batch_size: int = 1,
        overlap: Union[float, Sequence[float]] = 0.25,
        mode: str = "constant",
        sigma_scale: Union[float, Sequence[float]] = 0.125,
        padding_mode: str = "constant",
        cval: float = 0.0,
        sw_device=None,
        device=None,
        progress: bool = False,
        cache_roi_weight_map: bool = False,
        cpu_thresh: int | None = None,
        buffer_steps: int | None = None,
        buffer_dim: int = -1,
        with_coord: bool = False,
    ) -> None:
        # The rest is checked on the first call, where the number of spatial dimensions is known.
        self.roi_size = roi_size
        self.sw_batch_size = _args.check_int(sw_batch_size, "sw_batch_size", minimum=1)
        self.overlap = overlap
        if mode not in BLEND_MODES:
            raise ValueError(f"`mode` must be one of {BLEND_MODES}, got {mode!r}")
        self.mode = mode
        self.sigma_scale = sigma_scale
        self.padding_mode = padding_mode
        self.cval = cval
        self.sw_device = sw_device
        self.device = device
        self.progress = check_bool(progress, "progress")
        if cpu_thresh is not None:
            _args.check_int(cpu_thresh, "cpu_thresh", minimum=0)
        self.cpu_thresh = cpu_thresh
        self.buffer_steps = buffer_steps
        self.buffer_dim = buffer_dim
        self.with_coord = check_bool(with_coord, "with_coord")
        self.roi_weight_map = None
        if check_bool(cache_roi_weight_map, "cache_roi_weight_map"):
            if not isinstance(roi_size, (list, tuple)) or not all(
                isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in roi_size
            ):
                raise ValueError(
                    "`cache_roi_weight_map=True` needs a roi_size sequence of positive ints "
                    f"(the map cannot depend on the input), got {roi_size!r}"
                )
            sigmas = _per_axis(sigma_scale, len(roi_size), "sigma_scale", check_float)
            if mode == "gaussian" and min(sigmas) <= 0:
                raise ValueError(f"`sigma_scale` must be > 0, got {sigma_scale!r}")
            self.roi_weight_map = mx.array(_windows.importance_map(tuple(roi_size), mode, sigmas))

    def __call__(self, inputs: mx.array, network: Callable[..., Output], *args: Any, **kwargs: Any) -> Output:
        """Sliding-window inference of ``network`` over ``inputs`` (N, C, *spatial)."""
        device = kwargs.pop("device", self.device)
        buffer_steps = kwargs.pop("buffer_steps", self.buffer_steps)
        buffer_dim = kwargs.pop("buffer_dim", self.buffer_dim)
        if (
            device is None
            and self.cpu_thresh is not None
            and isinstance(inputs, mx.array)
            and math.prod(inputs.shape[2:]) > self.cpu_thresh
        ):
            device = "cpu"
        weight_map = self.roi_weight_map
        if weight_map is not None and isinstance(inputs, mx.array):
            weight_map = weight_map.astype(inputs.dtype) if inputs.dtype != weight_map.dtype else weight_map
        return sliding_window_inference(
            inputs,
            self.roi_size,
            self.sw_batch_size,
            network,
            self.overlap,
            self.mode,
            self.sigma_scale,
            self.padding_mode,
            self.cval,
            self.sw_device,
            device,
            self.progress,
            weight_map,
            None,
            buffer_steps,
            buffer_dim,
            self.with_coord,
            *args,
            **kwargs,
        )

    def __repr__(self) -> str:
        return (
            f"SlidingWindowInferer(roi_size={self.roi_size!r}, sw_batch_size={self.sw_batch_size}, "
            f"overlap={self.overlap!r}, mode={self.mode!r})"
        )
