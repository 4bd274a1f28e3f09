"""Data-parallel training on MLX's distributed engine (``mx.distributed``).

A thin layer: the ranks, the backends (ring, MPI, jaccl, nccl) and the
launcher (``mlx.launch``) are MLX's.  What it adds is what data-parallel 3-D
training needs to be correct and to fail loudly:

* :func:`init` that ends the job on an uncaught exception or a stalled
  peer instead of hanging, :func:`rank`, :func:`size`, :func:`is_main`,
  :func:`barrier`, :func:`deadline`;
* :func:`shard_sequence`, :func:`shard_indices` and :func:`shard_batch`
  to split data by rank, evenly or not;
* :func:`broadcast_parameters` and :func:`parameters_in_sync`;
* :func:`reduce_sum` and :func:`reduce_mean` for metrics;
* :func:`run_on_main` and :func:`main_print` for saving and logging once;
* :func:`all_sum` and :func:`all_gather` with the job-wide gradient (see
  :class:`lucid_mlx.nn.SyncBatchNorm3d`).

Gradients are averaged with MLX's own ``mlx.nn.average_gradients``.  In a
job of one rank nothing here communicates (shards are the whole data,
reductions return their input), so one script runs alone or on many ranks.

Example:
    >>> from lucid_mlx import distributed as dist
    >>> dist.init(timeout=300)
    >>> model = dist.broadcast_parameters(lucid_mlx.nn.SyncBatchNorm3d.convert_sync_batchnorm(net))
    >>> x, y = dist.shard_batch((images, labels))
    >>> loss, grads = loss_and_grad(model, x, y)
    >>> optimizer.update(model, mlx.nn.average_gradients(grads))
    >>> with dist.deadline():
    ...     mx.eval(model.parameters(), optimizer.state)
"""

from .collectives import all_gather, all_sum
from .failfast import deadline
from .group import Group, barrier, get_group, init, is_main, rank, size
from .main_process import main_print, run_on_main
from .metrics import reduce_mean, reduce_sum
from .parameters import (
    broadcast,
    broadcast_parameters,
    check_parameters_in_sync,
    parameters_in_sync,
)
from .sharding import shard_batch, shard_bounds, shard_indices, shard_sequence

__all__ = [
    "Group",
    "init",
    "get_group",
    "rank",
    "size",
    "is_main",
    "barrier",
    "deadline",
    "all_sum",
    "all_gather",
    "shard_bounds",
    "shard_indices",
    "shard_sequence",
    "shard_batch",
    "broadcast",
    "broadcast_parameters",
    "parameters_in_sync",
    "check_parameters_in_sync",
    "reduce_sum",
    "reduce_mean",
    "run_on_main",
    "main_print",
]
