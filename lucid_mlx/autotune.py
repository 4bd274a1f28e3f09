"""``python -m lucid_mlx.autotune``: tune the benchmark layers on this machine and save the choices.

For each benchmark case (:mod:`lucid_mlx.bench.cases`) and dtype, the
dispatcher plans the layer's convolution with autotuning on, which times
every candidate of its forward and backward once (a fresh measurement: the
cache file is not read).  A table of candidate times and winners is
printed, each winner against the default rule's candidate, and the choices
are merged into the autotune cache file (:mod:`lucid_mlx.ops.autotune_cache`),
which later processes read when autotuning is on.

Examples::

    python -m lucid_mlx.autotune                          # every case, float32 and float16
    python -m lucid_mlx.autotune --cases depthwise grouped4 --dtypes float32
    python -m lucid_mlx.autotune --output tuned.json --json table.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

import mlx.core as mx

from .bench.cases import CASES, EXTRA_CASES, lookup
from .bench.runner import MLX_DTYPES
from . import workspace
from .ops import autotune, autotune_cache, dispatch


def tune(cases: list[str] | None = None, dtypes=("float32", "float16"),
         progress: Callable[[str], None] | None = None) -> list[dict]:
    """Autotune every role of the cases' convolutions; one row per case, dtype and role.

    A row holds the layer, the candidates' median ``seconds``, the
    ``winner``, the ``default`` rule's candidate and ``plan_s``, the time
    the first call took to plan (and so to tune) the layer.
    """
    rows = []
    with autotune.autotuning(True):
        for case in lookup(list(cases) if cases else None):
            x_shape, stride, pads, dilation, groups = case.conv_call()
            for name in dtypes:
                dtype = MLX_DTYPES[name]
                # The dispatcher reads shapes and dtypes: placeholders, never evaluated.
                x, w = mx.zeros(x_shape, dtype=dtype), mx.zeros(case.weight, dtype=dtype)
                args = (stride, pads, dilation, groups)
                start = time.perf_counter()
                conv_plan = dispatch.conv3d_plan(x, w, *args)
                plan_s = time.perf_counter() - start
                keys = dispatch.signatures(x, w, *args)
                found = dispatch.conv3d_candidates(x, w, *args)
                measured = autotune.measurements()
                for i, role in enumerate(("forward", "backward")):
                    labels = [c.label for c in found[role]]
                    m = measured.get(keys[role])
                    row = {"case": case.name, "layer": case.describe(), "dtype": name, "role": role,
                           "default": labels[0], "winner": conv_plan.labels[i],
                           "seconds": m.seconds if m else {labels[0]: None}, "plan_s": plan_s}
                    rows.append(row)
                    if progress:
                        progress(_line(row))
    return rows


def _ms(seconds: float | None) -> str:
    return "failed" if seconds is None else f"{seconds * 1e3:.1f} ms"


def _versus(row: dict) -> str:
    win, default = row["seconds"].get(row["winner"]), row["seconds"].get(row["default"])
    return f"{win / default:.2f}x" if win is not None and default else "-"


def _line(row: dict) -> str:
    text = f"{row['case']:>11} {row['dtype']:>8} {row['role']:>8}: "
    if len(row["seconds"]) == 1 and None in row["seconds"].values():
        return text + f"{row['winner']} (the only candidate)"
    times = ", ".join(f"{label} {_ms(t)}" for label, t in row["seconds"].items())
    return text + f"{times} -> {row['winner']} ({_versus(row)} of the default)"


def format_table(rows: list[dict]) -> str:
    """Markdown: one line per case, dtype and role."""
    head = ["layer", "dtype", "role", "candidates (median)", "winner", "winner / default",
            "tuning (both roles)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        only = len(row["seconds"]) == 1 and None in row["seconds"].values()
        times = "only candidate" if only else "; ".join(
            f"{label} {_ms(t)}" for label, t in row["seconds"].items())
        cells = [row["layer"], row["dtype"], row["role"], times, row["winner"],
                 "-" if only else _versus(row), f"{row['plan_s']:.2f} s"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lucid_mlx.autotune", description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", metavar="NAME",
                   help=f"cases to tune (default: all of {', '.join(CASES)}; also {', '.join(EXTRA_CASES)})")
    p.add_argument("--dtypes", nargs="+", default=["float32", "float16"], choices=list(MLX_DTYPES))
    p.add_argument("--device", choices=["cpu", "gpu"],
                   help="MLX device (default: the GPU when Metal is available, else the CPU)")
    p.add_argument("--repeats", type=int, default=autotune.REPEATS,
                   help=f"timed runs per candidate (default {autotune.REPEATS}; one untimed run first)")
    p.add_argument("--output", metavar="PATH",
                   help=f"cache file to write (default {autotune_cache.default_path()})")
    p.add_argument("--no-save", action="store_true", help="print the table only")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON to PATH")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.repeats < 1:
        print("--repeats must be >= 1", file=sys.stderr)
        return 2
    device = args.device or ("gpu" if mx.metal.is_available() else "cpu")
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
    repeats, autotune.REPEATS = autotune.REPEATS, args.repeats
    # Measure afresh: choices already in this process or in the file are not reused.
    autotune.reset(read_cache=False)
    try:
        rows = tune(args.cases, args.dtypes, progress=lambda line: print(line, file=sys.stderr, flush=True))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        autotune.REPEATS = repeats
    print(f"lucid_mlx autotune | {autotune_cache.device_name()} | MLX {mx.__version__} on {device} | "
          f"workspace budget {workspace.get_workspace_limit()} bytes")
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
        print(f"wrote {args.json}")
    if not args.no_save:
        path = autotune.save_cache(args.output)
        print(f"saved {len(autotune.measurements())} choices to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
