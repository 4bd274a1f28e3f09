"""Rank program: data-parallel training of every setting of ``dp_setup``; results to OUT_DIR."""

import sys

import numpy as np

import dp_setup
from lucid_mlx import distributed as dist


def main(out_dir: str) -> None:
    dist.init(timeout=60)
    for setting in dp_setup.settings():
        result = dp_setup.train(setting, dist.size(), shard=True)
        np.savez(f"{out_dir}/{setting.name}_rank{dist.rank()}.npz", **result)


if __name__ == "__main__":
    main(sys.argv[1])
