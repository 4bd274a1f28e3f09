"""Sliding-window inference with MONAI 1.6.1's arguments and results, on MLX arrays.

The volume is cut into overlapping windows of ``roi_size``; the predictor
runs on ``sw_batch_size`` windows at a time; each output window is weighted
(uniformly or by a Gaussian) and added into an output buffer and a weight
buffer, and the output is their ratio.  Windows, weights and the stitching
order are MONAI's (``monai.inferers.utils.sliding_window_inference``).

Memory is bounded by the window batch, not the volume: the graph is
evaluated after every window batch, and each window is added into the
buffers with ``array.at[...].add``, which MLX runs in place when nothing
else holds the buffer (measured: adding a 4x64^3 window into a
4x182x218x182 float32 buffer allocates nothing, while ``buf[idx] += p``
copies the 116 MB buffer every time).
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import Any, Callable, Mapping, Sequence, Union

import mlx.core as mx
import numpy as np

from .. import _args
from .._args import FLOAT_DTYPES
from .._args import check_bool, check_choice, check_float
from ..nn import functional as F
from . import _windows

Output = Union[mx.array, tuple, dict]

BLEND_MODES = ("constant", "gaussian")
PADDING_MODES = ("constant", "reflect", "replicate", "circular")
# Evaluate the weight-count buffer every this many windows, to keep its graph short.
_COUNT_CHUNK = 64


def _device(value, name: str) -> mx.Device | None:
    """``_args.device``, with PyTorch device names answered and the argument named."""
    text = str(value) if value is not None and type(value).__name__ == "device" else value
    if isinstance(text, str) and text.split(":")[0] in ("cuda", "mps", "xpu"):
        raise ValueError(f"`{name}` {value!r} is a PyTorch device; MLX takes None, 'cpu', 'gpu' or an mlx.core.Device")
    try:
        return _args.device(text)
    except ValueError as err:
        raise ValueError(str(err).replace("`device`", f"`{name}`", 1)) from None


def _per_axis(value, n: int, name: str, check) -> tuple:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"`{name}` must be one value or {n} values (one per spatial dimension), got {value!r}")
        return tuple(check(v, name) for v in value)
    return (check(value, name),) * n


def _roi(roi_size, image_size: Sequence[int]) -> tuple[int, ...]:
    """``roi_size`` with None or non-positive entries replaced by the image's size (MONAI's rule)."""
    n = len(image_size)

    def entry(v, name):
        if v is None:
            return None
        return _args.check_int(v, name)

    if isinstance(roi_size, (list, tuple)) and len(roi_size) != n:
        raise ValueError(
            f"`roi_size` {tuple(roi_size)} has {len(roi_size)} values but the input has {n} spatial "
            f"dimensions; inputs must be (N, C, *spatial), channel first"
        )
    roi = _per_axis(roi_size, n, "roi_size", entry)
    return tuple(r if r is not None and r > 0 else s for r, s in zip(roi, image_size))


def _flatten(out, n_windows: int, ndim: int) -> tuple[list | None, tuple[mx.array, ...]]:
    """The predictor's output as a tuple of arrays, and the sorted keys if it was a dict."""
    keys = None
    if isinstance(out, mx.array):
        arrays = (out,)
    elif isinstance(out, Mapping):
        keys = sorted(out.keys())
        arrays = tuple(out[k] for k in keys)
    elif isinstance(out, (list, tuple)):
        arrays = tuple(out)
    else:
        raise TypeError(
            f"`predictor` must return an mlx.core.array or a tuple/list/dict of them, got {type(out).__name__}"
        )
    for i, a in enumerate(arrays):
        label = f"output {keys[i]!r}" if keys else f"output {i}"
        if not isinstance(a, mx.array):
            raise TypeError(f"`predictor` {label} must be an mlx.core.array, got {type(a).__name__}")
        if a.ndim != ndim or a.shape[0] != n_windows:
            raise ValueError(
                f"`predictor` {label} must be (windows={n_windows}, channels, *spatial) with {ndim} dimensions, "
                f"got shape {tuple(a.shape)}"
            )
    return keys, arrays


def _pack(outputs: list[mx.array], keys) -> Output:
    if keys is not None:
        return dict(zip(keys, outputs))
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _weight_map(weights, roi: tuple[int, ...], name: str) -> mx.array:
    """A (1, 1, *roi) weight map from a (*roi) or (1, 1, *roi) array."""
    w = weights if isinstance(weights, mx.array) else mx.array(np.asarray(weights, dtype=np.float32))
    if tuple(w.shape) not in (roi, (1, 1) + roi):
        raise ValueError(f"`{name}` must have shape {roi} or {(1, 1) + roi}, got {tuple(w.shape)}")
    return w.reshape((1, 1) + roi)


class _Progress:
    """tqdm when it is installed, else a one-line counter on stderr."""

    def __init__(self, total: int, enabled: bool):
        self._bar = None
        self._done, self._total, self._enabled = 0, total, enabled
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc="sliding window")

    def update(self) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif self._enabled:
            end = "\n" if self._done == self._total else ""
            print(f"\rsliding window: {self._done}/{self._total}", end=end, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def sliding_window_inference(
    inputs: mx.array,
    roi_size: Union[int, Sequence[int | None], None],
    sw_batch_size: int,
    predictor: Callable[..., Output],
    overlap: Union[float, Sequence[float]] = 0.25,
    mode: str = "constant",
    sigma_scale: Union[float, Sequence[float]] = 0.125,
    padding_mode: str = "constant",
    cval: float = 0.0,
    sw_device=None,
    device=None,
    progress: bool = False,
    roi_weight_map: mx.array | None = None,
    process_fn: Callable | None = None,
    buffer_steps: int | None = None,
    buffer_dim: int = -1,
    with_coord: bool = False,
    *args: Any,
    **kwargs: Any,
) -> Output:
    """Runs ``predictor`` over overlapping windows of ``inputs`` and stitches the outputs.

    The same arguments and result as MONAI's
    ``monai.inferers.sliding_window_inference``.  The predictor may return
    one array, or a tuple/list/dict of arrays (deep supervision), each at its
    own scale of the window: an output window of size ``s`` for an input
    window ``roi`` is stitched into an output of size ``int(image * s / roi)``
    (choose ``roi_size`` and ``overlap`` so the scaled window positions are
    whole numbers).  Where ``roi_size`` exceeds the input, the input is
    padded and the output cropped back.

    Args:
        inputs (array): (N, C, *spatial) input, float32/float16/bfloat16.
        roi_size (int or sequence): Window size; an entry that is ``None`` or
            not positive takes the whole axis (``(32, -1)`` on a 64-wide
            second axis is ``(32, 64)``).
        sw_batch_size (int): Windows per predictor call.
        predictor (callable): ``predictor(windows, *args, **kwargs)``, or
            ``predictor(windows, coords, ...)`` with ``with_coord``.
        overlap (float or sequence): Fraction of overlap in [0, 1) per axis.
            Default: ``0.25``.
        mode (str): ``'constant'`` (equal weights) or ``'gaussian'`` (less
            weight towards window edges). Default: ``'constant'``.
        sigma_scale (float or sequence): Gaussian sigma as a fraction of the
            window size, per axis. Default: ``0.125``.
        padding_mode (str): ``'constant'``, ``'reflect'``, ``'replicate'`` or
            ``'circular'``, for inputs smaller than the window. Default:
            ``'constant'``.
        cval (float): Fill value of ``'constant'`` padding. Default: ``0``.
        sw_device (str or Device, optional): ``'cpu'``, ``'gpu'`` or an
            ``mx.Device`` on which the predictor runs. MLX's memory is shared
            by both devices, so this picks where the work runs, not where the
            data lives. Default: ``None`` (MLX's default device).
        device (str or Device, optional): Device on which the windows are
            stitched. Default: ``None``.
        progress (bool): Show a progress bar over window batches (tqdm if it
            is installed, else a counter on stderr). Default: ``False``.
        roi_weight_map (array, optional): Non-negative (*roi) weights to use
            instead of ``mode``'s. Default: ``None``.
        process_fn (callable, optional): ``process_fn(outputs, windows,
            weights) -> (outputs, weights)`` applied to each window batch's
            tuple of outputs and the (*roi) weight map. Default: ``None``.
        buffer_steps (int, optional): Accepted for MONAI scripts; MONAI uses
            it to stage windows on the GPU before copying them to the host,
            which unified memory makes pointless, so it changes nothing here.
            As in MONAI it needs a predictor with one ROI-sized output.
            Default: ``None``.
        buffer_dim (int): The axis ``buffer_steps`` refers to, checked as in
            MONAI. Default: ``-1``.
        with_coord (bool): Pass each batch's window slices to the predictor as
            its second argument. Default: ``False``.
        *args, **kwargs: Passed on to ``predictor``. A ``condition`` keyword
            array shaped like ``inputs`` is cut into windows alongside them.

    Returns:
        array, tuple or dict: The stitched output(s), (N, C_out, *spatial
        scaled), in the input's dtype; a dict comes back with its keys.

    Example:
        >>> conv = lucid_mlx.nn.Conv3d(1, 3, 3, padding=1)
        >>> volume = mx.random.normal((1, 1, 182, 218, 182))
        >>> seg = sliding_window_inference(volume, (96, 96, 96), 4, conv, overlap=0.25, mode="gaussian")
        >>> seg.shape
        (1, 3, 182, 218, 182)
    """
    x = _check_inputs(inputs)
    n_sp = x.ndim - 2
    image_size_ = tuple(x.shape[2:])
    roi = _roi(roi_size, image_size_)
    sw_batch_size = _args.check_int(sw_batch_size, "sw_batch_size", minimum=1)
    if not callable(predictor):
        raise TypeError(f"`predictor` must be callable, got {type(predictor).__name__}")
    overlaps = _per_axis(overlap, n_sp, "overlap", lambda v, n: check_float(v, n, minimum=0.0, below=1.0))
    mode = check_choice(mode, "mode", BLEND_MODES)
    sigmas = _per_axis(sigma_scale, n_sp, "sigma_scale", check_float)
    if mode == "gaussian" and any(s <= 0 for s in sigmas):
        raise ValueError(f"`sigma_scale` must be > 0, got {sigma_scale!r}")
    padding_mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)
    cval = check_float(cval, "cval")
    if padding_mode != "constant" and cval != 0:
        raise ValueError(f"`cval` only applies to padding_mode='constant', got cval={cval} with {padding_mode!r}")
    sw_dev, out_dev = _device(sw_device, "sw_device"), _device(device, "device")
    check_bool(progress, "progress")
    if process_fn is not None and not callable(process_fn):
        raise TypeError(f"`process_fn` must be None or callable, got {type(process_fn).__name__}")
    buffered = _check_buffering(buffer_steps, buffer_dim, n_sp)
    check_bool(with_coord, "with_coord")
    condition = kwargs.pop("condition", None)
    if condition is not None and (not isinstance(condition, mx.array) or condition.shape != x.shape):
        got = tuple(condition.shape) if isinstance(condition, mx.array) else type(condition).__name__
        raise ValueError(f"`condition` must be an mlx.core.array shaped like `inputs` {tuple(x.shape)}, got {got}")

    dtype = x.dtype
    # Pad (PyTorch's order: last axis first) where the window is larger than the input.
    pad = []
    for axis in reversed(range(n_sp)):
        diff = max(roi[axis] - image_size_[axis], 0)
        pad += [diff // 2, diff - diff // 2]
    if any(pad):
        value = cval if padding_mode == "constant" else None
        x = F.pad(x, pad, mode=padding_mode, value=value)
        if condition is not None:
            condition = F.pad(condition, pad, mode=padding_mode, value=value)
    image_size = tuple(x.shape[2:])

    starts = _windows.window_starts(image_size, roi, _windows.scan_interval(image_size, roi, overlaps))
    windows = [tuple(slice(s, s + r) for s, r in zip(corner, roi)) for corner in starts]
    if roi_weight_map is not None:
        base = _weight_map(roi_weight_map, roi, "roi_weight_map").astype(dtype)
        if mx.min(base).item() < 0:
            raise ValueError("`roi_weight_map` must be non-negative")
    else:
        base = mx.array(_windows.importance_map(roi, mode, sigmas)).astype(dtype)[None, None]

    batch = x.shape[0]
    total = len(windows) * batch
    outputs: list[mx.array] = []
    counts: list[mx.array] = []
    keys = None
    bar = _Progress(-(-total // sw_batch_size), progress)
    try:
        for first in range(0, total, sw_batch_size):
            index = range(first, min(first + sw_batch_size, total))
            coords = [[slice(i // len(windows), i // len(windows) + 1), slice(None)] + list(windows[i % len(windows)])
                      for i in index]
            with mx.stream(sw_dev) if sw_dev is not None else nullcontext():
                win = mx.concatenate([x[tuple(c)] for c in coords]) if len(coords) > 1 else x[tuple(coords[0])]
                if condition is not None:
                    kwargs["condition"] = mx.concatenate([condition[tuple(c)] for c in coords])
                out = predictor(win, coords, *args, **kwargs) if with_coord else predictor(win, *args, **kwargs)
                keys, seg = _flatten(out, len(coords), x.ndim)
                if buffered and (len(seg) > 1 or tuple(seg[0].shape[2:]) != roi):
                    raise ValueError(
                        "`buffer_steps` needs a predictor with one output of the window's size "
                        "(MONAI's buffered stitching keeps only the first output); leave it None"
                    )
                weights = base
                if process_fn is not None:
                    seg, weights = process_fn(seg, win, base.reshape(roi))
                    keys, seg = _flatten(seg, len(coords), x.ndim) if keys is None else (keys, tuple(seg))
                    weights = _weight_map(weights, roi, "process_fn's weights").astype(dtype)
            with mx.stream(out_dev) if out_dev is not None else nullcontext():
                _stitch(seg, weights, coords, windows, roi, image_size, batch, dtype, outputs, counts)
                mx.eval(outputs)
            bar.update()
    finally:
        bar.close()

    result = []
    with mx.stream(out_dev) if out_dev is not None else nullcontext():
        for i in range(len(outputs)):
            if mx.min(counts[i]).item() <= 0:
                raise ValueError("the window weights leave some voxels with zero total weight; "
                                 "use positive weights (`roi_weight_map` or `process_fn`)")
            # Replacing the list entries lets MLX divide in place.
            out, outputs[i] = outputs[i], None
            out = out / counts[i]
            counts[i] = None
            result.append(_crop(out, pad, roi, image_size_) if any(pad) else out)
            mx.eval(result[-1])
    return _pack(result, keys)


def _check_inputs(inputs) -> mx.array:
    if not isinstance(inputs, mx.array):
        raise TypeError(f"`inputs` must be an mlx.core.array, got {type(inputs).__name__}")
    if inputs.ndim < 3:
        raise ValueError(f"`inputs` must be (N, C, *spatial), got shape {tuple(inputs.shape)}")
    if inputs.dtype not in FLOAT_DTYPES:
        raise TypeError(f"`inputs` must be float32, float16 or bfloat16, got {inputs.dtype}")
    return inputs


def _check_buffering(buffer_steps, buffer_dim, n_sp: int) -> bool:
    if buffer_steps is not None:
        _args.check_int(buffer_steps, "buffer_steps")
    _args.check_int(buffer_dim, "buffer_dim")
    buffered = buffer_steps is not None and buffer_steps > 0
    if buffered and not -n_sp <= buffer_dim <= n_sp:
        raise ValueError(f"`buffer_dim` must be in [{-n_sp}, {n_sp}], got {buffer_dim}")
    return buffered


def _scaled(window: Sequence[slice], zoom, seg_shape: tuple[int, ...], index: int) -> list[slice]:
    """Where a window's output of size ``seg_shape`` lands in an output scaled by ``zoom``."""
    if zoom is None:
        return list(window)
    target = [slice(int(s.start * z), int(s.stop * z)) for s, z in zip(window, zoom)]
    extent = tuple(s.stop - s.start for s in target)
    if extent != seg_shape:
        roi = tuple(s.stop - s.start for s in window)
        raise ValueError(
            f"`predictor` output {index} of spatial size {seg_shape} for a {roi} window lands on "
            f"{extent} voxels of the scaled output; choose roi_size and overlap so that "
            "overlap * roi_size * output_size / input_size is a whole number"
        )
    return target


def _stitch(seg, weights, coords, windows, roi, image_size, batch, dtype, outputs, counts) -> None:
    """Add one window batch's weighted outputs into the output and weight buffers."""
    w = weights
    for i, p in enumerate(seg):
        seg_shape = tuple(p.shape[2:])
        zoom = None
        if seg_shape != roi:
            zoom = [o / float(r) for o, r in zip(seg_shape, roi)]
            # MONAI rescales from the previous output's map, so chained rescalings
            # (roi -> roi/2 -> roi/4) pick the same voxels as MONAI does.
            w = mx.array(_windows.resize_nearest_exact(np.array(w.astype(mx.float32)), seg_shape)).astype(dtype)
        elif w.shape[2:] != roi:
            w = weights
        if len(outputs) <= i:
            spatial = _out_spatial(image_size, zoom)
            outputs.append(mx.zeros([batch, p.shape[1]] + spatial, dtype=dtype))
            counts.append(_count(windows, w, zoom, seg_shape, i, spatial, dtype))
        elif p.shape[1] != outputs[i].shape[1] or list(outputs[i].shape[2:]) != _out_spatial(image_size, zoom):
            raise ValueError(
                f"`predictor` output {i} changed shape between window batches: now {tuple(p.shape)}"
            )
        p = p.astype(dtype) * w
        for k, c in enumerate(coords):
            target = tuple(c[:2] + _scaled(c[2:], zoom, seg_shape, i))
            outputs[i] = outputs[i].at[target].add(p[k : k + 1])


def _out_spatial(image_size, zoom) -> list[int]:
    return [int(s * z) for s, z in zip(image_size, zoom)] if zoom else list(image_size)


def _count(windows, w: mx.array, zoom, seg_shape, index: int, spatial: list[int], dtype) -> mx.array:
    """Total weight per output voxel over every window of one image."""
    count = mx.zeros([1, 1] + spatial, dtype=dtype)
    for n, window in enumerate(windows, 1):
        count = count.at[(slice(None), slice(None), *_scaled(window, zoom, seg_shape, index))].add(w)
        if n % _COUNT_CHUNK == 0:
            mx.eval(count)
    mx.eval(count)
    return count


def _crop(out: mx.array, pad: list[int], roi, image_size_) -> mx.array:
    """Remove the padding, scaled to the output's size as MONAI does."""
    n_sp = len(roi)
    zoom = [o / r for o, r in zip(out.shape[2:], roi)]
    index = []
    for sp in range(n_sp):
        axis = n_sp - sp - 1
        index.insert(0, slice(int(round(pad[2 * sp] * zoom[axis])),
                              int(round((pad[2 * sp] + image_size_[axis]) * zoom[axis]))))
    return out[(slice(None), slice(None), *index)]
