"""Rank program: one rank misbehaves; the job must end instead of hanging.

Modes (argv[1]):
    raise: rank 1 raises after a few steps; the others keep calling collectives.
    stall: rank 1 sleeps STALL seconds between two collectives; the others wait
        in a collective under a 1.5 s deadline.
    late_init: rank 1 starts STALL seconds late; the others connect under a
        1.5 s deadline.
"""

import os
import sys
import time

import mlx.core as mx

from lucid_mlx import distributed as dist

STALL = 5.0
DEADLINE = 1.5


def step():
    with dist.deadline():
        mx.eval(mx.distributed.all_sum(mx.ones(4)))


def main(mode: str) -> None:
    # Read before init, where the group does not exist yet (mpirun sets the second name).
    culprit = os.environ.get("MLX_RANK", os.environ.get("OMPI_COMM_WORLD_RANK")) == "1"
    if mode == "late_init" and culprit:
        time.sleep(STALL)
    dist.init(timeout=DEADLINE)
    print(f"rank {dist.rank()}: initialised", flush=True)
    for i in range(1000):
        if i == 3 and culprit:
            if mode == "raise":
                raise ValueError(f"deliberate failure on rank {dist.rank()}")
            if mode == "stall":
                time.sleep(STALL)
        step()
    print(f"rank {dist.rank()}: finished all steps", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
