"""Rank program: a checkpoint saved by rank 0 right after a data-parallel step, read by all.

The step's weights are left unevaluated on purpose: they hold the gradient
``all_sum``, which rank 0 alone could never complete.  Results go to
OUT_DIR; the checkpoints go to OUT_DIR/checkpoints.
"""

import os
import sys

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

import dp_setup
import lucid_mlx
from lucid_mlx import distributed as dist


def main(out_dir: str) -> None:
    dist.init(timeout=60)
    rank = dist.rank()
    setting = dp_setup.Setting("checkpoint", "batch")
    model = dp_setup.make_model(setting, sync=True)
    optimizer = optim.Adam(learning_rate=1e-2)
    x, y = dist.shard_batch(dp_setup.global_batch(setting, 0, dist.size()))
    loss_and_grad = nn.value_and_grad(model, lambda m, x, y: mx.square(m(x) - y).mean())
    _, grads = loss_and_grad(model, mx.array(x), mx.array(y))
    optimizer.update(model, nn.average_gradients(grads))  # lazy until saved

    folder = os.path.join(out_dir, "checkpoints")
    dist.run_on_main(os.makedirs, folder)
    torch_path = os.path.join(folder, "model.safetensors")
    mlx_path = os.path.join(folder, "weights.npz")
    dist.run_on_main(lucid_mlx.save_torch_state_dict, model, torch_path)
    dist.run_on_main(model.save_weights, mlx_path)
    ran_on = dist.run_on_main(lambda: rank)

    fresh = dp_setup.make_model(setting, sync=True)
    lucid_mlx.load_torch_state_dict(fresh, torch_path)
    fresh_mlx = dp_setup.make_model(setting, sync=True)
    fresh_mlx.load_weights(mlx_path)
    mine = dict(tree_flatten(model.parameters()))
    same = all(mx.array_equal(v, mine[k]).item() and v.dtype == mine[k].dtype
               for m in (fresh, fresh_mlx) for k, v in tree_flatten(m.parameters()))

    errors = []
    for bad in (os.path.join(folder, "missing", "model.safetensors"),):
        try:
            dist.run_on_main(lucid_mlx.save_torch_state_dict, model, bad)
        except Exception as err:  # the test checks which kind each rank saw
            errors.append(f"{type(err).__name__}: {err}")
    dist.main_print("printed once", mx.array(3.0) + dist.rank())
    np.savez(f"{out_dir}/main_process_rank{rank}.npz", same=same,
             ran_on=-1 if ran_on is None else ran_on, errors=np.array(errors),
             in_sync=dist.parameters_in_sync(model))


if __name__ == "__main__":
    main(sys.argv[1])
