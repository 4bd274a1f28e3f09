"""Benchmark suite: lucid_mlx's conv3d against ``mx.conv3d`` and PyTorch, and
``lucid_mlx.models`` networks against MONAI's.

Run ``python -m lucid_mlx.bench --help``.  :func:`collect` returns the same
report as a dict (what ``--json`` writes): the environment (machine, MLX
version and device, thread counts) and one row per case, dtype, pass and
implementation.  lucid_mlx rows say which candidates the dispatcher ran;
with ``autotune=True`` every candidate is timed first and
:func:`format_candidates` tabulates the times.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import os
import platform
from typing import Callable

import mlx.core as mx

from .cases import CASES, EXTRA_CASES, Case, lookup
from .model_cases import EXTRA_MODEL_CASES, MODEL_CASES, ModelCase
from .model_runner import run_mlx_model, run_torch_model
from .runner import run_mlx, run_torch

__all__ = ["CASES", "EXTRA_CASES", "MODEL_CASES", "EXTRA_MODEL_CASES", "Case", "ModelCase", "collect",
           "environment", "format_candidates", "format_table"]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str = "cpu", torch_threads: int = 1) -> dict:
    import lucid_mlx

    torch_version = None
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch_version = torch.__version__
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "lucid_mlx": lucid_mlx.__version__,
        "mlx": mx.__version__,
        "mlx_device": device,
        "metal_available": mx.metal.is_available(),
        "workspace_limit": lucid_mlx.get_workspace_limit(),
        "autotune": lucid_mlx.get_autotune(),
        "torch": torch_version,
        "torch_threads": torch_threads,
        "machine": f"{platform.system()} {platform.machine()}, {_cpu_name()}",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def _torch_device(device: str) -> str:
    return "mps" if device == "gpu" else "cpu"


def _run(case, impl: str, dtype: str, mode: str, warmup: int, repeats: int, device: str, threads: int,
         torch_memory: bool) -> dict:
    if isinstance(case, ModelCase):
        if impl == "torch":
            return run_torch_model(case, dtype, mode, warmup, repeats, _torch_device(device), threads,
                                   torch_memory)
        return run_mlx_model(case, dtype, mode, warmup, repeats, device)
    if impl == "torch":
        return run_torch(case, dtype, mode, warmup, repeats, _torch_device(device), threads, torch_memory)
    return run_mlx(case, impl, dtype, mode, warmup, repeats, device)


def collect(cases: list[str] | None = None, dtypes=None, modes=("fwd", "fwd+bwd"),
            impls=("lucid_mlx", "mx.conv3d", "torch"), device: str = "cpu", repeats: int = 3,
            warmup: int = 1, torch_threads: int = 1, torch_memory: bool = False,
            progress: Callable[[str], None] | None = None, autotune: bool | None = None) -> dict:
    """Run the cases and return the report (see the module docstring).

    ``dtypes=None`` runs each case's own: float32 and float16 for a layer,
    float32 for a network.  ``cases`` takes case names and the families
    ``layers`` and ``models``.  ``autotune`` switches autotuning on or off
    for the run; None leaves the switch as it is (``LUCID_MLX_AUTOTUNE``,
    ``set_autotune``).
    """
    import lucid_mlx

    with lucid_mlx.autotuning(autotune) if autotune is not None else contextlib.nullcontext():
        return _collect(cases, dtypes, modes, impls, device, repeats, warmup, torch_threads,
                        torch_memory, progress)


def _collect(cases, dtypes, modes, impls, device, repeats, warmup, torch_threads, torch_memory,
             progress) -> dict:
    selected = lookup(list(cases) if cases else None)
    env = environment(device, torch_threads)
    rows = []
    for case in selected:
        for dtype in dtypes or case.dtypes:
            for mode in modes:
                for impl in impls:
                    if impl == "mx.conv3d" and not case.plain_mlx:
                        continue
                    if impl == "torch" and env["torch"] is None:
                        continue
                    row = {"case": case.name, case.kind: case.describe(), "dtype": dtype, "mode": mode,
                           "impl": impl}
                    try:
                        row.update(_run(case, impl, dtype, mode, warmup, repeats, device, torch_threads,
                                        torch_memory))
                    except Exception as err:  # noqa: BLE001 - a failing backend is a result
                        row.update({"median_s": None, "peak_bytes": None,
                                    "error": f"{type(err).__name__}: {err}"[:200]})
                    rows.append(row)
                    if progress:
                        progress(_line(row))
    cpu_load = [r["cpu_per_wall"] for r in rows if r.get("cpu_per_wall") and r["impl"] != "torch"]
    env["mlx_cpu_per_wall"] = round(max(cpu_load), 2) if cpu_load else None
    return {"environment": env, "settings": {"repeats": repeats, "warmup": warmup},
            "cases": {c.name: c.as_dict() for c in selected}, "results": rows}


def _fmt_time(t):
    if t is None:
        return "n/a"
    return f"{t * 1e3:.1f} ms" if t < 0.01 else f"{t * 1e3:.0f} ms" if t < 1 else f"{t:.2f} s"


def _fmt_mem(b):
    if b is None:
        return "n/a"
    return f"{b / 2**20:.1f} MiB" if b < 10 * 2**20 else f"{b / 2**20:.0f} MiB"


def _line(row: dict) -> str:
    text = f"{row['case']:>11} {row['dtype']:>8} {row['mode']:>7} {row['impl']:>9}: "
    if row.get("error"):
        return text + row["error"]
    text += f"{_fmt_time(row['median_s'])}, peak {_fmt_mem(row['peak_bytes'])}"
    return text + (f" ({row['ran']})" if row.get("ran") else "")


def _label(case: dict) -> str:
    return case["layer"] if "layer" in case else case["network"]


def format_table(report: dict) -> str:
    """A markdown table: one line per case, dtype and pass; implementations side by side.

    Networks also get each implementation's CPU time per run (a shared
    machine shows there: wall time well above CPU time).
    """
    impls = [i for i in ("lucid_mlx", "mx.conv3d", "torch") if any(r["impl"] == i for r in report["results"])]
    kinds = {"layer" if "layer" in c else "network" for c in report["cases"].values()}
    # CPU time for networks; which conv3d candidates ran for layers (a network runs many).
    cpu, ran = "network" in kinds, "lucid_mlx" in impls and "layer" in kinds
    head = [next(iter(kinds)) if len(kinds) == 1 else "case", "dtype", "pass"]
    for impl in impls:
        head += [f"{impl} time"] + ([f"{impl} CPU"] if cpu else []) + [f"{impl} peak"]
    if "lucid_mlx" in impls and "torch" in impls:
        head.append("lucid/torch")
    if ran:
        head.append("lucid_mlx ran")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups: dict[tuple, dict] = {}
    for r in report["results"]:
        groups.setdefault((r["case"], r["dtype"], r["mode"]), {})[r["impl"]] = r
    for (case, dtype, mode), by_impl in groups.items():
        cells = [_label(report["cases"][case]), dtype, mode]
        for impl in impls:
            r = by_impl.get(impl)
            if r is None:
                cells += ["-"] * (3 if cpu else 2)
            elif r.get("error"):
                cells += ["error"] + ["-"] * (2 if cpu else 1)
            else:
                cells += ([_fmt_time(r["median_s"])] + ([_fmt_time(r.get("cpu_s"))] if cpu else [])
                          + [_fmt_mem(r["peak_bytes"])])
        if "lucid_mlx" in impls and "torch" in impls:
            a, b = by_impl.get("lucid_mlx", {}), by_impl.get("torch", {})
            ok = a.get("median_s") and b.get("median_s")
            cells.append(f"{a['median_s'] / b['median_s']:.1f}x" if ok else "-")
        if ran:
            cells.append(by_impl.get("lucid_mlx", {}).get("ran") or "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_candidates(report: dict) -> str:
    """A markdown table of autotuning's candidate times: one line per case, dtype, role and candidate.

    ``vs default`` is each candidate's median over the default rule's
    candidate (the first listed); the chosen one is marked.
    """
    head = ["layer", "dtype", "role", "candidate", "median", "vs default", "chosen"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    seen = set()
    for r in report["results"]:
        for role, found in (r.get("candidates") or {}).items():
            if (r["case"], r["dtype"], role) in seen:
                continue
            seen.add((r["case"], r["dtype"], role))
            default = next(iter(found["seconds"].values()))
            for label, seconds in found["seconds"].items():
                ratio = f"{seconds / default:.2f}x" if seconds is not None and default else "-"
                cells = [report["cases"][r["case"]]["layer"], r["dtype"], role, label,
                         _fmt_time(seconds) if seconds is not None else "failed", ratio,
                         "yes" if label == found["winner"] else ""]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else "(no candidate was timed: autotuning was off)"
