"""The call-accumulate-aggregate cycle of MONAI's cumulative metrics."""

from __future__ import annotations

from typing import Any, Sequence, Union

import mlx.core as mx
import numpy as np

ArrayLike = Union[mx.array, np.ndarray]


def to_numpy(value, name: str) -> np.ndarray:
    """An ``mx.array`` or NumPy array as a NumPy array (bool, integer or float)."""
    if isinstance(value, mx.array):
        # NumPy has no bfloat16.
        return np.array(value.astype(mx.float32) if value.dtype == mx.bfloat16 else value)
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"`{name}` must be an mlx.core.array or a numpy.ndarray, got {type(value).__name__}")


class CumulativeIterationMetric:
    """A metric computed per batch, kept, and aggregated at the end.

    Calling the metric computes the (batch, class) scores of one batch,
    appends them to a buffer and returns them; :meth:`aggregate` reduces
    the whole buffer and :meth:`reset` empties it.  Both batch-first arrays
    (B, C, *spatial) and lists of channel-first arrays (C, *spatial) are
    accepted, as MONAI does after ``decollate_batch``.
    """

    def __init__(self) -> None:
        self._rows: list[np.ndarray] = []

    def _compute(self, y_pred: np.ndarray, y: np.ndarray, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, y_pred: Union[ArrayLike, Sequence[ArrayLike]], y: Union[ArrayLike, Sequence[ArrayLike]],
                 **kwargs: Any) -> mx.array:
        """Scores of one batch, (B, C) float32, also added to the buffer."""
        if isinstance(y_pred, (list, tuple)) or isinstance(y, (list, tuple)):
            if not isinstance(y_pred, (list, tuple)) or not isinstance(y, (list, tuple)) or len(y_pred) != len(y):
                raise ValueError("`y_pred` and `y` must both be batch-first arrays or lists of the same length")
            if not y_pred:
                raise ValueError("`y_pred` and `y` must not be empty lists")
            rows = [self._compute(to_numpy(p, "y_pred")[None], to_numpy(t, "y")[None], **kwargs)
                    for p, t in zip(y_pred, y)]
            scores = np.concatenate(rows, axis=0)
        else:
            scores = self._compute(to_numpy(y_pred, "y_pred"), to_numpy(y, "y"), **kwargs)
        self._rows.append(scores)
        return mx.array(scores)

    def get_buffer(self) -> mx.array | None:
        """Every score added since the last :meth:`reset`, batch first, or None."""
        return mx.array(np.concatenate(self._rows, axis=0)) if self._rows else None

    def reset(self) -> None:
        """Forget the scores added so far."""
        self._rows = []

    def __len__(self) -> int:
        return sum(len(r) for r in self._rows)
