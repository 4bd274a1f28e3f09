"""``python -m lucid_mlx.bench``: time and measure the fixed Conv3d layers, or whole networks.

Examples::

    python -m lucid_mlx.bench                       # every layer, fwd and fwd+bwd, float32 and float16
    python -m lucid_mlx.bench --cases dense depthwise --dtypes float32 --repeats 5
    python -m lucid_mlx.bench --json bench.json --torch-memory
    python -m lucid_mlx.bench --autotune            # time every candidate first, print their times
    python -m lucid_mlx.bench --cases models        # each lucid_mlx.models network against MONAI's
"""

from __future__ import annotations

import argparse
import json
import sys

from . import _fmt_mem, collect, format_candidates, format_table
from .cases import CASES, EXTRA_CASES
from .model_cases import MODEL_CASES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lucid_mlx.bench", description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", metavar="NAME",
                   help=f"cases to run (default: the layers {', '.join(CASES)}; also {', '.join(EXTRA_CASES)}); "
                        f"'models' runs the networks {', '.join(MODEL_CASES)} (each also by name)")
    p.add_argument("--dtypes", nargs="+", choices=["float32", "float16", "bfloat16"],
                   help="default: float32 and float16 for the layers, float32 for the networks")
    p.add_argument("--modes", nargs="+", default=["fwd", "fwd+bwd"], choices=["fwd", "fwd+bwd"])
    p.add_argument("--impls", nargs="+", default=["lucid_mlx", "mx.conv3d", "torch"],
                   choices=["lucid_mlx", "mx.conv3d", "torch"])
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"],
                   help="MLX device; torch (and MONAI) runs on the CPU, or on MPS with --device gpu")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch.set_num_threads; default 1, as MLX's CPU backend runs on one thread")
    p.add_argument("--torch-memory", action="store_true",
                   help="measure torch's max-RSS growth in a subprocess per run (slower)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--autotune", action="store_true",
                   help="autotune lucid_mlx's layers (time every candidate once) and print the candidate times")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        print("--repeats must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    try:
        report = collect(
            cases=args.cases, dtypes=args.dtypes, modes=args.modes, impls=args.impls,
            device=args.device, repeats=args.repeats, warmup=args.warmup,
            torch_threads=args.torch_threads, torch_memory=args.torch_memory,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
            autotune=True if args.autotune else None,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    env = report["environment"]
    print(f"lucid_mlx {env['lucid_mlx']} | MLX {env['mlx']} on {env['mlx_device']} | "
          f"torch {env['torch'] or 'not installed'} ({env['torch_threads']} threads) | "
          f"{env['machine']} | {env['cpu_count']} CPUs | workspace budget "
          f"{_fmt_mem(env['workspace_limit']) if env['workspace_limit'] is not None else 'none'} | "
          f"autotune {'on' if env['autotune'] else 'off'}")
    print(format_table(report))
    if args.autotune:
        print()
        print(format_candidates(report))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
