"""Autotuning: the switch, the choice under a fake clock, and results that do not depend on it.

Timing is never asserted on: a fake clock (``autotune.clock``) advanced by
the candidates themselves decides which one is "fastest".
"""

from __future__ import annotations

import threading
import warnings

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx
import lucid_mlx.nn.functional as F
from arrays import assert_close, rounded
from lucid_mlx.ops import autotune, dispatch
from lucid_mlx.ops.conv3d import conv3d as ops_conv3d
from reference import conv3d_grad_input_ref, conv3d_grad_weight_ref, conv3d_ref

RUNS = autotune.WARMUP + autotune.REPEATS


pytestmark = pytest.mark.usefixtures("fresh_autotune")  # tests/ops/conftest.py; `clock` is there too


# --- The switch ------------------------------------------------------------------

def test_off_by_default_and_the_environment(monkeypatch):
    assert lucid_mlx.get_autotune() is False
    for text, value in [("1", True), (" TRUE ", True), ("on", True), ("0", False), ("no", False),
                        ("", False), ("  ", False)]:
        monkeypatch.setenv(autotune.ENV_VAR, text)
        assert lucid_mlx.get_autotune() is value, text
    monkeypatch.setenv(autotune.ENV_VAR, "sometimes")
    with pytest.raises(ValueError, match="LUCID_MLX_AUTOTUNE must be one of .*'sometimes'"):
        lucid_mlx.get_autotune()


def test_setter_and_context_manager_order(monkeypatch):
    monkeypatch.setenv(autotune.ENV_VAR, "1")
    lucid_mlx.set_autotune(False)
    assert not lucid_mlx.get_autotune()
    with lucid_mlx.autotuning():
        assert lucid_mlx.get_autotune()
        with lucid_mlx.autotuning(False):
            assert not lucid_mlx.get_autotune()
        assert lucid_mlx.get_autotune()
    assert not lucid_mlx.get_autotune()
    lucid_mlx.set_autotune(None)  # the environment again
    assert lucid_mlx.get_autotune()
    with pytest.raises(TypeError, match=r"`enabled` must be a bool, got 1 \(int\)"):
        lucid_mlx.set_autotune(1)
    with pytest.raises(TypeError, match="`enabled` must be a bool, got 'yes'"):
        with lucid_mlx.autotuning("yes"):
            pass


def test_the_context_manager_holds_for_its_thread_only():
    seen = {}
    inside = threading.Event()
    checked = threading.Event()

    def other():
        inside.wait(5)
        seen["other"] = lucid_mlx.get_autotune()
        checked.set()

    thread = threading.Thread(target=other)
    thread.start()
    with lucid_mlx.autotuning():
        inside.set()
        checked.wait(5)
        seen["own"] = lucid_mlx.get_autotune()
    thread.join(5)
    assert seen == {"own": True, "other": False}


# --- Choosing, with a fake clock ------------------------------------------------------

def _options(clock, costs: dict[str, float], calls: list[str]):
    """Options named by ``costs``; running one advances the clock by its cost."""
    def step(label):
        def run():
            calls.append(label)
            clock.now += costs[label]
            return mx.array(costs[label])
        return run
    return list(costs), step


def test_picks_the_fastest_and_never_times_it_again(clock):
    calls = []
    options, step = _options(clock, {"a": 3.0, "b": 1.0, "c": 1.5}, calls)
    with lucid_mlx.autotuning():
        assert autotune.choose(lambda: "sig", options, options, step) == "b"
        assert calls == ["a"] * RUNS + ["b"] * RUNS + ["c"] * RUNS
        calls.clear()
        assert autotune.choose(lambda: "sig", options, options, step) == "b"
        assert calls == []
    found = autotune.measurements()["sig"]
    assert found.winner == "b" and found.seconds == {"a": 3.0, "b": 1.0, "c": 1.5}


def test_a_much_slower_candidate_is_timed_once(clock):
    # "b" takes more than SLOWER times the best so far in its first timed run.
    calls = []
    costs = {"a": 1.0, "b": 1.0 * autotune.SLOWER + 0.5, "c": 1.0 * autotune.SLOWER}
    options, step = _options(clock, costs, calls)
    with lucid_mlx.autotuning():
        assert autotune.choose(lambda: "sig", options, options, step) == "a"
    assert calls == ["a"] * RUNS + ["b"] * (autotune.WARMUP + 1) + ["c"] * RUNS
    assert autotune.measurements()["sig"].seconds == costs


def test_the_median_excludes_the_warm_up(clock, monkeypatch):
    # The first (warm-up) run of "a" is slow, its timed runs fast: it wins.
    monkeypatch.setattr(autotune, "REPEATS", 3)
    costs = {"a": iter([50.0, 1.0, 9.0, 1.0]), "b": iter([2.0] * 4)}

    def step(label):
        def run():
            clock.now += next(costs[label])
            return mx.array(0.0)
        return run

    with lucid_mlx.autotuning():
        assert autotune.choose(lambda: "sig", ["a", "b"], ["a", "b"], step) == "a"
    assert autotune.measurements()["sig"].seconds == {"a": 1.0, "b": 2.0}


def test_off_means_the_default_and_no_timing(clock):
    calls = []
    options, step = _options(clock, {"a": 3.0, "b": 1.0}, calls)
    assert autotune.choose(lambda: "sig", options, options, step) == "a"
    assert calls == [] and autotune.measurements() == {}


def test_a_failing_candidate_is_left_out_with_a_warning(clock):
    calls = []
    options, good = _options(clock, {"a": 3.0, "b": 1.0}, calls)

    def step(label):
        if label == "b":
            def broken():
                raise RuntimeError("out of memory")
            return broken
        return good(label)

    with lucid_mlx.autotuning(), pytest.warns(RuntimeWarning, match="candidate 'b' failed.*out of memory"):
        assert autotune.choose(lambda: "sig", options, options, step) == "a"
    assert autotune.measurements()["sig"].seconds == {"a": 3.0, "b": None}


def test_where_eval_is_refused_the_default_is_used_and_nothing_remembered(clock):
    calls = []
    options, step = _options(clock, {"a": 3.0, "b": 1.0}, calls)

    def traced(x):
        # Each option's run depends on the traced input: mx.eval refuses it.
        chosen = autotune.choose(lambda: "sig", options, options, lambda label: lambda: x * 2)
        assert chosen == "a"
        return x + 1

    with lucid_mlx.autotuning():
        mx.eval(mx.compile(traced)(mx.ones(3)))
        assert autotune.measurements() == {}
        assert autotune.choose(lambda: "sig", options, options, step) == "b"


# --- Through the dispatcher ----------------------------------------------------------------

def _slowed(path, forward_cost, backward_cost, clock, calls):
    """``path`` whose forward and gradients advance the fake clock and are counted."""
    def forward(*args):
        calls.append((path.name, "forward"))
        clock.now += forward_cost
        return path.forward(*args)

    def grads(*args):
        calls.append((path.name, "backward"))
        clock.now += backward_cost
        return path.grads(*args)

    return path._replace(forward=forward, grads=grads)


GEOMETRY = ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 4)


def test_the_call_returns_the_chosen_candidates_result(clock, monkeypatch):
    calls = []
    real_depthwise, real_per_group = dispatch.DEPTHWISE, dispatch.PER_GROUP
    # Per-group convolutions fastest forward, depthwise sums fastest backward.
    monkeypatch.setattr(dispatch, "DEPTHWISE", _slowed(real_depthwise, 5.0, 1.0, clock, calls))
    monkeypatch.setattr(dispatch, "PER_GROUP", _slowed(real_per_group, 1.0, 5.0, clock, calls))
    keys = mx.random.split(mx.random.key(5), 3)
    x = mx.random.normal((2, 4, 5, 6, 5), key=keys[0])
    w = mx.random.normal((8, 1, 3, 3, 3), key=keys[1])
    cot = mx.random.normal((2, 8, 5, 6, 5), key=keys[2])

    def conv(x, w):
        return F.conv3d(x, w, padding=1, groups=4)

    with lucid_mlx.autotuning():
        conv_plan = dispatch.conv3d_plan(x, w, *GEOMETRY)
        assert conv_plan.labels == ("per_group", "depthwise")
        assert conv_plan.describe() == "forward: per_group; backward: depthwise"
        timed = len(calls)
        # The default first; per-group backward, 5x the best, is timed once.
        assert calls == ([("depthwise", "forward")] * RUNS + [("per_group", "forward")] * RUNS
                         + [("depthwise", "backward")] * RUNS
                         + [("per_group", "backward")] * (autotune.WARMUP + 1))
        (y,), (gx, gw) = mx.vjp(lambda x, w: [conv(x, w)], [x, w], [cot])
        mx.eval(y, gx, gw)
        # Once cached: one forward and one backward, the chosen ones, no timing.
        assert calls[timed:] == [("per_group", "forward"), ("depthwise", "backward")]
    assert mx.array_equal(y, real_per_group.forward(x, w, *GEOMETRY))
    want_gx, want_gw = real_depthwise.grads(x, w, cot, *GEOMETRY)
    assert mx.array_equal(gx, want_gx) and mx.array_equal(gw, want_gw)


def test_autotuning_inside_compile_does_not_crash():
    # MLX 0.32 lets the fresh timing inputs be evaluated while mx.compile
    # traces, so the compiled call tunes; either way it must give the result.
    x = mx.random.normal((1, 4, 5, 5, 5), key=mx.random.key(8))
    w = mx.random.normal((4, 1, 3, 3, 3), key=mx.random.key(9))
    f = lambda x: F.conv3d(x, w, padding=1, groups=4)  # noqa: E731
    with lucid_mlx.autotuning():
        got = mx.compile(f)(x)
        grad = mx.compile(mx.grad(lambda x: (f(x) ** 2).sum()))(x)
    assert len(autotune.measurements()) == 2  # tuned while tracing: forward and backward
    np.testing.assert_allclose(np.array(got), np.array(f(x)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.array(grad), np.array(mx.grad(lambda x: (f(x) ** 2).sum())(x)),
                               rtol=1e-5, atol=1e-4)


# (input shape, weight shape, stride, pads, dilation, groups)
CONFIGS = [
    ((2, 4, 6, 5, 5), (4, 4, 3, 3, 3), (1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1),
    ((1, 4, 7, 5, 6), (6, 4, 3, 2, 3), (2, 1, 2), ((1, 1), (0, 0), (1, 1)), (1, 1, 1), 1),
    ((2, 4, 6, 5, 5), (8, 1, 3, 3, 3), (2, 1, 1), ((1, 1),) * 3, (1, 1, 1), 4),
    ((2, 6, 5, 5, 4), (6, 2, 3, 1, 2), (1, 2, 1), ((2, 0), (0, 1), (1, 1)), (1, 1, 1), 3),
]


@pytest.mark.parametrize("limit", [None, 40_000], ids=["whole", "pieces"])
@pytest.mark.parametrize("config", CONFIGS, ids=["dense", "dense strided", "depthwise x2", "grouped"])
def test_results_and_gradients_equal_with_autotuning_on_and_off(config, limit):
    x_shape, w_shape, stride, pads, dilation, groups = config
    rng = np.random.default_rng(3)
    x, xn = rounded(rng, x_shape)
    w, wn = rounded(rng, w_shape)
    want_y = conv3d_ref(xn, wn, None, stride, pads, dilation, groups)
    cot, cotn = rounded(rng, want_y.shape)
    want_gx = conv3d_grad_input_ref(cotn, x_shape, wn, stride, pads, dilation, groups)
    want_gw = conv3d_grad_weight_ref(cotn, xn, w_shape, stride, pads, dilation, groups)
    lucid_mlx.set_workspace_limit(limit)

    def run():
        # ops.conv3d: the validated op F.conv3d calls, which takes asymmetric pads.
        f = lambda x, w: [ops_conv3d(x, w, None, stride, pads, dilation, groups)]  # noqa: E731
        (y,), (gx, gw) = mx.vjp(f, [x, w], [cot])
        mx.eval(y, gx, gw)
        return y, gx, gw

    off = run()
    found = dispatch.conv3d_candidates(x, w, stride, pads, dilation, groups)
    keys = dispatch.signatures(x, w, stride, pads, dilation, groups)
    pairs = [(f, b) for f in found["forward"] for b in found["backward"]]
    for forward, backward in pairs:
        # Each pair of choices, as if measured fastest.
        autotune.reset()
        autotune.remember(keys["forward"], forward.label)
        autotune.remember(keys["backward"], backward.label)
        with lucid_mlx.autotuning():
            assert dispatch.conv3d_plan(x, w, stride, pads, dilation, groups).labels == (
                forward.label, backward.label)
            on = run()
        what = f"{forward.label} / {backward.label}"
        for got, base, want, name in zip(on, off, (want_y, want_gx, want_gw), ("y", "gx", "gw")):
            assert_close(got, want, what=f"{name} of {what}")
            np.testing.assert_allclose(np.array(got), np.array(base), rtol=1e-5, atol=1e-4,
                                       err_msg=f"{name} of {what} against autotuning off")


def test_real_timing_on_a_tiny_layer_gives_the_same_numbers():
    # The real clock: whichever wins, the numbers are the default's up to rounding.
    x = mx.random.normal((1, 4, 5, 5, 5), key=mx.random.key(1))
    w = mx.random.normal((8, 1, 3, 3, 3), key=mx.random.key(2))
    loss = lambda x, w: (F.conv3d(x, w, padding=1, groups=4) ** 2).sum()  # noqa: E731
    want = mx.grad(loss, argnums=(0, 1))(x, w)
    with lucid_mlx.autotuning(), warnings.catch_warnings():
        warnings.simplefilter("error")
        got = mx.grad(loss, argnums=(0, 1))(x, w)
    assert len(autotune.measurements()) == 2  # forward and backward
    for g, h in zip(got, want):
        np.testing.assert_allclose(np.array(g), np.array(h), rtol=1e-5, atol=1e-4)
