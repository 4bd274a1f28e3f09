"""The training checkpoint behind ``--resume``, and stopping cleanly on Ctrl-C.

One file, ``checkpoint.safetensors``, holds everything training needs to go
on as if it had never stopped:

* ``model/<name>``: the weights and buffers under MONAI's (PyTorch's) names,
  BatchNorm running statistics included;
* ``optimizer/<path>``: Adam's moments, its step count and learning rate;
* the metadata entry ``state``: JSON with the epoch and the step within it,
  the losses of the epoch so far, the history of finished epochs, the best
  score, NumPy's generator state (which draws the patches and their
  corruptions) and the options of the run.

MLX's own generator has no saved state: MLX 0.32 can read its key
(``mx.random.state``) but not set it, so main.py reseeds it from the seed
and the step number before every step instead, which makes any MLX
randomness in training (dropout, say) a function of the step alone.

It is written to a temporary name and renamed over the old one, so a crash
or a kill while writing leaves the previous checkpoint whole.  A first
SIGINT (Ctrl-C) only sets a flag that the training loop reads after each
step; it then saves this checkpoint and ends (``StopRequested``).  A second
SIGINT interrupts at once, still leaving the last checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import contextmanager

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_map_with_path

import lucid_mlx

FILENAME = "checkpoint.safetensors"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; a one-line message."""


def save(path: str, model: nn.Module, optimizer: optim.Optimizer, state: dict) -> None:
    """Write the checkpoint atomically (temporary file, then rename)."""
    arrays = {f"model/{k}": v for k, v in lucid_mlx.torch_state_dict(model).items()}
    arrays.update({f"optimizer/{k}": v for k, v in tree_flatten(optimizer.state)})
    meta = {"state": json.dumps({"version": VERSION, **state}, allow_nan=False)}
    tmp = path + ".tmp.safetensors"  # MLX appends .safetensors to names without it
    mx.save_safetensors(tmp, arrays, metadata=meta)
    os.replace(tmp, path)


def read(path: str) -> tuple[dict, dict]:
    """The checkpoint's arrays and its state; raises CheckpointError."""
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint to resume from at {path!r}")
    try:
        arrays, meta = mx.load(path, return_metadata=True)
        state = json.loads(meta["state"])
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        raise CheckpointError(f"cannot read the checkpoint {path!r} ({' '.join(str(e).split())})") from None
    if state.get("version") != VERSION:
        raise CheckpointError(f"the checkpoint {path!r} has version {state.get('version')!r}, "
                              f"this script reads version {VERSION}")
    return arrays, state


def restore(arrays: dict, model: nn.Module, optimizer: optim.Optimizer) -> None:
    """Load the weights and the optimizer state; raises CheckpointError."""
    weights = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    saved = {k[len("optimizer/"):]: v for k, v in arrays.items() if k.startswith("optimizer/")}
    try:
        lucid_mlx.load_torch_state_dict(model, weights, strict=True)
    except ValueError as e:
        raise CheckpointError(f"the checkpoint's weights do not fit this network "
                              f"({' '.join(str(e).split())[:300]})") from None
    optimizer.init(model.trainable_parameters())
    expected = dict(tree_flatten(optimizer.state))
    if set(expected) != set(saved):
        raise CheckpointError(f"the checkpoint's optimizer state does not fit this network "
                              f"({len(saved)} arrays saved, {len(expected)} expected)")
    for key, value in saved.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(f"the checkpoint's optimizer state {key!r} has shape {value.shape}, "
                                  f"expected {expected[key].shape}")
    optimizer.state = tree_map_with_path(lambda path, _: saved[path], optimizer.state)
    mx.eval(model.parameters(), optimizer.state)


class StopRequested(Exception):
    """Ctrl-C was pressed; the checkpoint has been saved."""


class StopFlag:
    """Set by the first SIGINT while ``catch_sigint`` is active; read by the training loop."""

    def __init__(self):
        self.requested = False

    def request(self) -> None:
        self.requested = True


@contextmanager
def catch_sigint(flag: StopFlag, announce: bool = True):
    """The first SIGINT sets ``flag``; the second raises KeyboardInterrupt as usual.

    Outside the main thread (where Python delivers signals) nothing is
    installed and SIGINT keeps its usual effect.
    """
    try:
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if flag.requested:
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            flag.request()
            if announce:
                print("\nCtrl-C: stopping after this step and saving the checkpoint "
                      "(Ctrl-C again stops at once; the last checkpoint stays)", file=sys.stderr, flush=True)

        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
