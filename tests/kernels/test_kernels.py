"""Execute every Metal kernel body on the CPU and compare with the portable path.

The harness (``tests/metal_shim/harness.py``) compiles the exact kernel source
MLX generates -- the ``.metal`` body inside MLX's signature -- with g++ and a
shim header, and runs it over the whole launch grid.  Routing
``library.launch`` through it exercises the launchers, the custom vjps and
the kernel bodies together; the oracle is the portable path evaluated in
float32 on the same (rounded) inputs, so float16/bfloat16 results are held
to what float32 accumulation should give.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx import selftest
from lucid_mlx.selftest import cases, compare
from lucid_mlx.kernels import conv as kconv
from lucid_mlx.kernels import library
from lucid_mlx.kernels import pad as kpad
from lucid_mlx.ops import dispatch
from lucid_mlx.ops import pad as ppad
from metal_shim import harness

ROOT = Path(__file__).resolve().parents[2]
SIGNATURES = ROOT / "tests" / "metal_shim" / "signatures.txt"

if harness.compiler() is None:
    pytest.skip(
        "no C++ compiler (g++ or clang++) on PATH: the Metal kernel bodies cannot be compiled and run on the CPU",
        allow_module_level=True,
    )

# Relative tolerance on the largest reference magnitude: float32 sums in a
# different order; float16/bfloat16 add one rounding of the float32 result
# (the self-test's rule, lucid_mlx.selftest.compare, with one rounding).
TOL = {mx.float32: 2e-5, mx.float16: compare.tolerance(mx.float16, roundings=1),
       mx.bfloat16: compare.tolerance(mx.bfloat16, roundings=1)}
DTYPES = [mx.float32, mx.float16]


@pytest.fixture(autouse=True)
def cpu_kernels(monkeypatch):
    monkeypatch.setattr(library, "launch", harness.cpu_launch)


def assert_close(got: mx.array, want: mx.array, dtype) -> None:
    assert got.dtype == dtype
    assert got.shape == want.shape
    got64 = np.array(got.astype(mx.float32), dtype=np.float64)
    want64 = np.array(want, dtype=np.float64)
    assert np.isfinite(got64).all(), "the kernel left elements unwritten (NaN)"
    scale = max(1.0, np.abs(want64).max())
    np.testing.assert_allclose(got64, want64, rtol=0, atol=TOL[dtype] * scale)


def f32(*arrays):
    return [a.astype(mx.float32) for a in arrays]


# bfloat16 on the depthwise cases only, to keep the suite's compile count down.
CONV_TABLE = [(c, d) for c in cases.CONV_CASES for d in DTYPES] + [
    (c, mx.bfloat16) for c in cases.CONV_CASES if c.w_shape[1] == 1
]


@pytest.mark.parametrize("case,dtype", CONV_TABLE, ids=lambda v: str(v) if isinstance(v, mx.Dtype) else v.name)
def test_grouped_conv3d_forward_and_gradients(case, dtype):
    x, w, gy = cases.conv_inputs(case, dtype)
    got = compare.conv_paths(case, x, w, gy, kconv.grouped_conv3d)
    want = compare.conv_paths(case, *f32(x, w, gy), dispatch.portable_conv3d)
    for part in ("forward", "grad_input", "grad_weight"):
        assert_close(got[part], want[part], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    "mode,case",
    [(m, c) for m in library.PAD_MODES for c in cases.pad_cases(m)],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_pad3d_forward_and_gradient(mode, case, dtype):
    x = mx.random.normal(case.x_shape, key=mx.random.key(3)).astype(dtype)
    gy = mx.random.normal(kpad.padded_shape(x.shape, case.pairs), key=mx.random.key(4)).astype(dtype)
    got = compare.pad_paths(x, case.pairs, mode, gy, kpad.pad3d)
    want = compare.pad_paths(*f32(x), case.pairs, mode, *f32(gy), ppad.pad3d)
    # The forward is a copy: it must be exact, fill value included.
    assert_close(got["forward"], want["forward"], dtype)
    assert mx.array_equal(got["forward"], want["forward"].astype(dtype))
    assert_close(got["grad"], want["grad"], dtype)


@pytest.mark.parametrize("dtype", DTYPES + [mx.bfloat16], ids=str)
def test_bias_gradient(dtype):
    y = mx.random.normal((2, 5, 3, 4, 6), key=mx.random.key(5)).astype(dtype)
    bias = mx.random.normal((5,), key=mx.random.key(6)).astype(dtype)
    gy = mx.random.normal(y.shape, key=mx.random.key(7)).astype(dtype)
    out, (gyy, gb) = mx.vjp(lambda y, b: [kconv.add_channel_bias(y, b)], [y, bias], [gy])
    assert mx.array_equal(out[0], y + bias.reshape(1, -1, 1, 1, 1))
    assert mx.array_equal(gyy, gy)
    assert_close(gb, gy.astype(mx.float32).sum(axis=(0, 2, 3, 4)), dtype)


def test_bias_gradient_in_chunks(monkeypatch):
    # Few threads wanted -> R = 3 chunks over 8 rows, the last one short.
    monkeypatch.setattr(kconv, "REDUCTION_THREADS", 7)
    gy = mx.random.normal((2, 3, 2, 2, 5), key=mx.random.key(8))
    assert kconv.reduction_chunks(3, 8) == 3
    assert_close(kconv.bias_grad(gy), gy.sum(axis=(0, 2, 3, 4)), mx.float32)


def test_weight_gradient_with_empty_chunks(monkeypatch):
    # 3 chunks over 2 rows (the third has none) must still write zeros.
    monkeypatch.setattr(kconv, "REDUCTION_THREADS", 10**6)
    case = cases.ConvCase("tiny", (1, 2, 1, 2, 3), (2, 1, 1, 1, 2), (1, 1, 1), ((0, 0),) * 3, (1, 1, 1), 2)
    x, w, gy = cases.conv_inputs(case)
    got = kconv.conv_grad_weight(gy, x, w.shape, *cases.conv_args(case))
    want = compare.conv_paths(case, x, w, gy, dispatch.portable_conv3d)["grad_weight"]
    assert_close(got, want, mx.float32)


def test_hand_computed_depthwise():
    # Channel c holds 1..8 (+8c); a 1x2x2 kernel of ones over depth-1 input sums
    # each 2x2 window: 1+2+3+4, 5+6+7+8 and 9+...+12, 13+...+16.
    x = mx.arange(1, 17, dtype=mx.float32).reshape(1, 2, 2, 2, 2)
    w = mx.ones((2, 1, 1, 2, 2))
    y = kconv.conv_forward(x, w, (1, 1, 1), ((0, 0),) * 3, (1, 1, 1), 2)
    assert y.reshape(-1).tolist() == [10.0, 26.0, 42.0, 58.0]


def test_hand_computed_circular_pad():
    x = mx.array([[[[[1.0, 2.0, 3.0]]]]])
    got = kpad.pad3d_forward(x, ((0, 0), (0, 0), (2, 1)), "circular")
    assert got.reshape(-1).tolist() == [2.0, 3.0, 1.0, 2.0, 3.0, 1.0]
    grad = kpad.pad3d_adjoint(mx.arange(6, dtype=mx.float32).reshape(1, 1, 1, 1, 6), ((0, 0), (0, 0), (2, 1)), "circular", x.shape)
    # Input 1 is read at padded positions 2 and 5, input 2 at 0 and 3, 3 at 1 and 4.
    assert grad.reshape(-1).tolist() == [2.0 + 5.0, 0.0 + 3.0, 1.0 + 4.0]


# --- Signatures MLX generates ------------------------------------------------

def _representative_launches():
    """One traced launch per kernel, float32, with the template values of the tests."""
    launches = {}
    x, w, gy = cases.conv_inputs(cases.CONV_CASES[2])

    def record(name, inputs, template, grid, output_shapes, output_dtypes):
        launches[name] = (inputs, template, grid, output_shapes, output_dtypes)
        return [mx.zeros(s, dtype=d) for s, d in zip(output_shapes, output_dtypes)]

    library.launch = record
    args = cases.conv_args(cases.CONV_CASES[2])
    kconv.conv_forward(x, w, *args)
    kconv.conv_grad_input(gy, w, x.shape, *args)
    kconv.conv_grad_weight(gy, x, w.shape, *args)
    kconv.bias_grad(gy)
    xp = mx.zeros((1, 2, 3, 4, 5))
    for mode in library.PAD_MODES:
        kpad.pad3d_forward(xp, ((1, 1),) * 3, mode)
        kpad.pad3d_adjoint(mx.zeros((1, 2, 5, 6, 7)), ((1, 1),) * 3, mode, xp.shape)
    return launches


def _signatures() -> dict[str, str]:
    out = {}
    for name, (inputs, template, grid, shapes, dtypes) in sorted(_representative_launches().items()):
        source = harness.generated_source(name, inputs, template, grid, shapes, dtypes)
        out[name] = source[: source.index(") {") + 1]
    return out


def test_generated_signatures_match_snapshot():
    """The signatures MLX generates, as the shim and harness were written for.

    Regenerate with ``LUCID_UPDATE_SIGNATURES=1 pytest tests/test_kernels.py``
    after checking that the harness still binds every argument correctly.
    """
    text = "".join(f"== {name}\n{sig}\n" for name, sig in _signatures().items())
    if "LUCID_UPDATE_SIGNATURES" in os.environ:
        SIGNATURES.write_text(text)
    assert text == SIGNATURES.read_text()


@pytest.mark.parametrize("name", sorted(library.KERNELS))
def test_signature_declares_everything_the_body_uses(name):
    spec = library.KERNELS[name]
    inputs, template, grid, shapes, dtypes = _representative_launches()[name]
    source = harness.generated_source(name, inputs, template, grid, shapes, dtypes)
    body = re.sub(r"//[^\n]*", "", library.source(spec.source))  # code only
    _, params = harness.parse_signature(source)
    declared = {pname: ctype for ctype, pname in params}
    template_line = source.splitlines()[0]
    # Inputs are read-only buffers of the dtype the launcher passes; outputs
    # writable device buffers; shapes int arrays: what the shim binds.
    for arg, array in zip(spec.inputs, inputs):
        scalar = {mx.float32: "float", mx.int32: "int32_t"}[array.dtype]
        assert re.fullmatch(rf"const (device|constant) {scalar}\*", declared[arg]), (arg, declared[arg])
    for arg, dtype in zip(spec.outputs, dtypes):
        assert declared[arg] == ("device float*"), (arg, declared[arg])
    for used in set(re.findall(r"\b(\w+)_shape\b", body)):
        assert declared[f"{used}_shape"] == "const constant int*"
    assert not re.search(r"\w+_(strides|ndim)\b", body), "the harness binds strides/ndim, but no body should need them"
    assert declared["thread_position_in_grid"] == "uint3"
    assert not re.search(r"\bthreadgroup\b|barrier", body), "the harness does not emulate barriers"
    for tparam, value in template:
        kind = "typename" if isinstance(value, mx.Dtype) else "int"
        assert f"{kind} {tparam}" in template_line
        assert re.search(rf"\b{tparam}\b", body), f"template {tparam} unused by the body"


@pytest.mark.parametrize("stem", sorted({spec.source for spec in library.KERNELS.values()}))
def test_bodies_stay_in_the_dialect_both_compilers_accept(stem):
    # What g++ would accept but Metal would not (or the shim cannot emulate).
    code = re.sub(r"//[^\n]*", "", library.source(stem))
    for pattern, why in [
        (r"\bdouble\b|\d\.\d*(?![\deEf])", "Metal has no double (write float literals as 1.0f)"),
        (r"\bstd::|#include", "no C++ standard library in Metal"),
        (r"\batomic", "the harness runs threads one by one, so atomics would go untested"),
        (r"\bnew\b|\bdelete\b|\bthrow\b|\btry\b", "no allocation or exceptions in Metal"),
    ]:
        assert not re.search(pattern, code), f"{stem}.metal: {why}"


# --- Packaging ---------------------------------------------------------------

def _can_build_offline() -> bool:
    """Whether this environment's setuptools can build a wheel without isolation."""
    try:
        setuptools = version("setuptools")
    except PackageNotFoundError:
        return False
    major, minor = (int(p) for p in setuptools.split(".")[:2])
    try:
        version("wheel")
        has_wheel = True
    except PackageNotFoundError:
        has_wheel = False
    # bdist_wheel moved into setuptools in 70.1; before that it needs `wheel`.
    return (major, minor) >= (70, 1) or (major >= 68 and has_wheel)


def test_wheel_ships_the_metal_sources(tmp_path):
    # Build from a copy so the checkout gets no build/ or egg-info of ours.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    for name in ("lucid_mlx", "metal"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    isolation = ["--no-build-isolation"] if _can_build_offline() else []
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("lucid_mlx-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for stem in {spec.source for spec in library.KERNELS.values()}:
        assert f"lucid_mlx/metal/{stem}.metal" in names
    assert "lucid_mlx/kernels/library.py" in names


def test_sources_load_through_importlib_resources():
    for spec in library.KERNELS.values():
        text = library.source(spec.source)
        assert text.lstrip().startswith(f"// {spec.source}:"), "each file opens with its header comment"
        assert (ROOT / "metal" / f"{spec.source}.metal").read_text() == text


# --- The selftest Mac users run ------------------------------------------------

def test_selftest_without_metal_checks_the_portable_path():
    result = subprocess.run([sys.executable, "-m", "lucid_mlx.selftest"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Metal is not available" in result.stdout
    assert "MISMATCH" not in result.stdout and "checks passed" in result.stdout


def _small_selftest(monkeypatch):
    monkeypatch.setattr(cases, "DTYPES", (mx.float16,))
    monkeypatch.setattr(cases, "CONV_CASES", cases.CONV_CASES[:2])
    monkeypatch.setattr(cases, "PAD_CASES", cases.PAD_CASES[:1])
    monkeypatch.setattr(cases, "EXTRA_PAD_CASES", {})


def test_selftest_metal_table_passes_on_correct_kernels(monkeypatch, capsys):
    _small_selftest(monkeypatch)
    assert selftest.main(metal=True) == 0
    out = capsys.readouterr().out
    assert "grouped_conv3d grad_weight" in out and "pad3d_circular grad" in out
    assert "MISMATCH" not in out


def test_selftest_names_the_candidates_autotuning_picks(monkeypatch, capsys, tmp_path):
    from lucid_mlx.ops import autotune

    monkeypatch.setenv("LUCID_MLX_CACHE_DIR", str(tmp_path))  # not the user's cache file
    autotune.reset()
    _small_selftest(monkeypatch)
    try:
        assert selftest.main(metal=True) == 0
        picked = {m.winner for m in autotune.measurements().values()}
    finally:
        autotune.reset()
    lines = capsys.readouterr().out.splitlines()
    assert "autotune picks" in lines[1]
    rows = [line for line in lines if line.startswith("grouped_conv3d")]
    # Both cases are depthwise: autotuning chose between the depthwise sums
    # and per-group convolutions (no kernel candidate without Metal).
    assert picked <= {"depthwise", "per_group"} and picked
    assert len(rows) == 3 * 2 and all(line.split()[-2] in picked for line in rows)


def test_selftest_reports_a_wrong_kernel(monkeypatch, capsys):
    _small_selftest(monkeypatch)

    def off_by_a_bit(name, *args):
        outs = harness.cpu_launch(name, *args)
        return [o + 0.5 if name == "pad3d_grad_reflect" else o for o in outs]

    monkeypatch.setattr(library, "launch", off_by_a_bit)
    assert selftest.main(metal=True) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if "MISMATCH" in line]
    assert len(lines) == 1 and lines[0].startswith("pad3d_reflect grad")


def test_selftest_reports_a_kernel_error(monkeypatch, capsys):
    _small_selftest(monkeypatch)

    def broken(name, *args):
        if name == "grouped_conv3d":
            raise RuntimeError("Unable to build metal library from source")
        return harness.cpu_launch(name, *args)

    monkeypatch.setattr(library, "launch", broken)
    assert selftest.main(metal=True) == 1
    assert "error: RuntimeError: Unable to build metal library" in capsys.readouterr().out


# --- Random configurations ---------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(1, 2))
    og = draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(3))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(3))
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(3))
    # Each input size leaves room for at least one output position.
    size = tuple(
        max(1, d * (kk - 1) + 1 - lo - hi) + draw(st.integers(0, 4))
        for d, kk, (lo, hi) in zip(dilation, k, pads)
    )
    n = draw(st.integers(1, 2))
    return cases.ConvCase("random", (n, groups * cg, *size), (groups * og, cg, *k), stride, pads, dilation, groups)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(case=conv_cases())
def test_random_grouped_conv3d_matches_portable(case):
    x, w, gy = cases.conv_inputs(case)
    got = compare.conv_paths(case, x, w, gy, kconv.grouped_conv3d)
    want = compare.conv_paths(case, x, w, gy, dispatch.portable_conv3d)
    for part in ("forward", "grad_input", "grad_weight"):
        assert_close(got[part], want[part], mx.float32)
