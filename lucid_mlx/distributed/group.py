"""The process group: starting MLX's distributed backend, rank, size, barrier.

Everything here goes through ``mx.distributed``; lucid_mlx adds no backend of
its own.  Without :func:`init`, the first use of the group falls back to
``mx.distributed.init()``, which returns a group of size 1 when the process
was not started by a launcher, so single-process scripts need no changes.
"""

from __future__ import annotations

import os
from typing import Optional

import mlx.core as mx

from . import failfast

Group = mx.distributed.Group

_BACKENDS = ("any", "ring", "mpi", "nccl", "jaccl")
_group: Optional[Group] = None


def init(backend: str = "any", *, strict: bool = False, fail_fast: bool = True,
         timeout: Optional[float] = None) -> Group:
    """Start MLX's distributed backend and make the job fail fast.

    Call it once, before any other use of the group; later calls return the
    same group.  Under ``mlx.launch`` (ring, jaccl, nccl) or ``mpirun``
    (mpi) it joins the job; run plainly it returns a group of size 1.

    Failing fast means two things, both only when there is more than one rank:

    * An uncaught exception on one rank prints the rank and the traceback
      and ends that process at once with status 1, skipping interpreter
      shutdown.  With the ring backend the other ranks then lose their
      connection and fail within seconds instead of waiting; with MPI a
      normal interpreter shutdown leaves the whole job hanging.
    * ``timeout`` sets the deadline of :func:`deadline` blocks and of this
      package's own collectives (broadcast, checks, reductions, barrier)
      and of connecting here.  MLX's collectives have no timeout of their
      own (a rank that stalls makes the others wait forever, on every
      backend), so the deadline is a watchdog thread that ends the process
      with status 1 and a message naming the rank.  It cannot interrupt a
      collective; it ends the process waiting in it.  Wrap the evaluation
      of each training step in ``with deadline():`` to cover it too.

    Args:
        backend (str): ``"any"``, ``"ring"``, ``"mpi"``, ``"nccl"`` or
            ``"jaccl"``, as ``mx.distributed.init``. Default: ``"any"``.
        strict (bool): Raise if the backend cannot start instead of
            returning a group of size 1. Default: ``False``.
        fail_fast (bool): Install the exception hook described above.
            Default: ``True``.
        timeout (float, optional): Seconds a collective may take before the
            process ends; ``None`` waits forever. Default: ``None``.

    Returns:
        mlx.core.distributed.Group: the global group.

    Example:
        >>> from lucid_mlx import distributed as dist
        >>> group = dist.init(timeout=120)
        >>> dist.main_print(f"training on {dist.size()} ranks")
    """
    global _group
    if not isinstance(backend, str) or backend not in _BACKENDS:
        raise ValueError(f"`backend` must be one of {_BACKENDS}, got {backend!r}")
    for value, name in ((strict, "strict"), (fail_fast, "fail_fast")):
        if not isinstance(value, bool):
            raise TypeError(f"`{name}` must be a bool, got {value!r}")
    failfast.set_default_timeout(timeout)
    # Until connected, the launcher's rank variable is the best name for this process.
    launcher_rank = os.environ.get("MLX_RANK", os.environ.get("OMPI_COMM_WORLD_RANK"))
    if launcher_rank is not None and launcher_rank.isdigit():
        failfast.set_identity(int(launcher_rank), None)
    with failfast.deadline(timeout, "connecting to the other ranks", force=True):
        group = mx.distributed.init(strict=strict, backend=backend)
    _group = group
    failfast.set_identity(group.rank(), group.size())
    if group.size() == 1:
        failfast.set_default_timeout(None)  # nothing to wait for: no-ops, as promised
    elif fail_fast:
        failfast.install_excepthook()
    return group


def get_group(group: Optional[Group] = None) -> Group:
    """``group`` if given, else the global group (started on first use)."""
    global _group
    if group is not None:
        if not isinstance(group, Group):
            raise TypeError(f"`group` must be an mlx.core.distributed.Group or None, "
                            f"got {type(group).__name__}")
        return group
    if _group is None:
        _group = mx.distributed.init()
        failfast.set_identity(_group.rank(), _group.size())
    return _group


def rank(group: Optional[Group] = None) -> int:
    """This process's rank in ``group`` (the global group by default), from 0."""
    return get_group(group).rank()


def size(group: Optional[Group] = None) -> int:
    """The number of ranks in ``group`` (the global group by default)."""
    return get_group(group).size()


def is_main(group: Optional[Group] = None) -> bool:
    """Whether this process is rank 0, the one that saves, prints and logs."""
    return rank(group) == 0


def barrier(group: Optional[Group] = None) -> None:
    """Return once every rank has reached its own ``barrier`` call.

    MLX has no barrier primitive; this is an ``all_sum`` of one number,
    evaluated under the :func:`deadline` of :func:`init`.
    """
    g = get_group(group)
    if g.size() == 1:
        return
    with failfast.deadline(None, "a barrier"):
        mx.eval(mx.distributed.all_sum(mx.array(1.0), group=g, stream=mx.cpu))
