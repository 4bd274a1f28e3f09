"""The configurations the self-test (and ``tests/test_kernels.py``) check every kernel over.

Strides, dilations, odd and asymmetric sizes, groups with channel
multipliers, depthwise layers, and every padding mode with its edge cases.
"""

from __future__ import annotations

from typing import NamedTuple

import mlx.core as mx

from ..ops.plan import output_size

DTYPES = (mx.float32, mx.float16, mx.bfloat16)


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
    out = output_size(case.x_shape[2:], case.w_shape[2:], case.stride, case.pads, case.dilation)
    keys = mx.random.split(mx.random.key(seed), 3)
    x = mx.random.normal(case.x_shape, key=keys[0]).astype(dtype)
    w = mx.random.normal(case.w_shape, key=keys[1]).astype(dtype)
    gy = mx.random.normal((case.x_shape[0], case.w_shape[0], *out), key=keys[2]).astype(dtype)
    return x, w, gy


def conv_args(case: ConvCase) -> tuple:
    return case.stride, case.pads, case.dilation, case.groups
