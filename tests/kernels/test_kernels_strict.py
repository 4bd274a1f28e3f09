"""The generated Metal sources under a compiler stricter than the g++ harness.

``tests/test_kernels.py`` runs the kernels through g++, which erases Metal's
address spaces and so accepts code Metal rejects.  Here clang-19 checks the
exact source MLX generates for every kernel and dtype as C++ for OpenCL
(``tests/metal_shim/strict.py``), and each construct Metal rejects, planted
in a copy of a kernel, is shown to fail that check while g++ passes it.

Tests marked ``metal_strict`` need clang-19: without it they skip on a
developer's machine and fail in CI (``CI=true``, which ``.ci/run`` sets
after installing clang-19).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlx.core as mx
import pytest

from lucid_mlx.selftest import cases
from lucid_mlx.kernels import conv as kconv
from lucid_mlx.kernels import library
from lucid_mlx.kernels import pad as kpad
from metal_shim import harness, strict

ROOT = Path(__file__).resolve().parents[2]
DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_clang() -> None:
    """Skip without clang-19, except in CI, where the check must run."""
    if strict.compiler() is not None:
        return
    if in_ci():
        pytest.fail("clang-19 is not installed, and CI must run the strict Metal check (.ci/run installs it)")
    pytest.skip("clang-19 is not installed: the strict Metal check needs it (Debian: apt-get install clang-19)")


@pytest.fixture(autouse=True)
def _clang_for_strict_tests(request):
    if request.node.get_closest_marker("metal_strict"):
        require_clang()


@functools.lru_cache(maxsize=None)
def generated_sources(dtype_name: str) -> dict[str, str]:
    """Kernel name -> the source MLX generates for one launch of it with ``dtype_name`` data."""
    dtype = DTYPES[dtype_name]
    launches = {}

    def record(name, inputs, template, grid, output_shapes, output_dtypes):
        launches[name] = (inputs, template, grid, output_shapes, output_dtypes)
        return [mx.zeros(s, dtype=d) for s, d in zip(output_shapes, output_dtypes)]

    case = cases.CONV_CASES[2]
    x, w, gy = cases.conv_inputs(case, dtype)
    args = cases.conv_args(case)
    xp = mx.zeros((1, 2, 3, 4, 5), dtype=dtype)
    gp = mx.zeros((1, 2, 5, 6, 7), dtype=dtype)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(library, "launch", record)
        kconv.conv_forward(x, w, *args)
        kconv.conv_grad_input(gy, w, x.shape, *args)
        kconv.conv_grad_weight(gy, x, w.shape, *args)
        kconv.bias_grad(gy)
        for mode in library.PAD_MODES:
            kpad.pad3d_forward(xp, ((1, 1),) * 3, mode)
            kpad.pad3d_adjoint(gp, ((1, 1),) * 3, mode, xp.shape)
    return {name: harness.generated_source(name, *launch) for name, launch in launches.items()}


@pytest.mark.metal_strict
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("name", sorted(library.KERNELS))
def test_generated_kernel_passes_the_strict_check(name, dtype_name):
    sources = generated_sources(dtype_name)
    assert name in sources, f"generated_sources launches no {name}: add a launch of it"
    assert strict.diagnostics(sources[name]) == ""


# --- Planted constructs ------------------------------------------------------

# Each construct Metal rejects, planted in grouped_conv3d's bfloat16 body next
# to a twin that is valid Metal, so a rejection is the construct's doing and
# not a typo's.  `expected` is part of clang's message.
PLANTS = {
    "unqualified pointer to a device buffer": (
        "const T* p = x; acc += static_cast<float>(p[0]);",
        "const device T* p = x; acc += static_cast<float>(p[0]);",
        "cannot initialize a variable of type 'const __private",
    ),
    "device pointer to a constant buffer": (
        "const device int* s = x_shape; acc += static_cast<float>(s[0]);",
        "const constant int* s = x_shape; acc += static_cast<float>(s[0]);",
        "with an lvalue of type 'const __constant int",
    ),
    "double": (
        "double wide = static_cast<double>(acc); acc = static_cast<float>(wide);",
        "float wide = static_cast<float>(acc); acc = static_cast<float>(wide);",
        "use of type 'double' requires cl_khr_fp64",
    ),
    "double literal": ("acc += 0.5;", "acc += 0.5f;", "double precision constant requires cl_khr_fp64"),
    "std:: call": ("acc = std::fabs(acc);", "acc = acc < 0.0f ? -acc : acc;", "undeclared identifier 'std'"),
    "variable-length array": (
        "float scratch[CG]; scratch[0] = acc; acc = scratch[0];",
        "float scratch[KD]; scratch[0] = acc; acc = scratch[0];",
        "array size is not a constant expression",
    ),
    "memcpy": (
        "float copy; memcpy(&copy, &acc, sizeof(float)); acc = copy;",
        "float copy = acc; acc = copy;",
        "undeclared identifier 'memcpy'",
    ),
    "float stored into a bfloat buffer without a cast": (
        "y[0] = acc;",
        "y[0] = static_cast<T>(acc);",
        "implicit conversion loses floating-point precision: '__private float' to 'bfloat16_t'",
    ),
}
# What the g++ harness still accepts: all but the double type, which the
# shim poisons, and the double literal, which -Wdouble-promotion catches.
GPP_ACCEPTS = [p for p in PLANTS if p not in ("double", "double literal")]
ANCHOR = "float acc = 0.0f;\n"


def planted(line: str) -> str:
    source = generated_sources("bfloat16")["grouped_conv3d"]
    assert source.count(ANCHOR) == 1, "grouped_conv3d's body changed: pick a new anchor for the plants"
    return source.replace(ANCHOR, ANCHOR + line + "\n")


@pytest.mark.metal_strict
@pytest.mark.parametrize("construct", list(PLANTS))
def test_strict_check_rejects_planted_construct(construct):
    """clang rejects the construct and accepts its valid twin.

    The g++ harness accepts all of these but the two doubles (see
    test_gpp_harness_accepts_what_only_the_strict_check_rejects): this is
    what the strict check adds.
    """
    bad, good, expected = PLANTS[construct]
    assert expected in strict.diagnostics(planted(bad))
    assert strict.diagnostics(planted(good)) == ""


@pytest.mark.parametrize("construct", GPP_ACCEPTS)
def test_gpp_harness_accepts_what_only_the_strict_check_rejects(construct):
    """The gap the strict check closes: g++ builds each of these.

    The shim erases address spaces, includes <cmath> and <cstring>, accepts
    variable-length arrays as a GNU extension and converts float to its
    bfloat16_t implicitly.  Should one start failing here, the shim became
    stricter: update GPP_ACCEPTS and the README's account of the two checks.
    """
    if harness.compiler() is None:
        pytest.skip("no C++ compiler (g++ or clang++) on PATH")
    harness.build(planted(PLANTS[construct][0]))


@pytest.mark.parametrize("construct,message", [("double", "poisoned"), ("double literal", "double-promotion")])
def test_gpp_harness_rejects_double(construct, message):
    if harness.compiler() is None:
        pytest.skip("no C++ compiler (g++ or clang++) on PATH")
    bad, good, _ = PLANTS[construct]
    with pytest.raises(RuntimeError, match=message):
        harness.build(planted(bad))
    harness.build(planted(good))


def test_instantiation_attributes_are_stripped_and_nothing_else():
    source = generated_sources("float32")["pad3d_reflect"]
    prepared = strict.prepare(source)
    changed = [(a, b) for a, b in zip(source.splitlines(), prepared.splitlines(), strict=True) if a != b]
    assert len(changed) == 1
    before, after = changed[0]
    assert before.startswith('template [[host_name("') and after.startswith("template decltype(")
    assert before.endswith(after[len("template "):])
    with pytest.raises(ValueError, match="instantiation line changed"):
        strict.prepare(source.replace("template [[host_name(", "template  [[host_name("))


# --- The skipping rule and the g++ harness's temporary files ------------------

def test_missing_clang_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(strict, "compiler", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="clang-19 is not installed"):
        require_clang()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the strict Metal check"):
        require_clang()
    monkeypatch.setattr(strict, "compiler", lambda: "/usr/bin/clang-19")
    require_clang()


def test_gpp_harness_leaves_no_temporary_files(tmp_path):
    """A process that builds and runs a kernel leaves its temp folder as it found it."""
    if harness.compiler() is None:
        pytest.skip("no C++ compiler (g++ or clang++) on PATH")
    code = textwrap.dedent(
        """
        import mlx.core as mx
        from metal_shim import harness
        gy = mx.arange(24, dtype=mx.float32).reshape(1, 2, 1, 3, 4)
        params = mx.array([1], dtype=mx.int32)
        (partial,) = harness.cpu_launch("conv3d_grad_bias", [gy, params], [], (2, 1, 1), [(1, 2)], [mx.float32])
        print(partial.tolist())
        """
    )
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    # Channel sums of 0..11 and 12..23: the kernel ran after its folder went.
    assert result.stdout.strip() == "[[66.0, 210.0]]"
    assert sorted(p.name for p in tmp_path.iterdir()) == []
