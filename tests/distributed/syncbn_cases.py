"""The SyncBatchNorm3d cases, shared by the rank program and the single-process reference.

Each case feeds ``STEPS`` global batches through the layer in training mode,
takes gradients of ``sum(y * g)`` at the last step, then normalises one more
batch in eval mode.  The data sit far from zero mean (mean 6, spread 0.5) so
that a sum-of-squares variance would lose digits where BatchNorm3d's
two-pass variance does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import mlx.core as mx
import numpy as np

from lucid_mlx import nn

C, SPATIAL, STEPS = 3, (3, 4, 5), 3


@dataclass(frozen=True)
class Case:
    name: str
    batch: int  # global batch size
    momentum: Optional[float] = 0.1
    affine: bool = True
    bias: bool = True
    compiled: bool = False


def cases(size: int) -> list[Case]:
    return [
        Case("even", 2 * size),
        Case("uneven_cumulative", 2 * size + 1, momentum=None),
        # The last rank gets no sample at all.
        Case("empty_shard_no_bias", size - 1 if size > 2 else 1, bias=False),
        Case("compiled", 2 * size, compiled=True),
    ]


def data(case: Case, seed: int = 0):
    """The global batches: ``STEPS`` training inputs, the output cotangent, an eval input."""
    rng = np.random.default_rng([seed, len(case.name), case.batch])
    shape = (case.batch, C) + SPATIAL
    xs = [6.0 + 0.5 * rng.standard_normal(shape).astype(np.float32) for _ in range(STEPS)]
    # A cotangent with a non-zero mean, as most losses have: the statistics' share of the
    # input gradient is then large, and getting it from the local shard only is visible.
    g = 1.0 + rng.standard_normal(shape).astype(np.float32)
    x_eval = 6.0 + 0.5 * rng.standard_normal(shape).astype(np.float32)
    weight = rng.uniform(0.5, 1.5, C).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, C).astype(np.float32)
    return xs, g, x_eval, weight, bias


def make_layer(cls, case: Case, weight, bias):
    layer = cls(C, momentum=case.momentum, affine=case.affine, bias=case.bias)
    if "weight" in layer:
        layer.weight = mx.array(weight)
    if "bias" in layer:
        layer.bias = mx.array(bias)
    return layer


def run(layer, case: Case, xs, g, x_eval) -> dict[str, np.ndarray]:
    """Train-mode steps, then the gradients of sum(y * g) w.r.t. x and the affine parameters."""
    names = [k for k in ("weight", "bias") if k in layer]
    for x in xs[:-1]:
        mx.eval(layer(mx.array(x)))

    def loss(x, params):
        layer.update(params)
        y = layer(x)
        return (y * g_mx).sum(), y

    g_mx = mx.array(g)
    grad_fn = mx.value_and_grad(loss, argnums=(0, 1))
    if case.compiled:
        grad_fn = mx.compile(grad_fn, inputs=[layer.state], outputs=[layer.state])
    (_, y), (gx, gparams) = grad_fn(mx.array(xs[-1]), {k: layer[k] for k in names})
    mx.eval(y, gx, gparams, layer.parameters())
    out = {"y": y, "gx": gx, **{f"g_{k}": gparams[k] for k in names}}
    for k in ("running_mean", "running_var", "num_batches_tracked"):
        out[k] = layer[k]
    layer.eval()
    out["y_eval"] = layer(mx.array(x_eval))
    layer.train()
    return {k: np.array(v) for k, v in out.items()}


def reference(case: Case, seed: int = 0) -> dict[str, np.ndarray]:
    """BatchNorm3d in one process on the concatenated (global) batches."""
    xs, g, x_eval, weight, bias = data(case, seed)
    return run(make_layer(nn.BatchNorm3d, case, weight, bias), case, xs, g, x_eval)
