"""Run the Metal kernels MLX would build, on the CPU, through g++.

For a launch (kernel name, inputs, template, grid, output shapes/dtypes) the
harness:

1. traces the call with ``mx.export_function``, which works without Metal and
   reports the exact kernel source MLX generates: the signature it derives
   from the inputs, outputs, templates and built-ins the body uses, the
   ``.metal`` body verbatim, and the explicit template instantiation;
2. compiles that source with ``metal_shim.h`` force-included into a shared
   library (cached per source text; its temporary folder is removed once the
   library is loaded);
3. calls the instantiated kernel once per thread of the launch grid through a
   small generated C++ driver, with NumPy buffers bound to the arguments in
   the order of the generated signature.

:func:`cpu_launch` has the signature of ``lucid_mlx.kernels.library.launch``
so tests route every launch of the package through it.  Outputs start as
NaN, so an element no thread writes shows up in any comparison.

To run them, the shim erases Metal's address spaces, which also lets through
code Metal rejects; ``strict.py`` checks the same sources against those rules.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import mlx.core as mx
import numpy as np

from lucid_mlx.kernels import library

SHIM = Path(__file__).with_name("metal_shim.h")
# Metal has no double: the shim poisons the type, and -Wdouble-promotion and
# -Wfloat-conversion catch a stray double literal (0.5) or narrowing.
FLAGS = [
    "-std=c++17", "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-Wno-attributes",
    "-Wdouble-promotion", "-Wfloat-conversion",
]

_BUILTINS = {
    "thread_position_in_grid": "uint3{x, y, z}",
    "threads_per_grid": "uint3{gx, gy, gz}",
    "thread_position_in_threadgroup": "uint3{x % tx, y % ty, z % tz}",
    "threadgroup_position_in_grid": "uint3{x / tx, y / ty, z / tz}",
    "threads_per_threadgroup": "uint3{tx, ty, tz}",
}

_NUMPY = {mx.float32: np.float32, mx.float16: np.float16, mx.bfloat16: np.uint16, mx.int32: np.int32}


def compiler() -> str | None:
    """The C++ compiler to use, or None when the machine has none."""
    return shutil.which("g++") or shutil.which("clang++")


def generated_source(name, inputs, template, grid, output_shapes, output_dtypes) -> str:
    """The full kernel source MLX generates for this launch (no Metal needed)."""
    kernel = library.kernel(name)
    found = []

    def call(*arrays):
        return kernel(
            inputs=list(arrays),
            template=list(template),
            grid=tuple(grid),
            threadgroup=library.threadgroup(grid),
            output_shapes=[tuple(s) for s in output_shapes],
            output_dtypes=list(output_dtypes),
        )

    def record(entry):
        if entry.get("type") == "primitive" and entry.get("name") == "CustomKernel":
            found.append(entry["arguments"][1])

    mx.export_function(record, call, *inputs)
    if len(found) != 1:
        raise RuntimeError(f"expected one CustomKernel in the trace of {name}, found {len(found)}")
    return found[0]


def parse_signature(source: str) -> tuple[str, list[tuple[str, str]]]:
    """The instantiated function and its (declared type, name) parameters."""
    # A templated kernel is called through its explicit instantiation; one
    # without template parameters is a plain function.
    found = re.search(r"decltype\((\w+<[^>]*>)\)", source) or re.search(r"void (\w+)\(", source)
    instance = found.group(1)
    head = source[source.index("(") + 1 : source.index(") {")]
    params = []
    for line in head.split(",\n"):
        decl = re.sub(r"\[\[[^\]]*\]\]", "", line).strip()
        match = re.fullmatch(r"(.*?[\s*&])(\w+)", decl)
        params.append((match.group(1).strip(), match.group(2)))
    return instance, params


def _driver(instance: str, params: list[tuple[str, str]]) -> str:
    args = []
    for k, (ctype, pname) in enumerate(params):
        if pname in _BUILTINS:
            args.append(_BUILTINS[pname])
        elif ctype.endswith("&"):
            args.append(f"*({ctype[:-1].strip()}*)buffers[{k}]")
        else:
            args.append(f"({ctype})buffers[{k}]")
    call = ",\n        ".join(args)
    return f"""
extern "C" void lucid_run(void** buffers, uint gx, uint gy, uint gz, uint tx, uint ty, uint tz) {{
  (void)tx; (void)ty; (void)tz;
  for (uint z = 0; z < gz; ++z)
    for (uint y = 0; y < gy; ++y)
      for (uint x = 0; x < gx; ++x)
        {instance}(
        {call});
}}
"""


_LIBRARIES: dict[str, ctypes.CDLL] = {}


def build(source: str) -> ctypes.CDLL:
    """Compile ``source`` plus its driver once per process; return the library."""
    instance, params = parse_signature(source)
    text = f'#include "{SHIM}"\n{source}\n{_driver(instance, params)}'
    key = hashlib.sha1((text + SHIM.read_text() + " ".join(FLAGS)).encode()).hexdigest()[:16]
    if key not in _LIBRARIES:
        # The folder goes as soon as the library is loaded (the loader keeps
        # its mapping of the deleted file).  One folder per process, kept for
        # the cached libraries, was never removed: every test run left one.
        with tempfile.TemporaryDirectory(prefix="lucid_mlx_shim_") as folder:
            cpp, so = Path(folder) / f"{key}.cpp", Path(folder) / f"{key}.so"
            cpp.write_text(text)
            result = subprocess.run([compiler(), *FLAGS, str(cpp), "-o", str(so)], capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"g++ rejected the generated kernel:\n{result.stderr}\n--- source ---\n{text}")
            _LIBRARIES[key] = ctypes.CDLL(str(so))
    return _LIBRARIES[key]


def _to_numpy(a: mx.array) -> np.ndarray:
    if a.dtype == mx.bfloat16:
        a = a.view(mx.uint16)
    return np.ascontiguousarray(np.array(a))


def _to_mlx(a: np.ndarray, dtype) -> mx.array:
    out = mx.array(a)
    return out.view(mx.bfloat16) if dtype == mx.bfloat16 else out


def _nan_buffer(shape, dtype) -> np.ndarray:
    if dtype == mx.bfloat16:
        return np.full(shape, 0x7FC0, dtype=np.uint16)
    return np.full(shape, np.nan, dtype=_NUMPY[dtype])


def cpu_launch(name, inputs, template, grid, output_shapes, output_dtypes) -> list[mx.array]:
    """Drop-in for ``library.launch`` that runs the kernel body on the CPU."""
    inputs = [mx.contiguous(a) for a in inputs]
    mx.eval(inputs)
    source = generated_source(name, inputs, template, grid, output_shapes, output_dtypes)
    lib = build(source)
    spec = library.KERNELS[name]
    by_input = dict(zip(spec.inputs, inputs))
    outputs = [_nan_buffer(tuple(s), d) for s, d in zip(output_shapes, output_dtypes)]
    by_output = dict(zip(spec.outputs, outputs))
    keep = []
    for ctype, pname in parse_signature(source)[1]:
        if pname in _BUILTINS:
            keep.append(None)
        elif pname in by_output:
            keep.append(by_output[pname])
        elif pname in by_input:
            keep.append(_to_numpy(by_input[pname]))
        elif pname.endswith("_shape"):
            keep.append(np.array(by_input[pname[: -len("_shape")]].shape, dtype=np.int32))
        elif pname.endswith("_strides"):
            a = by_input[pname[: -len("_strides")]]
            keep.append(np.array([s // a.itemsize for s in np.empty(a.shape, np.int8).strides], dtype=np.int64))
        elif pname.endswith("_ndim"):
            keep.append(np.array([by_input[pname[: -len("_ndim")]].ndim], dtype=np.int32))
        else:
            raise RuntimeError(f"{name}: the harness cannot bind parameter {ctype} {pname}")
    buffers = (ctypes.c_void_p * len(keep))(*[0 if b is None else b.ctypes.data for b in keep])
    tg = library.threadgroup(grid)
    lib.lucid_run(buffers, *[ctypes.c_uint(v) for v in (*grid, *tg)])
    return [_to_mlx(o, d) for o, d in zip(outputs, output_dtypes)]
