"""Rank program: broadcast_parameters, broadcast of mixed dtypes, the in-sync checks.

Every rank builds the network from a rank-dependent seed, so the ranks
start out of sync; the results (arrays and the checks' answers) go to
OUT_DIR for the test to compare across ranks.
"""

import sys

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

import dp_setup
from lucid_mlx import distributed as dist


def main(out_dir: str) -> None:
    dist.init(timeout=60)
    rank, size = dist.rank(), dist.size()
    root = size - 1
    out = {}

    mx.random.seed(100 + rank)
    model = dp_setup.SmallNet("batch")
    # Distinct buffers too: BatchNorm's running statistics and int64 counter.
    model.norm1.running_mean = mx.full((8,), float(rank))
    model.norm1.num_batches_tracked = mx.array(7 * rank, mx.int64)
    out.update({f"before/{k}": v for k, v in tree_flatten(model.parameters())})
    out["in_sync_before"] = dist.parameters_in_sync(model)

    dist.broadcast_parameters(model, root=root)
    out.update({f"after/{k}": v for k, v in tree_flatten(model.parameters())})
    out["in_sync_after"] = dist.parameters_in_sync(model)

    # One element one ulp off on one rank is enough to be caught, and named.
    if rank == root:
        w = np.array(model.conv2.weight)
        w.reshape(-1)[5] = np.nextafter(w.reshape(-1)[5], np.float32(np.inf))
        model.conv2.weight = mx.array(w)
    out["in_sync_one_ulp"] = dist.parameters_in_sync(model)
    try:
        dist.check_parameters_in_sync(model)
        out["check_message"] = ""
    except RuntimeError as err:
        out["check_message"] = str(err)

    tree = {"flag": mx.array([True, rank == 0, False]),
            "ids": mx.array([[rank, -rank]], mx.int32),
            "half": mx.array([1.5 + rank, -0.0, float("nan") if rank == 0 else 2.0], mx.float16),
            "brain": [mx.array([rank + 0.25], mx.bfloat16)]}
    got = dist.broadcast(tree, root=0)
    out["tree/flag"], out["tree/ids"] = got["flag"], got["ids"]
    out["tree/half"] = got["half"]
    out["tree/brain"] = got["brain"][0].astype(mx.float32)

    # Different sets of arrays: a clear error on every rank, not a hang.
    extra = {"a": mx.zeros(3)} if rank == 0 else {"a": mx.zeros(3), "b": mx.zeros(1)}
    try:
        dist.broadcast(extra)
        out["mismatch_message"] = ""
    except RuntimeError as err:
        out["mismatch_message"] = str(err)

    np.savez(f"{out_dir}/parameters_rank{rank}.npz",
             **{k: np.array(v) if isinstance(v, mx.array) else np.array(v)
                for k, v in out.items()})


if __name__ == "__main__":
    main(sys.argv[1])
