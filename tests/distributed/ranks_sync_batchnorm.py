"""Rank program: SyncBatchNorm3d on this rank's shard of every case; results to OUT_DIR.

Also runs a naive synchronised batch norm whose statistics go through MLX's
plain ``all_sum`` (whose gradient is the local cotangent), so the test can
show that its input gradients are wrong where SyncBatchNorm3d's are right.
Every rank runs every case in the same order: no rank skips a collective.
"""

import sys

import mlx.core as mx
import numpy as np

import syncbn_cases as cases_mod
from lucid_mlx import distributed as dist
from lucid_mlx.nn import SyncBatchNorm3d


def plain_all_sum_batch_norm(x, weight, bias, eps=1e-5):
    """What one writes first: all_sum of (sum, sum of squares, count), MLX's own vjp."""
    c = x.shape[1]
    axes = (0, 2, 3, 4)
    local = mx.stack([x.sum(axis=axes), mx.square(x).sum(axis=axes),
                      mx.full((c,), float(x.size // c))])
    total = mx.distributed.all_sum(local)
    mean = total[0] / total[2]
    var = total[1] / total[2] - mx.square(mean)
    shape = (1, c, 1, 1, 1)
    y = (x - mean.reshape(shape)) * mx.rsqrt(var.reshape(shape) + eps)
    return y * weight.reshape(shape) + bias.reshape(shape)


def main(out_dir: str) -> None:
    dist.init(timeout=60)
    rank = dist.rank()
    for case in cases_mod.cases(dist.size()):
        xs, g, x_eval, weight, bias = cases_mod.data(case)
        shard = dist.shard_batch
        layer = cases_mod.make_layer(SyncBatchNorm3d, case, weight, bias)
        result = cases_mod.run(layer, case, [shard(x) for x in xs], shard(g), shard(x_eval))

        x_last, g_last = mx.array(shard(xs[-1])), mx.array(shard(g))
        w, b = mx.array(weight), mx.array(bias)
        y, vjp = mx.vjp(lambda x: plain_all_sum_batch_norm(x, w, b), [x_last], [g_last])
        result["plain_y"], result["plain_gx"] = np.array(y[0]), np.array(vjp[0])
        np.savez(f"{out_dir}/{case.name}_rank{rank}.npz", **result)
    print(f"rank {rank}: done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
