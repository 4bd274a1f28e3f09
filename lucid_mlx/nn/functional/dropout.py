"""Dropout: ``dropout3d`` (module :class:`lucid_mlx.nn.Dropout3d`)."""

from __future__ import annotations

import mlx.core as mx

from ... import _args
from ...ops import dropout as _dropout


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
    p = _args.check_p(p)
    training = _args.check_bool(training, "training")
    _args.check_bool(inplace, "inplace")
    if not training:
        return x
    return _dropout.dropout3d(x, p, key)
