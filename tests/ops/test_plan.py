"""The dispatcher's plan: pure shape arithmetic, and one decision per convolution."""

from __future__ import annotations

import mlx.core as mx
import pytest

import lucid_mlx
from lucid_mlx.ops import dispatch, plan


@pytest.fixture(autouse=True)
def _restore():
    yield
    lucid_mlx.reset_workspace_limit()
    dispatch.reset()


def test_output_size_hand_computed():
    # D: (9 + 1 + 2 - 2*2 - 1) // 2 + 1 = 4; H: (6 - 3) // 1 + 1 = 4; W: (5 + 6 - 1) // 3 + 1 = 4
    assert plan.output_size((9, 6, 5), (3, 3, 1), (2, 1, 3), ((1, 2), (0, 0), (3, 3)), (2, 1, 1)) == (4, 4, 4)


@pytest.mark.parametrize("out_d, planes, depth, k, s, lo, dil", [
    (9, 4, 9, 3, 1, 1, 1), (4, 3, 11, 3, 2, 1, 1), (13, 5, 13, 3, 1, 2, 2), (10, 1, 4, 3, 1, 6, 1),
    (2097155, 1, 5, 3, 1, 2**20, 1), (7, 2, 3, 2, 3, 5, 1),
])
def test_slabs_tile_the_output_and_read_exactly_their_window(out_d, planes, depth, k, s, lo, dil):
    slabs = plan.slabs(out_d, planes, depth, k, s, lo, dil)
    assert slabs[0].d0 == 0 and slabs[-1].d1 == out_d
    assert all(a.d1 == b.d0 for a, b in zip(slabs, slabs[1:]))
    for sl in slabs:
        if sl.b <= sl.a:
            # Only padding under every window of the slab, and no data slab was merged in.
            assert all(d * s - lo + (k - 1) * dil < 0 or d * s - lo >= depth for d in range(sl.d0, sl.d1))
            continue
        assert sl.d1 - sl.d0 <= planes
        # The first output plane's window starts pad_lo planes before input plane a; the
        # last one's ends pad_hi planes after b (all within the padded input).
        assert sl.d0 * s - lo == sl.a - sl.pad_lo
        assert (sl.d1 - 1) * s - lo + (k - 1) * dil + 1 == sl.b + sl.pad_hi
        assert 0 <= sl.a and sl.b <= depth


def test_fit_within_and_beyond_the_budget():
    x, w, out = (2, 8, 16, 16, 16), (8, 8, 3, 3, 3), (16, 16, 16)
    own = plan.unfold_workspace(x, w, out, (1, 1, 1), (1, 1, 1), False, 4)
    # One sample-plane: 27*8*256 unfold + 2*8*256 + 3*8*256 shared floats.
    assert own == (4 * 27 * 8 * 256, 0)
    assert plan.fit(x, w, out, (1, 1, 1), (1, 1, 1), own, 4, None) == (2, 16)
    whole = 2 * (16 * (own[0] + 4 * (2 * 8 * 256 + 3 * 8 * 256)) + 4 * 2 * 8 * 256 * 2)
    assert plan.fit(x, w, out, (1, 1, 1), (1, 1, 1), own, 4, whole) == (2, 16)
    samples, planes = plan.fit(x, w, out, (1, 1, 1), (1, 1, 1), own, 4, whole // 4)
    assert samples == 1 and 1 <= planes < 16
    assert plan.fit(x, w, out, (1, 1, 1), (1, 1, 1), own, 4, 0) == (1, 1)


def test_transposed_pads():
    # k=3 dilation 2 reaches 4 planes: pads (1, 2) leave (3, 2) for the cotangent.
    assert plan.transposed_pads((1, 1, 3, 3, 3), ((1, 2), (0, 0), (4, 4)), (2, 1, 2)) == ((3, 2), (2, 2), (0, 0))


ARGS = ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1))


@pytest.mark.parametrize("w_shape, groups, name", [
    ((4, 4, 3, 3, 3), 1, "dense"),
    ((8, 1, 3, 3, 3), 4, "depthwise"),
    ((8, 2, 3, 3, 3), 2, "per_group"),
])
def test_paths_on_the_cpu(w_shape, groups, name):
    x = mx.zeros((1, 4, 6, 6, 6))
    conv_plan = dispatch.conv3d_plan(x, mx.zeros(w_shape), *ARGS, groups)
    assert conv_plan.path.name == name and conv_plan.split is None
    assert conv_plan.out_size == (6, 6, 6)


def _on_a_gpu(monkeypatch):
    monkeypatch.setattr(dispatch, "metal_available", lambda: True)
    monkeypatch.setattr(dispatch, "stream_on_gpu", lambda: True)


def test_a_depthwise_fallback_on_the_gpu_takes_the_depthwise_gradients(monkeypatch):
    # The portable switch on a GPU: the plan, not the device, says how the
    # gradients of every piece are taken.
    _on_a_gpu(monkeypatch)
    lucid_mlx.set_workspace_limit(0)
    x, w = mx.zeros((2, 4, 6, 6, 6), dtype=mx.float16), mx.zeros((8, 1, 3, 3, 3), dtype=mx.float16)
    with dispatch.use_backend("portable"):
        conv_plan = dispatch.conv3d_plan(x, w, *ARGS, 4)
    assert conv_plan.path is dispatch.DEPTHWISE
    assert conv_plan.path.grads is dispatch.depthwise.grads
    assert conv_plan.split is not None and conv_plan.split.input_slabs is None


def test_the_kernel_path_costs_no_unfold(monkeypatch):
    _on_a_gpu(monkeypatch)
    monkeypatch.setattr(dispatch, "_ensure_built", lambda key, probes: True)
    x, w = mx.zeros((1, 4, 6, 6, 6)), mx.zeros((8, 2, 3, 3, 3))
    conv_plan = dispatch.conv3d_plan(x, w, *ARGS, 2)
    assert conv_plan.path.name == "kernel"
    assert conv_plan.path.workspace(x.shape, w.shape, (6, 6, 6), (1, 1, 1), (1, 1, 1), True, 4) == (0, 0)


def test_the_device_sets_the_temporaries_itemsize(monkeypatch):
    x, w = mx.zeros((1, 4, 8, 8, 8), dtype=mx.float16), mx.zeros((4, 4, 3, 3, 3), dtype=mx.float16)
    # MLX's CPU convolutions unfold in float32; on the GPU in the input dtype,
    # so the same budget takes twice the planes per piece there.
    lucid_mlx.set_workspace_limit(150_000)
    cpu = dispatch.conv3d_plan(x, w, *ARGS, 1).split
    _on_a_gpu(monkeypatch)
    gpu = dispatch.conv3d_plan(x, w, *ARGS, 1).split
    assert cpu is not None and gpu is not None
    assert gpu.forward.planes > cpu.forward.planes


def test_stride_one_dense_splits_take_the_input_gradient_by_slabs():
    lucid_mlx.set_workspace_limit(0)
    x, w = mx.zeros((1, 4, 6, 6, 6)), mx.zeros((4, 4, 3, 3, 3))
    assert dispatch.conv3d_plan(x, w, *ARGS, 1).split.input_slabs is not None
    strided = dispatch.conv3d_plan(x, w, (2, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1)
    assert strided.split.input_slabs is None


def test_padding_only_planes_come_as_one_slab_each_side():
    # padding (2**20, 2**20) around 5 input planes, k=3: two padding slabs around the data.
    slabs = plan.slabs(2**21 + 3, 1, 5, 3, 1, 2**20, 1)
    assert len(slabs) == 2 + 7
    assert slabs[0] == plan.Slab(0, 2**20 - 2, 0, 0, 0, 0)
