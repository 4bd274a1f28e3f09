"""Segmentation metrics with MONAI 1.6.1's conventions, on MLX or NumPy arrays.

Where a MONAI script has ``from monai.metrics import DiceMetric``, write
``from lucid_mlx.metrics import DiceMetric``.  Scores are computed in NumPy
(the Hausdorff distance with SciPy, imported only when used) and returned as
float32 ``mx.array`` tables of (batch, class).
"""

from .hausdorff_distance import HausdorffDistanceMetric, compute_hausdorff_distance
from .meandice import DiceMetric, compute_dice
from .metric import CumulativeIterationMetric
from .reduction import do_metric_reduction

__all__ = [
    "DiceMetric",
    "compute_dice",
    "HausdorffDistanceMetric",
    "compute_hausdorff_distance",
    "do_metric_reduction",
    "CumulativeIterationMetric",
]
