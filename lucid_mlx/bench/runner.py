"""Timing and peak memory of one case under one implementation.

Implementations:

* ``lucid_mlx``: :func:`lucid_mlx.nn.functional.conv3d` on NCDHW arrays
  (after :func:`lucid_mlx.nn.functional.pad` for a non-zero padding mode).
* ``mx.conv3d``: the hand-written path a user would write without
  lucid_mlx: transpose to channels-last, ``mx.conv3d``, transpose back.
  Only for groups == 1 and zero padding, which is all MLX supports in 3-D.
* ``torch``: ``torch.nn.functional.conv3d`` on the CPU (or MPS), when torch
  is installed.

"fwd" evaluates the output; "fwd+bwd" evaluates the output and the input
and weight gradients for a fixed cotangent (``mx.vjp`` / ``backward``).
A lucid_mlx row also says which candidates ran (``ran``: the dispatcher's
plan, see :mod:`lucid_mlx.ops.candidates`) and how long making the plan
took (``plan_s``: autotuning's timing when it first meets the layer); with
autotuning on, ``candidates`` holds every candidate's median time per role.
Times are the median over repeats after warm-up runs.  MLX peak memory is
``mx.get_peak_memory()`` after ``mx.reset_peak_memory()``, so it includes
the live inputs (input, weight, cotangent).  PyTorch has no such counter on
the CPU: with ``torch_memory`` each torch run happens in a fresh subprocess
and reports the growth of its maximum resident set size over the inputs
(``resource.getrusage``), otherwise torch memory is not measured.
"""

from __future__ import annotations

import gc
import json
import statistics
import subprocess
import sys
import time
from typing import Callable

import mlx.core as mx

from .cases import Case

MLX_DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def median_time(step: Callable[[], None], warmup: int, repeats: int) -> tuple[float, list[float], float]:
    """(median seconds, all times, process CPU seconds per wall second)."""
    for _ in range(warmup):
        step()
    times, cpu = [], 0.0
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
        cpu += time.process_time() - c0
    return statistics.median(times), times, cpu / max(sum(times), 1e-9)


def _mlx_fn(case: Case, impl: str) -> Callable:
    if impl == "lucid_mlx":
        import lucid_mlx.nn.functional as F

        if case.padding_mode == "zeros":
            return lambda x, w: F.conv3d(x, w, None, case.stride, case.padding, case.dilation, case.groups)
        p = case.padding
        mode = "constant" if case.padding_mode == "zeros" else case.padding_mode
        return lambda x, w: F.conv3d(F.pad(x, (p,) * 6, mode=mode), w, None, case.stride, 0,
                                     case.dilation, case.groups)

    def hand_written(x, w):
        y = mx.conv3d(x.transpose(0, 2, 3, 4, 1), w.transpose(0, 2, 3, 4, 1), stride=case.stride,
                      padding=case.padding, dilation=case.dilation)
        return y.transpose(0, 4, 1, 2, 3)

    return hand_written


def lucid_plan(case: Case, dtype: mx.Dtype, mode: str) -> dict:
    """What lucid_mlx's dispatcher runs for ``case``: the row fields ``ran``, ``plan_s``, ``candidates``.

    The plan is made here, before any timed run, so autotuning's first-call
    timing is reported as ``plan_s`` instead of landing in the warm-up.
    """
    from ..ops import autotune, dispatch

    x_shape, stride, pads, dilation, groups = case.conv_call()
    # Placeholders: the dispatcher reads shapes and dtypes only, so they are never evaluated.
    x, w = mx.zeros(x_shape, dtype=dtype), mx.zeros(case.weight, dtype=dtype)
    args = (stride, pads, dilation, groups)
    start = time.perf_counter()
    conv_plan = dispatch.conv3d_plan(x, w, *args)
    fields: dict = {"ran": conv_plan.describe("forward" if mode == "fwd" else None),
                    "plan_s": time.perf_counter() - start}
    roles = ("forward",) if mode == "fwd" else ("forward", "backward")
    measured = autotune.measurements()
    keys = dispatch.signatures(x, w, *args) if measured else {}
    found = {role: measured[keys[role]] for role in roles if keys.get(role) in measured}
    if found:
        fields["candidates"] = {role: {"winner": m.winner, "seconds": m.seconds, "source": m.source}
                                for role, m in found.items()}
    return fields


def run_mlx(case: Case, impl: str, dtype: str, mode: str, warmup: int, repeats: int,
            device: str = "cpu") -> dict:
    mx.set_default_device(mx.cpu if device == "cpu" else mx.gpu)
    dt = MLX_DTYPES[dtype]
    plan = lucid_plan(case, dt, mode) if impl == "lucid_mlx" else {}
    key = mx.random.key(0)
    x = mx.random.normal(case.input, key=key).astype(dt)
    w = (0.05 * mx.random.normal(case.weight, key=mx.random.key(1))).astype(dt)
    fn = _mlx_fn(case, impl)
    cot = mx.ones(fn(x, w).shape, dtype=dt)  # the shape only: nothing is evaluated
    mx.eval(x, w, cot)

    if mode == "fwd":
        def step():
            mx.eval(fn(x, w))
    else:
        def step():
            mx.eval(mx.vjp(fn, [x, w], [cot]))

    gc.collect()
    mx.clear_cache()
    mx.reset_peak_memory()
    median, times, cpu = median_time(step, warmup, repeats)
    peak = mx.get_peak_memory()
    del x, w, cot
    gc.collect()
    mx.clear_cache()
    return {"median_s": median, "times_s": times, "peak_bytes": peak, "cpu_per_wall": cpu, **plan}


def _torch_setup(case: Case, dtype: str, device: str, threads: int):
    import torch

    torch.set_num_threads(threads)
    dev = torch.device(device)
    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(case.input, generator=g).to(dev, dt).requires_grad_(True)
    w = (0.05 * torch.randn(case.weight, generator=g)).to(dev, dt).requires_grad_(True)
    p = case.padding
    if case.padding_mode == "zeros":
        def fn(x, w):
            return torch.nn.functional.conv3d(x, w, None, case.stride, p, case.dilation, case.groups)
    else:
        def fn(x, w):
            xp = torch.nn.functional.pad(x, (p,) * 6, mode=case.padding_mode)
            return torch.nn.functional.conv3d(xp, w, None, case.stride, 0, case.dilation, case.groups)
    # The output shape from the formula: running the layer here would raise
    # the resident-set high-water mark that _torch_rss measures.
    k, s, d = case.kernel, case.stride, case.dilation
    size = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n in case.input[2:]]
    cot = torch.ones((case.input[0], case.out_channels, *size), device=dev, dtype=dt)
    return torch, x, w, fn, cot


def _torch_step(torch, x, w, fn, cot, mode: str, device: str) -> Callable[[], None]:
    sync = torch.mps.synchronize if device == "mps" else (lambda: None)

    def fwd():
        with torch.no_grad():
            fn(x, w)
        sync()

    def fwd_bwd():
        x.grad = w.grad = None
        fn(x, w).backward(cot)
        sync()

    return fwd if mode == "fwd" else fwd_bwd


def run_torch(case: Case, dtype: str, mode: str, warmup: int, repeats: int, device: str,
              threads: int, memory: bool) -> dict:
    torch, x, w, fn, cot = _torch_setup(case, dtype, device, threads)
    step = _torch_step(torch, x, w, fn, cot, mode, device)
    median, times, cpu = median_time(step, warmup, repeats)
    result = {"median_s": median, "times_s": times, "peak_bytes": None, "cpu_per_wall": cpu}
    if memory:
        result["peak_bytes"] = _torch_rss_growth(case, dtype, mode, device, threads)
    return result


def _torch_rss_growth(case: Case, dtype: str, mode: str, device: str, threads: int) -> int | None:
    """Max-RSS growth of one torch run in a fresh process (inputs excluded)."""
    spec = json.dumps({"case": case.name, "dtype": dtype, "mode": mode, "device": device,
                       "threads": threads})
    proc = subprocess.run([sys.executable, "-m", "lucid_mlx.bench._torch_rss", spec],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return None
    return int(proc.stdout.strip().splitlines()[-1])
