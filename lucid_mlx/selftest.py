"""Check lucid_mlx's Metal kernels on this machine: ``python -m lucid_mlx.selftest``.

On a Mac with Metal, every kernel runs on the GPU against the portable (pure
MLX) path over the configuration table below -- forward and all gradients --
and a table of kernel, configuration, max abs error and both times is
printed.  The exit status is 1 on any mismatch or kernel error.

Without Metal it says so, checks the portable path against a small NumPy
reference instead, and exits 0 unless that check fails.

The same tables drive ``tests/test_kernels.py``, which executes the kernel
bodies on the CPU.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, NamedTuple

import mlx.core as mx
import numpy as np

from .kernels import conv as kconv
from .kernels import pad as kpad
from .kernels.library import PAD_MODES
from .ops import grouped
from .ops import pad as ppad


class ConvCase(NamedTuple):
    name: str
    x_shape: tuple
    w_shape: tuple
    stride: tuple
    pads: tuple
    dilation: tuple
    groups: int


class PadCase(NamedTuple):
    name: str
    x_shape: tuple
    pairs: tuple


P1 = ((1, 1),) * 3
CONV_CASES = (
    ConvCase("depthwise k3 p1", (2, 4, 5, 6, 7), (4, 1, 3, 3, 3), (1, 1, 1), P1, (1, 1, 1), 4),
    ConvCase("depthwise x2 multiplier, stride 2", (1, 3, 7, 6, 5), (6, 1, 3, 3, 3), (2, 2, 2), P1, (1, 1, 1), 3),
    ConvCase("groups 2, 3 out per group", (2, 4, 5, 5, 5), (6, 2, 3, 3, 3), (1, 1, 1), P1, (1, 1, 1), 2),
    ConvCase(
        "groups 3, kernel (3,1,2), stride (1,2,3), asymmetric pads, dilation (2,1,1)",
        (1, 6, 7, 8, 9), (3, 2, 3, 1, 2), (1, 2, 3), ((2, 0), (0, 1), (1, 1)), (2, 1, 1), 3,
    ),
    ConvCase("depthwise dilation 2, pad 2", (1, 2, 9, 8, 7), (2, 1, 3, 3, 3), (1, 1, 1), ((2, 2),) * 3, (2, 2, 2), 2),
    ConvCase("groups 2, k2, stride 3 > kernel, odd sizes", (2, 4, 7, 5, 11), (4, 2, 2, 2, 2), (3, 3, 3), ((0, 0),) * 3, (1, 1, 1), 2),
    ConvCase("groups 4, k1", (1, 8, 3, 4, 5), (8, 2, 1, 1, 1), (1, 1, 1), ((0, 0),) * 3, (1, 1, 1), 4),
    ConvCase("groups 2, even k4, 'same' pads (1,2)", (1, 2, 6, 6, 6), (4, 1, 4, 4, 4), (1, 1, 1), ((1, 2),) * 3, (1, 1, 1), 2),
    ConvCase("groups 8, 864 weights: chunked weight gradient", (2, 16, 5, 6, 4), (16, 2, 3, 3, 3), (1, 1, 1), P1, (1, 1, 1), 8),
)

PAD_CASES = (
    PadCase("asymmetric", (2, 3, 4, 5, 6), ((1, 2), (0, 3), (2, 1))),
    PadCase("widest legal", (1, 2, 4, 5, 6), ((3, 3), (4, 4), (5, 5))),
    PadCase("size-1 depth", (1, 2, 1, 3, 4), ((0, 0), (1, 2), (3, 0))),
)
# Cases only some modes accept: circular up to the size, replicate and
# constant beyond it, constant negative (cropping).
EXTRA_PAD_CASES = {
    "circular": (PadCase("pads equal to sizes", (1, 2, 3, 4, 5), ((3, 3), (4, 0), (0, 5))),),
    "replicate": (PadCase("pads beyond sizes", (1, 2, 2, 3, 2), ((5, 4), (0, 7), (6, 6))),),
    "constant": (PadCase("negative (crop) and beyond", (1, 2, 4, 5, 6), ((-1, 6), (2, -2), (-3, -1))),),
}


def pad_cases(mode: str) -> tuple[PadCase, ...]:
    """The pad configurations a mode is checked over."""
    return PAD_CASES + EXTRA_PAD_CASES.get(mode, ())


def conv_inputs(case: ConvCase, dtype=mx.float32, seed: int = 0):
    """Seeded x, w and output cotangent for ``case``."""
    out = kconv.output_size(case.x_shape[2:], case.w_shape[2:], case.stride, case.pads, case.dilation)
    keys = mx.random.split(mx.random.key(seed), 3)
    x = mx.random.normal(case.x_shape, key=keys[0]).astype(dtype)
    w = mx.random.normal(case.w_shape, key=keys[1]).astype(dtype)
    gy = mx.random.normal((case.x_shape[0], case.w_shape[0], *out), key=keys[2]).astype(dtype)
    return x, w, gy


def conv_args(case: ConvCase) -> tuple:
    return case.stride, case.pads, case.dilation, case.groups


def conv_paths(case: ConvCase, x, w, gy, conv_fn) -> dict[str, mx.array]:
    """Forward and both gradients of ``conv_fn`` (kernel or portable)."""
    y, (gx, gw) = mx.vjp(lambda x, w: [conv_fn(x, w, *conv_args(case))], [x, w], [gy])
    return {"forward": y[0], "grad_input": gx, "grad_weight": gw}


def pad_paths(x, pairs, mode, gy, pad_fn) -> dict[str, mx.array]:
    y, (gx,) = mx.vjp(lambda x: [pad_fn(x, pairs, mode, 0.5)], [x], [gy])
    return {"forward": y[0], "grad": gx}


def _timed(fn: Callable[[], dict], reps: int = 3) -> tuple[dict, float]:
    out = fn()
    mx.eval(list(out.values()))
    start = time.perf_counter()
    for _ in range(reps):
        mx.eval(list(fn().values()))
    return out, (time.perf_counter() - start) / reps * 1e3


TOLERANCE = {mx.float32: 1e-4, mx.float16: 2e-2, mx.bfloat16: 1.5e-1}


def _max_err(a: mx.array, b: mx.array) -> float:
    return float(mx.abs(a.astype(mx.float32) - b.astype(mx.float32)).max())


DTYPES = (mx.float32, mx.float16, mx.bfloat16)


def _rows_metal() -> list[tuple]:
    rows = []
    for dtype in DTYPES:
        for case in CONV_CASES:
            x, w, gy = conv_inputs(case, dtype)
            rows += _compare(
                "grouped_conv3d", case.name, dtype,
                lambda: conv_paths(case, x, w, gy, kconv.grouped_conv3d),
                lambda: conv_paths(case, x, w, gy, grouped.grouped_conv3d),
            )
        for mode in PAD_MODES:
            for case in pad_cases(mode):
                x = mx.random.normal(case.x_shape, key=mx.random.key(1)).astype(dtype)
                gy = mx.random.normal(kpad.padded_shape(x.shape, case.pairs), key=mx.random.key(2)).astype(dtype)
                rows += _compare(
                    f"pad3d_{mode}", case.name, dtype,
                    lambda: pad_paths(x, case.pairs, mode, gy, kpad.pad3d),
                    lambda: pad_paths(x, case.pairs, mode, gy, ppad.pad3d),
                )
    return rows


def _compare(kernel, config, dtype, kernel_fn, portable_fn) -> list[tuple]:
    try:
        got, t_kernel = _timed(kernel_fn)
    except Exception as error:  # report any Metal error as a failed row
        return [(kernel, config, str(dtype), f"error: {type(error).__name__}: {error}", "", "", False)]
    want, t_portable = _timed(portable_fn)
    rows = []
    for part, value in got.items():
        err = _max_err(value, want[part])
        scale = max(1.0, float(mx.abs(want[part].astype(mx.float32)).max()))
        ok = err <= TOLERANCE[dtype] * scale
        rows.append((f"{kernel} {part}", config, str(dtype).split(".")[-1], f"{err:.2e}", f"{t_kernel:.2f}", f"{t_portable:.2f}", ok))
    return rows


def _numpy_conv(x, w, stride, pads, dilation, groups):
    """Direct float64 grouped conv3d, one einsum per kernel tap."""
    xp = np.pad(x, ((0, 0), (0, 0), *pads))
    n, c_in = x.shape[:2]
    c_out, cg, *k = w.shape
    out = [(xp.shape[2 + a] - dilation[a] * (k[a] - 1) - 1) // stride[a] + 1 for a in range(3)]
    y = np.zeros((n, c_out, *out))
    og = c_out // groups
    for g in range(groups):
        xs = xp[:, g * cg : (g + 1) * cg]
        for kd, kh, kw in np.ndindex(*k):
            win = xs[
                :, :,
                kd * dilation[0] : kd * dilation[0] + (out[0] - 1) * stride[0] + 1 : stride[0],
                kh * dilation[1] : kh * dilation[1] + (out[1] - 1) * stride[1] + 1 : stride[1],
                kw * dilation[2] : kw * dilation[2] + (out[2] - 1) * stride[2] + 1 : stride[2],
            ]
            y[:, g * og : (g + 1) * og] += np.einsum("ncdhw,oc->nodhw", win, w[g * og : (g + 1) * og, :, kd, kh, kw])
    return y


_NP_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _rows_portable() -> list[tuple]:
    rows = []
    for case in CONV_CASES:
        x, w, _ = conv_inputs(case)
        got = grouped.grouped_conv3d(x, w, *conv_args(case))
        want = _numpy_conv(np.array(x, np.float64), np.array(w, np.float64), *conv_args(case))
        err = float(np.abs(np.array(got) - want).max())
        rows.append(("portable conv3d", case.name, "float32", f"{err:.2e}", "", "", err < 1e-4 * max(1.0, np.abs(want).max())))
    for mode in PAD_MODES:
        for case in PAD_CASES:
            x = mx.random.normal(case.x_shape, key=mx.random.key(1))
            got = np.array(ppad.pad3d(x, case.pairs, mode, 0.0))
            want = np.pad(np.array(x), ((0, 0), (0, 0), *case.pairs), mode=_NP_MODES[mode])
            err = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
            rows.append((f"portable pad3d_{mode}", case.name, "float32", f"{err:.2e}", "", "", err == 0.0))
    return rows


def _print(rows: list[tuple]) -> None:
    header = ("kernel", "configuration", "dtype", "max abs err", "kernel ms", "portable ms", "")
    table = [header] + [(*r[:-1], "ok" if r[-1] else "MISMATCH") for r in rows]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(str(v).ljust(wd) for v, wd in zip(r, widths)).rstrip())


def main(metal: bool | None = None) -> int:
    """Run the self-test and return the exit status.

    Args:
        metal: Check the kernels (True) or only the portable path (False).
            Default: whether MLX reports a Metal device.
    """
    if metal is None:
        metal = mx.metal.is_available()
    if metal:
        # The default device on Apple silicon is the GPU, where kernels run.
        print(f"lucid_mlx selftest: Metal kernels on {mx.default_device()} against the portable path")
        rows = _rows_metal()
    else:
        print(
            "lucid_mlx selftest: Metal is not available on this machine, so the kernels "
            "cannot run here; checking the portable path against NumPy instead."
        )
        rows = _rows_portable()
    _print(rows)
    failed = sum(not r[-1] for r in rows)
    print(f"{len(rows) - failed}/{len(rows)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
