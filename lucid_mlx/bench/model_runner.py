"""Timing and peak memory of one network (a :class:`ModelCase`) under one implementation.

Implementations:

* ``lucid_mlx``: the ``lucid_mlx.models`` network.
* ``torch``: MONAI's network of the same name and arguments, on the CPU
  (or MPS), when MONAI is installed.

Both start from their library's default initialisation with the same
input (weights are not shared: timings do not depend on the values).
"fwd" is an inference pass in eval mode (``torch.no_grad``); "fwd+bwd" is
a training pass: train mode (batch statistics; BatchNorm running
statistics updated), the loss ``output.sum()`` and the gradients of every
parameter (not of the input), as an optimizer step needs them. Times are
medians over repeats after warm-up runs, as for the layers; ``cpu_s`` is
the process CPU time per run, which on a shared machine says how much of
the wall time the run had the CPU. Memory is measured as for the layers
(:mod:`lucid_mlx.bench.runner`): MLX's peak includes the parameters and the
input.
"""

from __future__ import annotations

import gc
import statistics
from typing import Callable

import mlx.core as mx
import mlx.nn as mnn

from .model_cases import ModelCase
from .runner import MLX_DTYPES, _torch_rss_growth, median_time


def _with_cpu(median: float, times: list[float], cpu_per_wall: float) -> dict:
    return {"median_s": median, "times_s": times, "cpu_per_wall": cpu_per_wall,
            "cpu_s": cpu_per_wall * statistics.fmean(times)}


def run_mlx_model(case: ModelCase, dtype: str, mode: str, warmup: int, repeats: int,
                  device: str = "cpu") -> dict:
    from .. import models

    mx.set_default_device(mx.cpu if device == "cpu" else mx.gpu)
    dt = MLX_DTYPES[dtype]
    if not hasattr(models, case.model):
        raise RuntimeError(f"lucid_mlx.models has no {case.model} in this version")
    mx.random.seed(0)
    model = getattr(models, case.model)(**case.arguments())
    if dt != mx.float32:
        model.set_dtype(dt)
    x = mx.random.normal(case.input, key=mx.random.key(0)).astype(dt)
    mx.eval(model.parameters(), x)

    if mode == "fwd":
        model.eval()

        def step():
            mx.eval(model(x))
    else:
        model.train()
        loss_and_grad = mnn.value_and_grad(model, lambda m, xx: m(xx).sum())

        def step():
            # The parameters too: train mode moves BatchNorm's running statistics.
            mx.eval(loss_and_grad(model, x), model.parameters())

    gc.collect()
    mx.clear_cache()
    mx.reset_peak_memory()
    result = _with_cpu(*median_time(step, warmup, repeats))
    result["peak_bytes"] = mx.get_peak_memory()
    del model, x
    gc.collect()
    mx.clear_cache()
    return result


def torch_model_setup(case: ModelCase, dtype: str, device: str, threads: int):
    """(torch, MONAI model, input) on ``device``."""
    import torch
    from monai.networks import nets

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dev, dt = torch.device(device), getattr(torch, dtype)
    model = getattr(nets, case.model)(**case.arguments()).to(dev, dt)
    x = torch.randn(case.input, generator=torch.Generator().manual_seed(0)).to(dev, dt)
    return torch, model, x


def torch_model_step(torch, model, x, mode: str, device: str) -> Callable[[], None]:
    sync = torch.mps.synchronize if device == "mps" else (lambda: None)

    if mode == "fwd":
        model.eval()

        def fwd():
            with torch.no_grad():
                model(x)
            sync()

        return fwd
    model.train()

    def fwd_bwd():
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()
        sync()

    return fwd_bwd


def run_torch_model(case: ModelCase, dtype: str, mode: str, warmup: int, repeats: int, device: str,
                    threads: int, memory: bool) -> dict:
    torch, model, x = torch_model_setup(case, dtype, device, threads)
    step = torch_model_step(torch, model, x, mode, device)
    result = _with_cpu(*median_time(step, warmup, repeats))
    del model, x
    gc.collect()
    result["peak_bytes"] = _torch_rss_growth(case, dtype, mode, device, threads) if memory else None
    return result
