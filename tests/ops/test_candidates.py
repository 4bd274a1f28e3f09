"""The candidates of a conv3d call: which there are, and that every one is correct.

Autotuning only chooses among candidates, so each is checked here against
the NumPy oracle (``tests/reference.py``): the forward and both gradients,
whole and in pieces, on the CPU and -- through the CPU harness of
``tests/metal_shim`` -- the Metal kernel on a mocked GPU.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx
from arrays import assert_close, rounded, to_np
from lucid_mlx.kernels import library
from lucid_mlx.ops import candidates, dispatch
from metal_shim import harness
from reference import conv3d_grad_input_ref, conv3d_grad_weight_ref, conv3d_ref

needs_compiler = pytest.mark.skipif(harness.compiler() is None, reason="no C++ compiler for the kernel harness")
P1 = ((1, 1),) * 3
ONES = (1, 1, 1)


pytestmark = pytest.mark.usefixtures("fresh_dispatch")  # tests/ops/conftest.py


@pytest.fixture
def gpu(monkeypatch):
    """Metal present, the stream on the GPU, kernels built (nothing is launched)."""
    monkeypatch.setattr(dispatch, "metal_available", lambda: True)
    monkeypatch.setattr(dispatch, "stream_on_gpu", lambda: True)
    monkeypatch.setattr(dispatch, "_ensure_built", lambda key, probes: True)


def labels(x_shape, w_shape, groups, stride=ONES, pads=P1, dtypes=(mx.float32, mx.float32)):
    x, w = mx.zeros(x_shape, dtype=dtypes[0]), mx.zeros(w_shape, dtype=dtypes[1])
    found = dispatch.conv3d_candidates(x, w, stride, pads, ONES, groups)
    return {role: [c.label for c in options] for role, options in found.items()}


DENSE, DEPTHWISE, GROUPED = ((4, 4, 3, 3, 3), 1), ((8, 1, 3, 3, 3), 4), ((8, 2, 3, 3, 3), 2)
X = (2, 4, 6, 6, 6)
BY_SLABS = "dense in 1x1 pieces, input gradient in 1x1 slabs"

# (id, weight and groups, budget, device, backend, expected {role: labels})
TABLE = [
    ("dense", DENSE, None, "cpu", "auto", {"forward": ["dense"], "backward": ["dense"]}),
    ("depthwise", DEPTHWISE, None, "cpu", "auto",
     {"forward": ["depthwise", "per_group"], "backward": ["depthwise", "per_group"]}),
    ("grouped", GROUPED, None, "cpu", "auto", {"forward": ["per_group"], "backward": ["per_group"]}),
    ("dense gpu", DENSE, None, "gpu", "auto", {"forward": ["dense"], "backward": ["dense"]}),
    ("depthwise gpu", DEPTHWISE, None, "gpu", "auto",
     {"forward": ["kernel", "depthwise", "per_group"], "backward": ["kernel", "depthwise", "per_group"]}),
    ("grouped gpu", GROUPED, None, "gpu", "auto",
     {"forward": ["kernel", "per_group"], "backward": ["kernel", "per_group"]}),
    ("grouped gpu portable", GROUPED, None, "gpu", "portable",
     {"forward": ["per_group"], "backward": ["per_group"]}),
    ("depthwise gpu metal", DEPTHWISE, None, "gpu", "metal", {"forward": ["kernel"], "backward": ["kernel"]}),
    # Budget 0: the finest pieces for every share of it, so one split per path.
    ("dense split", DENSE, 0, "cpu", "auto",
     {"forward": ["dense in 1x1 pieces"], "backward": [BY_SLABS]}),
    ("depthwise split", DEPTHWISE, 0, "cpu", "auto",
     {"forward": ["depthwise in 1x1 pieces", "per_group in 1x1 pieces"],
      "backward": ["depthwise in 1x1 pieces", "per_group in 1x1 pieces"]}),
    # The kernel holds no workspace of its own, but the shared part (padded
    # input, output and cotangent slabs) still splits it.
    ("grouped gpu split", GROUPED, 0, "gpu", "auto",
     {"forward": ["kernel in 1x1 pieces", "per_group in 1x1 pieces"],
      "backward": ["kernel in 1x1 pieces", "per_group in 1x1 pieces"]}),
]


@pytest.mark.parametrize("name, weight, limit, device, backend, want", TABLE, ids=[t[0] for t in TABLE])
def test_candidate_table(request, name, weight, limit, device, backend, want):
    if device == "gpu":
        request.getfixturevalue("gpu")
    lucid_mlx.set_workspace_limit(limit)
    (w_shape, groups) = weight
    with dispatch.use_backend(backend):
        assert labels(X, w_shape, groups) == want


def test_a_strided_dense_split_has_no_input_slabs():
    lucid_mlx.set_workspace_limit(0)
    got = labels(X, DENSE[0], 1, stride=(2, 1, 1))
    assert got["backward"] == ["dense in 1x1 pieces"]


def test_mixed_dtypes_have_no_kernel_candidate(gpu):
    got = labels(X, GROUPED[0], 2, dtypes=(mx.float16, mx.float32))
    assert got["forward"] == ["per_group"]


def test_pieces_below_the_budget():
    # A budget the layer exceeds: the default plan's pieces come first, then
    # the pieces for a half and a quarter of the budget -- smaller, distinct.
    x, w = mx.zeros((2, 8, 16, 16, 16)), mx.zeros((8, 8, 3, 3, 3))
    lucid_mlx.set_workspace_limit(6_000_000)
    found = dispatch.conv3d_candidates(x, w, ONES, P1, ONES, 1)
    default = dispatch.conv3d_plan(x, w, ONES, P1, ONES, 1).split
    forward, backward = found["forward"], found["backward"]
    assert forward[0].pieces == default.forward and backward[0].pieces == default.backward
    assert backward[0].input_slabs == default.input_slabs
    for options in (forward, backward):
        sizes = [c.pieces.samples * c.pieces.planes for c in options]
        assert len(options) == 3 and sizes == sorted(set(sizes), reverse=True), sizes
    # A budget the layer fits: whole only.
    lucid_mlx.set_workspace_limit(None)
    assert labels((2, 8, 16, 16, 16), (8, 8, 3, 3, 3), 1) == {"forward": ["dense"], "backward": ["dense"]}


def test_the_default_rule_is_the_first_candidate():
    # With autotuning off the plan is the first candidate of each role.
    x, w = mx.zeros(X), mx.zeros(DEPTHWISE[0])
    for limit in (None, 0):
        lucid_mlx.set_workspace_limit(limit)
        found = dispatch.conv3d_candidates(x, w, ONES, P1, ONES, 4)
        conv_plan = dispatch.conv3d_plan(x, w, ONES, P1, ONES, 4)
        assert conv_plan.labels == (found["forward"][0].label, found["backward"][0].label)
        assert conv_plan.path is dispatch.DEPTHWISE


def test_bad_role():
    call = candidates.Call(X, DENSE[0], (6, 6, 6), ONES, P1, ONES, 1)
    with pytest.raises(ValueError, match="`role` must be one of .*'sideways'"):
        candidates.for_role([dispatch.DENSE], call, "sideways", 4, None)


# --- Every candidate against the oracle ---------------------------------------

# (input shape, weight shape, stride, pads, dilation, groups)
CONFIGS = [
    ((2, 4, 6, 5, 5), (4, 4, 3, 3, 3), ONES, P1, ONES, 1),
    ((1, 4, 7, 5, 6), (6, 4, 3, 2, 3), (2, 1, 2), ((1, 1), (0, 0), (1, 1)), ONES, 1),
    ((2, 4, 6, 5, 5), (8, 1, 3, 3, 3), (2, 1, 1), P1, ONES, 4),  # depthwise, multiplier 2
    ((1, 3, 8, 6, 5), (3, 1, 3, 3, 3), ONES, ((2, 2), (1, 1), (2, 2)), (2, 1, 2), 3),  # dilated
    ((2, 6, 5, 5, 4), (6, 2, 3, 1, 2), (1, 2, 1), ((2, 0), (0, 1), (1, 1)), ONES, 3),  # asymmetric
]


def _check_every_candidate(config, limit, dtype=mx.float32):
    x_shape, w_shape, stride, pads, dilation, groups = config
    rng = np.random.default_rng(7)
    x, xn = rounded(rng, x_shape, dtype)
    w, wn = rounded(rng, w_shape, dtype)
    want_y = conv3d_ref(xn, wn, None, stride, pads, dilation, groups)
    cot, cotn = rounded(rng, want_y.shape, dtype)
    want_gx = conv3d_grad_input_ref(cotn, x_shape, wn, stride, pads, dilation, groups)
    want_gw = conv3d_grad_weight_ref(cotn, xn, w_shape, stride, pads, dilation, groups)
    lucid_mlx.set_workspace_limit(limit)
    found = dispatch.conv3d_candidates(x, w, stride, pads, dilation, groups)
    call = candidates.Call(x_shape, w_shape, want_y.shape[2:], stride, pads, dilation, groups)
    for c in found["forward"]:
        assert_close(candidates.run_forward(c, x, w, call), want_y, what=f"forward of {c.label}")
    for c in found["backward"]:
        gx, gw = candidates.run_backward(c, x, w, cot, call)
        assert_close(gx, want_gx, what=f"input gradient of {c.label}")
        assert_close(gw, want_gw, what=f"weight gradient of {c.label}")
    return found


# 40 kB: several piece sizes, and a strided layer whose forward fits but backward does not.
@pytest.mark.parametrize("limit", [None, 0, 40_000], ids=["whole", "finest pieces", "some pieces"])
@pytest.mark.parametrize("config", CONFIGS, ids=["dense", "dense strided", "depthwise x2", "dilated", "grouped"])
def test_every_cpu_candidate_against_the_oracle(config, limit):
    found = _check_every_candidate(config, limit)
    assert found["forward"] and found["backward"]


@pytest.fixture
def kernel_launches(monkeypatch):
    """Metal mocked, every kernel launch run by the CPU harness."""
    monkeypatch.setattr(dispatch, "metal_available", lambda: True)
    monkeypatch.setattr(dispatch, "stream_on_gpu", lambda: True)
    names = []

    def launch(name, *args):
        names.append(name)
        return harness.cpu_launch(name, *args)

    monkeypatch.setattr(library, "launch", launch)
    return names


@needs_compiler
@pytest.mark.parametrize("limit", [None, 0], ids=["whole", "finest pieces"])
def test_the_kernel_candidates_against_the_oracle(kernel_launches, limit):
    found = _check_every_candidate(CONFIGS[2], limit)
    assert found["forward"][0].path.name == "kernel"
    assert "grouped_conv3d_grad_weight" in kernel_launches


def test_combined_path_takes_the_output_of_one_and_the_gradients_of_the_other():
    x_shape, w_shape, stride, pads, dilation, groups = CONFIGS[2]
    geometry = (stride, pads, dilation, groups)
    keys = mx.random.split(mx.random.key(3), 3)
    x, w = mx.random.normal(x_shape, key=keys[0]), mx.random.normal(w_shape, key=keys[1])
    path = candidates.combined(dispatch.PER_GROUP, dispatch.DEPTHWISE)
    assert path.name == "per_group forward, depthwise backward"
    assert candidates.combined(dispatch.DEPTHWISE, dispatch.DEPTHWISE) is dispatch.DEPTHWISE
    want_y = dispatch.PER_GROUP.forward(x, w, *geometry)
    cot = mx.random.normal(want_y.shape, key=keys[2])
    (y,), (gx, gw) = mx.vjp(lambda x, w: [path.forward(x, w, *geometry)], [x, w], [cot])
    assert mx.array_equal(y, want_y)
    want_gx, want_gw = dispatch.DEPTHWISE.grads(x, w, cot, *geometry)
    assert mx.array_equal(gx, want_gx) and mx.array_equal(gw, want_gw)
    # Second derivatives go through the written-out identities: the same
    # numbers as either path alone, up to rounding.

    def second(p):
        inner = mx.grad(lambda x: (p.forward(x, w, *geometry) ** 2).sum())
        return mx.grad(lambda x: (inner(x) ** 2).sum())(x)
    np.testing.assert_allclose(to_np(second(path)), to_np(second(dispatch.DEPTHWISE)), rtol=1e-4, atol=1e-3)
