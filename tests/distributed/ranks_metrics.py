"""Rank program: reduce_sum and reduce_mean of rank-dependent values; results to OUT_DIR.

Rank r holds: the count r + 1, the vector [r, 2r] (float32 and int32), the
number 2**25 + r (exact only in float64), the value 10 r, and for the
weighted mean a mean of 2r over r items (so rank 0 has none, and a NaN).
"""

import sys

import mlx.core as mx
import numpy as np

from lucid_mlx import distributed as dist


def main(out_dir: str) -> None:
    dist.init(timeout=60)
    r = dist.rank()
    out = {}
    sums = dist.reduce_sum({"count": r + 1, "vec": mx.array([r, 2 * r], mx.float32),
                            "ints": np.array([r, 1], np.int32), "big": 2 ** 25 + r,
                            "brain": mx.array([r + 0.5], mx.bfloat16)})
    out["count"], out["vec"], out["ints"], out["big"] = (sums["count"], sums["vec"],
                                                         sums["ints"], sums["big"])
    out["vec_dtype"] = str(sums["vec"].dtype)
    out["brain"] = sums["brain"].astype(mx.float32)
    out["count_type"] = type(sums["count"]).__name__
    out["mean"] = dist.reduce_mean(10.0 * r)
    out["mean_list"] = dist.reduce_mean([float(r), mx.array([r, 1.0])])[1]
    local_mean = float("nan") if r == 0 else 2.0 * r
    out["weighted"] = dist.reduce_mean(local_mean, count=r)
    try:
        dist.reduce_mean(1.0, count=0)
        out["zero_message"] = ""
    except ValueError as err:
        out["zero_message"] = str(err)
    np.savez(f"{out_dir}/metrics_rank{r}.npz",
             **{k: np.array(v) for k, v in out.items()})


if __name__ == "__main__":
    main(sys.argv[1])
