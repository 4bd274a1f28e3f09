"""Check lucid_mlx's Metal kernels on this machine: ``python -m lucid_mlx.selftest``.

On a Mac with Metal, every kernel runs on the GPU against the portable (pure
MLX) path over the configuration tables of :mod:`.cases` -- forward and all
gradients -- and a table of kernel, configuration, max abs error, both
times and the candidate autotuning picks is printed (:mod:`.compare` holds
the comparisons and the tolerance rule).  The exit status is 1 on any
mismatch or kernel error.

Without Metal it says so, checks the portable path against the dense
convolution of the block-diagonal weight and ``numpy.pad`` instead (with
the portable candidates autotuning picks), and exits 0 unless that check
fails.
"""

from __future__ import annotations

import mlx.core as mx

from . import compare


def _print(rows: list[tuple]) -> None:
    header = ("kernel", "configuration", "dtype", "max abs err", "kernel ms", "portable ms",
              "autotune picks", "")
    table = [header] + [(*r[:-1], "ok" if r[-1] else "MISMATCH") for r in rows]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(str(v).ljust(wd) for v, wd in zip(r, widths)).rstrip())


def main(metal: bool | None = None) -> int:
    """Run the self-test and return the exit status.

    Args:
        metal: Check the kernels (True) or only the portable path (False).
            Default: whether MLX reports a Metal device.
    """
    if metal is None:
        metal = mx.metal.is_available()
    if metal:
        # The default device on Apple silicon is the GPU, where kernels run.
        print(f"lucid_mlx selftest: Metal kernels on {mx.default_device()} against the portable path")
        rows = compare.metal_rows()
    else:
        print(
            "lucid_mlx selftest: Metal is not available on this machine, so the kernels "
            "cannot run here; checking the portable path instead."
        )
        rows = compare.portable_rows()
    _print(rows)
    failed = sum(not r[-1] for r in rows)
    print(f"{len(rows) - failed}/{len(rows)} checks passed")
    return 1 if failed else 0
