"""Moving test data between NumPy and MLX, and comparing it per dtype.

Low-precision inputs are rounded to their dtype *before* the float64
reference sees them, so the tolerance only has to cover the arithmetic, not
the rounding of the data.  Tolerances are relative to the reference's scale
(its largest magnitude): a convolution's output near zero is a cancellation
of terms of that size, so an element-wise relative bound would be meaningless
there.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}

# dtype -> (rtol, atol as a fraction of the reference's largest magnitude).
# Half precision gets 5 machine epsilons (2^-10 float16, 2^-7 bfloat16) of
# scale.  Measured at 125 taps: MLX's own convolution rounds once (0.3 eps);
# PyTorch's CPU float16 input gradient reaches 3.1 eps; lucid_mlx's
# shifted-slice depthwise path reached 2.5-3 eps when it accumulated in the
# input dtype (it now accumulates in float32, see lucid_mlx/ops/depthwise.py).
# float32 (1e-5) is ~10x the largest error seen in the tables.  The rule is
# the self-test's (lucid_mlx.selftest.compare): a number of roundings of the
# dtype's epsilon, here 5, against a float64 reference.
TOLERANCES = {
    mx.float32: (1e-5, 1e-5),
    mx.float16: (5e-3, 5e-3),
    mx.bfloat16: (4e-2, 4e-2),
}


def to_np(a: mx.array) -> np.ndarray:
    """float64 NumPy copy of any floating MLX array (bfloat16 included)."""
    return np.array(a.astype(mx.float32)).astype(np.float64)


def to_mx(a: np.ndarray, dtype=mx.float32) -> mx.array:
    return mx.array(np.asarray(a, np.float32)).astype(dtype)


def rounded(rng: np.random.Generator, shape, dtype=mx.float32, scale: float = 1.0):
    """A seeded normal array as (mx.array in ``dtype``, its exact float64 values)."""
    a = to_mx(rng.normal(scale=scale, size=shape), dtype)
    return a, to_np(a)


def assert_close(got: mx.array, want: np.ndarray, dtype=None, what: str = "") -> None:
    dtype = got.dtype if dtype is None else dtype
    assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {got.shape} != {want.shape}"
    rtol, frac = TOLERANCES[dtype]
    scale = float(np.abs(want).max()) if want.size else 0.0
    np.testing.assert_allclose(
        to_np(got), want, rtol=rtol, atol=frac * scale + 1e-30, err_msg=what
    )


def torch_pad_order(pairs) -> tuple[int, ...]:
    """((d_lo, d_hi), (h_lo, h_hi), (w_lo, w_hi)) -> PyTorch's (w_lo, w_hi, h_lo, ...)."""
    flat: list[int] = []
    for lo, hi in reversed(pairs):
        flat += [lo, hi]
    return tuple(flat)
