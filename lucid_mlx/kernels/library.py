"""Kernel sources, the build-once cache and the single launch point.

Every kernel is declared once in :data:`KERNELS`; :func:`kernel` builds its
``mx.fast.metal_kernel`` object on first use and caches it, because MLX's
custom-kernel guide warns that each construction may JIT a new library.
All launches go through :func:`launch`, the one seam the tests replace to
execute the kernel bodies on the CPU.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path
from typing import NamedTuple, Sequence

import mlx.core as mx

from .._args import PAD_MODES

# Threads per threadgroup.  256 is within every Apple GPU's per-pipeline
# limit, so no kernel needs a maxTotalThreadsPerThreadgroup query.
THREADGROUP_SIZE = 256


class Spec(NamedTuple):
    """How one kernel is built: its source file and argument names."""

    source: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _declare() -> dict[str, Spec]:
    specs = {}
    for mode in PAD_MODES:
        # One name per mode: structural variants get distinct kernel names.
        specs[f"pad3d_{mode}"] = Spec("pad3d", ("x", "params", "value"), ("out",))
        specs[f"pad3d_grad_{mode}"] = Spec("pad3d_grad", ("gy", "params"), ("gx",))
    specs["grouped_conv3d"] = Spec("grouped_conv3d", ("x", "w", "params"), ("y",))
    specs["grouped_conv3d_grad_input"] = Spec(
        "grouped_conv3d_grad_input", ("gy", "w", "params"), ("gx",)
    )
    specs["grouped_conv3d_grad_weight"] = Spec(
        "grouped_conv3d_grad_weight", ("gy", "x", "params"), ("partial",)
    )
    specs["conv3d_grad_bias"] = Spec("conv3d_grad_bias", ("gy", "params"), ("partial",))
    return specs


KERNELS: dict[str, Spec] = _declare()


@functools.lru_cache(maxsize=None)
def source(stem: str) -> str:
    """The text of ``metal/<stem>.metal``.

    Installed (wheel or editable) the files are the package ``lucid_mlx.metal``;
    in a bare checkout that package does not exist, so the top-level
    ``metal/`` next to ``lucid_mlx/`` is read instead.
    """
    name = f"{stem}.metal"
    try:
        return importlib.resources.files("lucid_mlx.metal").joinpath(name).read_text()
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[2] / "metal" / name
        return checkout.read_text()


@functools.lru_cache(maxsize=None)
def kernel(name: str):
    """The cached ``mx.fast.metal_kernel`` object for ``name``."""
    spec = KERNELS[name]
    return mx.fast.metal_kernel(
        name=name,
        input_names=list(spec.inputs),
        output_names=list(spec.outputs),
        source=source(spec.source),
    )


def threadgroup(grid: Sequence[int]) -> tuple[int, int, int]:
    """A threadgroup of at most :data:`THREADGROUP_SIZE` threads for ``grid``.

    The x extent comes first (up to 32, one SIMD group) because x walks the
    contiguous W axis in every kernel, so neighbouring threads read
    neighbouring memory.
    """
    x = max(1, min(grid[0], 32))
    y = max(1, min(grid[1], THREADGROUP_SIZE // x))
    z = max(1, min(grid[2], THREADGROUP_SIZE // (x * y)))
    return (x, y, z)


def launch(
    name: str,
    inputs: Sequence[mx.array],
    template: Sequence[tuple[str, object]],
    grid: tuple[int, int, int],
    output_shapes: Sequence[Sequence[int]],
    output_dtypes: Sequence[mx.Dtype],
) -> list[mx.array]:
    """Launch kernel ``name``; the one place a kernel object is called."""
    return kernel(name)(
        inputs=list(inputs),
        template=list(template),
        grid=tuple(grid),
        threadgroup=threadgroup(grid),
        output_shapes=[tuple(s) for s in output_shapes],
        output_dtypes=list(output_dtypes),
    )
