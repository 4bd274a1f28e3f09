"""Channel dropout for NCDHW arrays (``dropout3d``)."""

from __future__ import annotations

import mlx.core as mx

from .. import _args


def check_p(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"`p` must be a number in [0, 1], got {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability `p` must be between 0 and 1, got {p}")
    return float(p)


def dropout3d(input: mx.array, p: float = 0.5, training: bool = True, inplace: bool = False,
              *, key: mx.array | None = None) -> mx.array:
    """Zero whole (D, H, W) channels with probability ``p``, as ``torch.nn.functional.dropout3d``.

    Kept channels are scaled by ``1 / (1 - p)`` so the expected value is
    unchanged; ``training=False`` returns the input.  ``inplace`` is accepted
    for PyTorch compatibility and ignored (MLX arrays are values).  ``key``
    (optional, MLX-only) makes the mask reproducible without touching the
    global seed.  See :class:`lucid_mlx.nn.Dropout3d`.

    Shape:
        - Input: (N, C, D, H, W) or (C, D, H, W)
        - Output: same shape as input
    """
    x = _args.check_array(input, "input", (4, 5), "(N, C, D, H, W) or (C, D, H, W)")
    p = check_p(p)
    if not isinstance(training, bool):
        raise TypeError(f"`training` must be a bool, got {training!r}")
    if not isinstance(inplace, bool):
        raise TypeError(f"`inplace` must be a bool, got {inplace!r}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0  # PyTorch's special case: no 0/0 scale; NaN stays NaN
    # One draw per (sample, channel), broadcast over the volume.
    mask_shape = x.shape[:-3] + (1, 1, 1)
    keep = mx.random.bernoulli(1 - p, mask_shape, key=key)
    return x * (keep.astype(x.dtype) * (1 / (1 - p))).astype(x.dtype)
