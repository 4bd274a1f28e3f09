"""Sliding-window inference with MONAI 1.6.1's arguments and results, on MLX arrays.

Where a MONAI script has ``from monai.inferers import sliding_window_inference``,
write ``from lucid_mlx.inferers import sliding_window_inference``.
"""

from .inferer import SlidingWindowInferer
from .sliding_window import sliding_window_inference

__all__ = ["sliding_window_inference", "SlidingWindowInferer"]
