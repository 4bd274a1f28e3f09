"""The dispatcher's choices, with Metal availability mocked.

Kernel launches are routed to the CPU harness (``tests/metal_shim``) and
recorded, so each test sees which kernel ran with which grid, threadgroup and
template values -- and that the numbers it produced match the portable path.
"""

from __future__ import annotations

import warnings

import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx.kernels import library
from lucid_mlx.nn import functional as F
from lucid_mlx.ops import dispatch
from lucid_mlx.ops import pad as ppad
from metal_shim import harness

needs_compiler = pytest.mark.skipif(
    harness.compiler() is None,
    reason="no C++ compiler (g++ or clang++) on PATH: kernel launches cannot be executed on the CPU",
)


pytestmark = pytest.mark.usefixtures("fresh_dispatch")  # tests/ops/conftest.py


@pytest.fixture
def launches(monkeypatch):
    """Record every launch and execute it on the CPU."""
    calls = []

    def record(name, inputs, template, grid, output_shapes, output_dtypes):
        calls.append({"name": name, "template": list(template), "grid": tuple(grid),
                      "threadgroup": library.threadgroup(grid), "inputs": inputs})
        return harness.cpu_launch(name, inputs, template, grid, output_shapes, output_dtypes)

    monkeypatch.setattr(library, "launch", record)
    return calls


@pytest.fixture
def gpu(monkeypatch):
    """Pretend Metal is present and the default stream is on the GPU."""
    monkeypatch.setattr(dispatch, "metal_available", lambda: True)
    monkeypatch.setattr(dispatch, "stream_on_gpu", lambda: True)


CONV = dict(stride=(1, 2, 3), pads=((2, 0), (0, 1), (1, 1)), dilation=(2, 1, 1), groups=3)


def conv_inputs(dtype=mx.float32):
    keys = mx.random.split(mx.random.key(11), 2)
    x = mx.random.normal((2, 6, 7, 8, 9), key=keys[0]).astype(dtype)
    w = mx.random.normal((6, 2, 3, 1, 2), key=keys[1]).astype(dtype)
    return x, w


def run_conv(x, w):
    args = (CONV["stride"], CONV["pads"], CONV["dilation"], CONV["groups"])
    return dispatch.conv3d_plan(x, w, *args).path.forward(x, w, *args)


def portable_conv(x, w):
    return dispatch.portable_conv3d(x, w, CONV["stride"], CONV["pads"], CONV["dilation"], CONV["groups"])


def test_portable_without_metal(launches):
    # The real checks: this machine has no Metal and the stream is on the CPU.
    x, w = conv_inputs()
    assert mx.array_equal(run_conv(x, w), portable_conv(x, w))
    pairs = ((1, 1), (0, 2), (2, 0))
    assert mx.array_equal(dispatch.pad3d(x, pairs, "circular"), ppad.pad3d(x, pairs, "circular"))
    assert launches == []


def test_portable_when_stream_is_on_the_cpu(monkeypatch, launches):
    monkeypatch.setattr(dispatch, "metal_available", lambda: True)
    with mx.stream(mx.cpu):
        run_conv(*conv_inputs())
    assert launches == []


@needs_compiler
def test_conv_kernels_launch_with_the_right_grid_and_templates(gpu, launches):
    x, w = conv_inputs()
    gy = mx.random.normal((2, 6, 5, 5, 4), key=mx.random.key(12))
    y, (gx, gw) = mx.vjp(lambda x, w: [run_conv(x, w)], [x, w], [gy])
    want_y, (want_gx, want_gw) = mx.vjp(lambda x, w: [portable_conv(x, w)], [x, w], [gy])
    np.testing.assert_allclose(np.array(y[0]), np.array(want_y[0]), atol=1e-5)
    np.testing.assert_allclose(np.array(gx), np.array(want_gx), atol=1e-5)
    np.testing.assert_allclose(np.array(gw), np.array(want_gw), atol=1e-4)

    # First the one-time build probes (one output element, same templates) ...
    template = [("T", mx.float32), ("KD", 3), ("KH", 1), ("KW", 2)]
    probes, real = launches[:3], launches[3:]
    assert [c["name"] for c in probes] == ["grouped_conv3d", "grouped_conv3d_grad_input", "grouped_conv3d_grad_weight"]
    assert [c["template"] for c in probes] == [template, template, template[1:]]
    # ... then the call: output (2, 6, 5, 5, 4) -> grid (OW, OH, N*C_out*OD).
    assert [c["name"] for c in real] == ["grouped_conv3d", "grouped_conv3d_grad_input", "grouped_conv3d_grad_weight"]
    assert real[0]["grid"] == (4, 5, 2 * 6 * 5) and real[0]["threadgroup"] == (4, 5, 12)
    assert real[0]["template"] == template
    # Input gradient: one thread per input element, grid (W, H, N*C_in*D).
    assert real[1]["grid"] == (9, 8, 2 * 6 * 7) and real[1]["threadgroup"] == (9, 8, 3)
    # Weight gradient: (taps per filter, C_out, R) with R = ceil(2**15 / 72
    # weights) capped at the N*OD*OH = 50 rows to split.
    assert real[2]["grid"] == (2 * 3 * 1 * 2, 6, 50) and real[2]["threadgroup"] == (12, 6, 3)
    # stride, dilation, low pads, D H W, OD OH OW, groups, R
    assert real[2]["inputs"][2].tolist() == [1, 2, 3, 2, 1, 1, 2, 0, 1, 7, 8, 9, 5, 5, 4, 3, 50]


@needs_compiler
@pytest.mark.parametrize("mode", library.PAD_MODES)
def test_pad_kernel_per_mode(gpu, launches, mode):
    x = mx.random.normal((2, 3, 4, 5, 6), key=mx.random.key(13)).astype(mx.float16)
    pairs = ((1, 2), (3, 0), (0, 4))
    got = dispatch.pad3d(x, pairs, mode, 0.0)
    assert mx.array_equal(got, ppad.pad3d(x, pairs, mode, 0.0))
    modes = {"constant": 0, "reflect": 1, "replicate": 2, "circular": 3}
    names = [c["name"] for c in launches]
    assert names == [f"pad3d_{mode}", f"pad3d_grad_{mode}", f"pad3d_{mode}"]
    call = launches[-1]
    assert call["template"] == [("T", mx.float16), ("MODE", modes[mode])]
    assert call["grid"] == (10, 8, 2 * 3 * 7) and call["threadgroup"] == (10, 8, 3)


@needs_compiler
def test_probes_run_once_per_specialisation(gpu, launches):
    x, w = conv_inputs()
    run_conv(x, w)
    run_conv(x * 2, w)
    assert [c["name"] for c in launches].count("grouped_conv3d_grad_weight") == 1
    run_conv(x.astype(mx.float16), w.astype(mx.float16))  # a new dtype is a new library
    assert [c["name"] for c in launches].count("grouped_conv3d_grad_weight") == 2
    assert library.kernel("grouped_conv3d") is library.kernel("grouped_conv3d")


@pytest.mark.parametrize(
    "x_dtype,w_dtype", [(mx.float16, mx.float32), (mx.float32, mx.float16)], ids=["x16-w32", "x32-w16"]
)
def test_mixed_dtypes_take_the_portable_path(gpu, launches, x_dtype, w_dtype):
    x, w = conv_inputs()
    assert dispatch.conv_support(x.astype(x_dtype), w.astype(w_dtype), (2, 6, 5, 5, 4)) is not None
    run_conv(x.astype(x_dtype), w.astype(w_dtype))
    assert launches == []


def test_arrays_past_the_index_limit_take_the_portable_path(gpu, launches, monkeypatch):
    x, w = conv_inputs()
    monkeypatch.setattr(dispatch, "INDEX_LIMIT", x.size)  # x has exactly the limit
    assert "2**31" in dispatch.conv_support(x, w, (2, 6, 5, 5, 4))
    assert mx.array_equal(run_conv(x, w), portable_conv(x, w))
    assert "2**31" in dispatch.pad_support(x, ((0, 0),) * 3, "constant")
    assert launches == []


def test_pad_support_rules():
    x = mx.zeros((1, 1, 3, 4, 5))
    assert dispatch.pad_support(x, ((3, 3), (4, 4), (5, 5)), "circular") is None
    assert "circular" in dispatch.pad_support(x, ((4, 0), (0, 0), (0, 0)), "circular")
    assert "reflect" in dispatch.pad_support(x, ((3, 0), (0, 0), (0, 0)), "reflect")
    assert "negative" in dispatch.pad_support(x, ((-1, 0), (0, 0), (0, 0)), "replicate")
    assert dispatch.pad_support(x, ((-1, 2), (0, -3), (0, 0)), "constant") is None
    assert "empty" in dispatch.pad_support(x, ((-2, -1), (0, 0), (0, 0)), "constant")
    assert "float" in dispatch.pad_support(x.astype(mx.int32), ((0, 0),) * 3, "constant")


def test_failed_build_warns_once_and_falls_back(gpu):
    # Launch for real: on Linux evaluating a Metal kernel raises MLX's
    # "No Metal back-end" error, just as a compile error would on a Mac.
    x, w = conv_inputs()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = run_conv(x, w)
        second = run_conv(x, w)
        padded = dispatch.pad3d(x, ((1, 1),) * 3, "reflect")
    assert mx.array_equal(first, portable_conv(x, w))
    assert mx.array_equal(second, first)
    assert mx.array_equal(padded, ppad.pad3d(x, ((1, 1),) * 3, "reflect"))
    ours = [c for c in caught if "lucid_mlx" in str(c.message)]
    assert len(ours) == 1
    assert ours[0].category is RuntimeWarning
    message = str(ours[0].message)
    assert "'grouped_conv3d'" in message and "Metal" in message and "portable path" in message


def test_forced_portable(gpu, launches, monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "portable")
    run_conv(*conv_inputs())
    dispatch.pad3d(mx.zeros((1, 1, 2, 2, 2)), ((1, 1),) * 3, "circular")
    assert launches == []


def test_forced_metal_without_metal_raises(monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "metal")
    with pytest.raises(RuntimeError, match="LUCID_MLX_KERNELS=metal.*Metal is unavailable"):
        run_conv(*conv_inputs())


def test_forced_metal_raises_instead_of_falling_back(gpu, monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "metal")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning either
        with pytest.raises(RuntimeError, match="Metal"):
            run_conv(*conv_inputs())
    x, w = conv_inputs()
    with pytest.raises(RuntimeError, match="do not support dtypes"):
        run_conv(x.astype(mx.float16), w)


@needs_compiler
def test_use_backend_overrides_the_environment(gpu, launches, monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "portable")
    with dispatch.use_backend("auto"):
        run_conv(*conv_inputs())
    assert launches
    launches.clear()
    run_conv(*conv_inputs())
    assert launches == []


def test_bad_switch_values(monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "gpu")
    with pytest.raises(ValueError, match="LUCID_MLX_KERNELS must be one of .*'gpu'"):
        run_conv(*conv_inputs())
    with pytest.raises(ValueError, match="`name` must be one of .*'cuda'"):
        with dispatch.use_backend("cuda"):
            pass


@needs_compiler
def test_functional_conv3d_gradients_through_the_kernels(gpu, launches):
    # The whole chain: F.conv3d -> ops.conv3d -> dispatch -> custom_function
    # -> kernels (run by the harness), against the same call forced portable.
    keys = mx.random.split(mx.random.key(14), 4)
    x = mx.random.normal((2, 4, 5, 6, 5), key=keys[0])
    w = mx.random.normal((8, 1, 3, 3, 3), key=keys[1])
    b = mx.random.normal((8,), key=keys[2])
    gy = mx.random.normal((2, 8, 3, 3, 3), key=keys[3])

    def loss(x, w, b):
        return (F.conv3d(x, w, b, stride=2, padding=1, groups=4) * gy).sum()

    got = mx.grad(loss, argnums=(0, 1, 2))(x, w, b)
    assert "grouped_conv3d_grad_weight" in [c["name"] for c in launches[3:]]
    with dispatch.use_backend("portable"):
        want = mx.grad(loss, argnums=(0, 1, 2))(x, w, b)
    for g, h in zip(got, want):
        np.testing.assert_allclose(np.array(g), np.array(h), rtol=1e-5, atol=1e-4)


@needs_compiler
def test_add_bias_uses_the_bias_gradient_kernel(gpu, launches):
    y = mx.random.normal((2, 3, 2, 3, 4), key=mx.random.key(15))
    b = mx.array([1.0, -2.0, 0.5])
    gb = mx.grad(lambda b: (dispatch.add_bias(y, b) * y).sum())(b)
    assert [c["name"] for c in launches] == ["conv3d_grad_bias", "conv3d_grad_bias"]
    np.testing.assert_allclose(np.array(gb), np.array(y.sum(axis=(0, 2, 3, 4))), rtol=1e-5)


@needs_compiler
def test_circular_grouped_conv3d_module_runs_both_kernels(gpu, launches):
    import mlx.nn as mlx_nn

    from lucid_mlx import nn

    mx.random.seed(16)
    layer = nn.Conv3d(4, 8, 3, padding=1, groups=4, padding_mode="circular")
    x = mx.random.normal((1, 4, 4, 5, 3), key=mx.random.key(17))

    def loss(model, x):
        return (model(x) ** 2).sum()

    got_loss, got = mlx_nn.value_and_grad(layer, loss)(layer, x)
    got_gx = mx.grad(lambda x: loss(layer, x))(x)
    probes = 5  # three conv kernels and the two pad kernels, once each
    names = [c["name"] for c in launches[probes:]]
    assert {"pad3d_circular", "pad3d_grad_circular", "grouped_conv3d", "grouped_conv3d_grad_weight"} <= set(names)
    with dispatch.use_backend("portable"):
        want_loss, want = mlx_nn.value_and_grad(layer, loss)(layer, x)
        want_gx = mx.grad(lambda x: loss(layer, x))(x)
    np.testing.assert_allclose(np.array(got_gx), np.array(want_gx), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got_loss.item(), want_loss.item(), rtol=1e-5)
    for key in ("weight", "bias"):
        np.testing.assert_allclose(np.array(got[key]), np.array(want[key]), rtol=1e-5, atol=1e-4)


def test_a_blank_switch_means_auto(monkeypatch):
    for text in ("", "  "):
        monkeypatch.setenv(dispatch.ENV_VAR, text)
        assert dispatch.backend() == "auto"


def test_errors_inside_use_backend_name_it(monkeypatch):
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    with dispatch.use_backend("metal"):
        with pytest.raises(RuntimeError, match=r"^use_backend\('metal'\) forces the kernels, but Metal is unavailable"):
            run_conv(*conv_inputs())


def test_use_backend_is_per_thread_and_restored_exactly(monkeypatch):
    import threading

    monkeypatch.setenv(dispatch.ENV_VAR, "auto")
    inside_portable = threading.Event()
    metal_entered = threading.Event()
    seen = {}

    def portable_thread():
        with dispatch.use_backend("portable"):
            inside_portable.set()
            metal_entered.wait(5)
            seen["portable thread"] = dispatch.backend()
        seen["portable thread after"] = dispatch.backend()

    def metal_thread():
        inside_portable.wait(5)
        with dispatch.use_backend("metal"):
            metal_entered.set()
            seen["metal thread"] = dispatch.backend()

    threads = [threading.Thread(target=portable_thread), threading.Thread(target=metal_thread)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"portable thread": "portable", "portable thread after": "auto", "metal thread": "metal"}
    assert dispatch.backend() == "auto"
    with dispatch.use_backend("portable"):
        with dispatch.use_backend("metal"):
            assert dispatch.backend() == "metal"
        assert dispatch.backend() == "portable"
    assert dispatch.backend() == "auto"
