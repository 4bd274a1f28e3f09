"""Check the kernels MLX generates with clang-19, as C++ for OpenCL 2021.

The g++ harness (harness.py) runs the kernel bodies on the CPU, and to do so
erases Metal's address spaces and gives bfloat a converting constructor: it
accepts code Metal's compiler rejects.  This check compiles the same exact
source (:func:`harness.generated_source`) with clang-19 in C++-for-OpenCL
mode, whose address-space, fp64 and language rules are close to Metal's,
through ``metal_strict.h``.  Types and syntax only: nothing runs, and only a
Mac's Metal compiler has the last word.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

CLANG = "clang-19"
HEADER = Path(__file__).with_name("metal_strict.h")
FLAGS = [
    "-x", "clcpp", "-cl-std=clc++2021", "-cl-no-stdinc", "-target", "x86_64-unknown-linux-gnu",
    # Metal has no generic address space (so an unqualified pointer is a
    # thread pointer), no pipes, no device-side enqueue and no double.
    "-Xclang",
    "-cl-ext=-__opencl_c_generic_address_space,-__opencl_c_pipes,-__opencl_c_device_enqueue,"
    "-cl_khr_fp64,-__opencl_c_fp64",
    "-fsyntax-only", "-Werror",
    # [[kernel]], [[buffer(i)]], [[thread_position_in_grid]] mean nothing to
    # clang, which would otherwise warn (an error under -Werror) on each.
    "-Wno-unknown-attributes",
]

# MLX instantiates a templated kernel as
#   template [[host_name("name")]] [[kernel]] decltype(f<...>) f<...>;
# Metal accepts attributes there; C++ does not (clang: "an attribute list
# cannot appear here").  They only name the entry point, so they go.
_INSTANTIATION_ATTRIBUTES = re.compile(r'^template \[\[host_name\("\w+"\)\]\] \[\[kernel\]\] ', re.M)


def compiler() -> str | None:
    """The path of clang-19, or None when it is not installed."""
    return shutil.which(CLANG)


def prepare(source: str) -> str:
    """``source`` with the attributes of its explicit instantiation removed."""
    text = _INSTANTIATION_ATTRIBUTES.sub("template ", source)
    if "[[host_name" in text:
        raise ValueError(f"MLX's instantiation line changed; update strict.py to strip its attributes:\n{source}")
    return text


def diagnostics(source: str) -> str:
    """What clang-19 reports on ``source``: empty when it accepts it."""
    clang = compiler()
    if clang is None:
        raise RuntimeError(f"{CLANG} is not on PATH (Debian: apt-get install clang-19)")
    result = subprocess.run(
        [clang, *FLAGS, "-include", str(HEADER), "-"],
        input=prepare(source), capture_output=True, text=True,
    )
    if result.returncode == 0:
        return ""
    return result.stderr or f"{CLANG} exited with status {result.returncode} and no message"
