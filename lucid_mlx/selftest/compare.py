"""Each kernel against the portable path, and the portable path against simple references.

Tolerance rule, the one used for every row: the larger side's float32
accumulation is rounded to the dtype at most a few times, so two correct
results differ by a few units of the dtype's epsilon relative to the
reference's largest magnitude.  :func:`tolerance` allows ``ROUNDINGS`` such
units for float16/bfloat16 (the portable path's half-precision GPU
convolutions may round partial sums) and a fixed 1e-4 for float32, where
only the order of the float32 sums differs.  ``tests/test_kernels.py``
compares against float32 results with one rounding (``roundings=1``).

Each convolution row also names the candidate autotuning picks for that
configuration on this machine (:func:`autotune_choice`): the forward's for
the forward row, the backward's for the gradient rows.
"""

from __future__ import annotations

from typing import Callable

import mlx.core as mx
import numpy as np

from ..bench.runner import median_time
from ..kernels import conv as kconv
from ..kernels import pad as kpad
from ..ops import autotune, dispatch
from ..ops import pad as ppad
from .._args import PAD_MODES
from . import cases

ROUNDINGS = 8
FLOAT32_TOLERANCE = 1e-4


def tolerance(dtype: mx.Dtype, roundings: int = ROUNDINGS) -> float:
    """Largest error allowed, relative to the reference's largest magnitude."""
    if dtype == mx.float32:
        return FLOAT32_TOLERANCE
    mantissa = {mx.float16: 10, mx.bfloat16: 7}[dtype]
    return roundings * 2.0**-mantissa


def conv_paths(case: cases.ConvCase, x, w, gy, conv_fn) -> dict[str, mx.array]:
    """Forward and both gradients of ``conv_fn`` (kernel or portable)."""
    y, (gx, gw) = mx.vjp(lambda x, w: [conv_fn(x, w, *cases.conv_args(case))], [x, w], [gy])
    return {"forward": y[0], "grad_input": gx, "grad_weight": gw}


def pad_paths(x, pairs, mode, gy, pad_fn) -> dict[str, mx.array]:
    y, (gx,) = mx.vjp(lambda x: [pad_fn(x, pairs, mode, 0.5)], [x], [gy])
    return {"forward": y[0], "grad": gx}


def _timed(fn: Callable[[], dict]) -> tuple[dict, float]:
    out = fn()
    mx.eval(list(out.values()))
    seconds, _, _ = median_time(lambda: mx.eval(list(fn().values())), warmup=0, repeats=3)
    return out, seconds * 1e3


def _max_err(a: mx.array, b: mx.array) -> float:
    return float(mx.abs(a.astype(mx.float32) - b.astype(mx.float32)).max())


def _row(kernel: str, config: str, dtype, err: float, scale: float, times=("", ""), choice: str = "") -> tuple:
    ok = err <= tolerance(dtype) * max(1.0, scale)
    return (kernel, config, str(dtype).split(".")[-1], f"{err:.2e}", *times, choice, ok)


def autotune_choice(case: cases.ConvCase, dtype=mx.float32) -> tuple[str, str]:
    """The (forward, backward) candidates autotuning picks for ``case`` on this machine."""
    x, w, _ = cases.conv_inputs(case, dtype)
    with autotune.autotuning(True):
        return dispatch.conv3d_plan(x, w, *cases.conv_args(case)).labels


def _both(choices: tuple[str, str]) -> str:
    forward, backward = choices
    return forward if forward == backward else f"forward: {forward}; backward: {backward}"


def _choice(choices: tuple[str, str] | None, part: str) -> str:
    if choices is None:
        return ""
    return choices[0] if part == "forward" else choices[1]


def _compare(kernel, config, dtype, kernel_fn, portable_fn, choices=None) -> list[tuple]:
    try:
        got, t_kernel = _timed(kernel_fn)
    except Exception as error:  # report any Metal error as a failed row
        return [(kernel, config, str(dtype), f"error: {type(error).__name__}: {error}", "", "", "", False)]
    want, t_portable = _timed(portable_fn)
    return [
        _row(f"{kernel} {part}", config, dtype, _max_err(value, want[part]),
             float(mx.abs(want[part].astype(mx.float32)).max()), (f"{t_kernel:.2f}", f"{t_portable:.2f}"),
             _choice(choices, part))
        for part, value in got.items()
    ]


def metal_rows() -> list[tuple]:
    """Every kernel on the GPU against the portable path, over the case tables."""
    rows = []
    for dtype in cases.DTYPES:
        for case in cases.CONV_CASES:
            x, w, gy = cases.conv_inputs(case, dtype)
            rows += _compare(
                "grouped_conv3d", case.name, dtype,
                lambda: conv_paths(case, x, w, gy, kconv.grouped_conv3d),
                lambda: conv_paths(case, x, w, gy, dispatch.portable_conv3d),
                autotune_choice(case, dtype),
            )
        for mode in PAD_MODES:
            for case in cases.pad_cases(mode):
                x = mx.random.normal(case.x_shape, key=mx.random.key(1)).astype(dtype)
                gy = mx.random.normal(kpad.padded_shape(x.shape, case.pairs), key=mx.random.key(2)).astype(dtype)
                rows += _compare(
                    f"pad3d_{mode}", case.name, dtype,
                    lambda: pad_paths(x, case.pairs, mode, gy, kpad.pad3d),
                    lambda: pad_paths(x, case.pairs, mode, gy, ppad.pad3d),
                )
    return rows


def _block_diagonal(w: mx.array, groups: int, c_in: int) -> mx.array:
    """The dense weight (C_out, C_in, ...) a grouped weight stands for: zeros off its groups."""
    c_out, cg = w.shape[:2]
    og = c_out // groups
    dense = mx.zeros((c_out, c_in, *w.shape[2:]), dtype=w.dtype)
    for g in range(groups):
        dense[g * og : (g + 1) * og, g * cg : (g + 1) * cg] = w[g * og : (g + 1) * og]
    return dense


_NP_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def portable_rows() -> list[tuple]:
    """The portable path where the kernels cannot run: grouped convolutions
    against the dense convolution of their block-diagonal weight, padding
    against ``numpy.pad``."""
    rows = []
    for case in cases.CONV_CASES:
        x, w, _ = cases.conv_inputs(case)
        got = dispatch.portable_conv3d(x, w, *cases.conv_args(case))
        stride, pads, dilation, groups = cases.conv_args(case)
        want = dispatch.DENSE.forward(x, _block_diagonal(w, groups, x.shape[1]), stride, pads, dilation, 1)
        rows.append(_row("portable conv3d", case.name, mx.float32, _max_err(got, want),
                         float(mx.abs(want).max()), choice=_both(autotune_choice(case))))
    for mode in PAD_MODES:
        for case in cases.PAD_CASES:
            x = mx.random.normal(case.x_shape, key=mx.random.key(1))
            got = np.array(ppad.pad3d(x, case.pairs, mode, 0.0))
            want = np.pad(np.array(x), ((0, 0), (0, 0), *case.pairs), mode=_NP_MODES[mode])
            err = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
            rows.append((f"portable pad3d_{mode}", case.name, "float32", f"{err:.2e}", "", "", "", err == 0.0))
    return rows
