"""Rank program: gradients through all_sum and all_gather, lucid_mlx's and MLX's plain ones.

Rank r holds x_r = [r + 1, 2 (r + 1)] and weighs the collective's output by
c_r (different on every rank); the test derives the expected gradients by
hand.  Results go to OUT_DIR.
"""

import sys

import mlx.core as mx
import numpy as np

from lucid_mlx import distributed as dist


def main(out_dir: str) -> None:
    dist.init(timeout=60)
    r, n = dist.rank(), dist.size()
    x = mx.array([r + 1.0, 2.0 * (r + 1)])
    c = mx.array([10.0 ** r, -(r + 1.0)])
    c_gather = mx.arange(2 * n, dtype=mx.float32) * (r + 1)
    out = {}
    for name, all_sum, all_gather in (
            ("ours", dist.all_sum, dist.all_gather),
            ("plain", mx.distributed.all_sum, mx.distributed.all_gather)):
        out[f"{name}_sum"], out[f"{name}_sum_grad"] = mx.value_and_grad(
            lambda x: (all_sum(x) * c).sum())(x)
        out[f"{name}_gather"], out[f"{name}_gather_grad"] = mx.value_and_grad(
            lambda x: (all_gather(x) * c_gather).sum())(x)
    compiled = mx.compile(mx.grad(lambda x: (dist.all_sum(x) * c).sum()))
    out["compiled_sum_grad"] = compiled(x)
    np.savez(f"{out_dir}/collectives_rank{r}.npz", **{k: np.array(v) for k, v in out.items()})


if __name__ == "__main__":
    main(sys.argv[1])
