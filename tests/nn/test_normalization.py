"""BatchNorm3d, InstanceNorm3d and GroupNorm against NumPy and PyTorch."""

from __future__ import annotations

from functools import partial

import mlx.core as mx
import mlx.nn as mnn
import mlx.optimizers as optim
import numpy as np
import pytest

import reference_layers as ref
from arrays import assert_close, rounded, to_mx, to_np
from isolated import assert_runs
from lucid_mlx import nn
from lucid_mlx.nn import functional as F
from refusals import Refusal, refusal_tests

SHAPE = (2, 3, 3, 4, 5)


def _set_affine(module, rng):
    """Random weight/bias (where present); returns their float64 values."""
    w = b = None
    if "weight" in module:
        module.weight, w = rounded(rng, module.weight.shape)
    if "bias" in module:
        module.bias, b = rounded(rng, module.bias.shape)
    return w, b


def _module_vjp(module, x, g):
    """Output and gradients w.r.t. (x, weight, bias) through nn.value_and_grad-style vjp."""
    names = [k for k in ("weight", "bias") if k in module]

    def f(x, *params):
        module.update(dict(zip(names, params)))
        return module(x)

    out, grads = mx.vjp(f, [x, *[module[k] for k in names]], [to_mx(g, x.dtype)])
    return out[0], dict(zip(["x", *names], grads))


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
@pytest.mark.parametrize("affine, bias", [(True, True), (True, False), (False, True)])
def test_batch_norm_train_then_eval_matches_reference(momentum, affine, bias):
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm3d(3, eps=1e-3, momentum=momentum, affine=affine, bias=bias)
    w, b = _set_affine(bn, rng)
    running_mean, running_var = np.zeros(3), np.ones(3)
    for step in range(1, 4):
        x, xr = rounded(rng, SHAPE, scale=2.0)
        x = x + 1.0
        xr = xr + 1.0
        want, mean, var_unbiased, vjp = ref.batch_norm(xr, 1e-3, w, b)
        g = rng.normal(size=SHAPE)
        y, grads = _module_vjp(bn, x, g)
        assert_close(y, want, what="output")
        dx, dw, db = vjp(g)
        assert_close(grads["x"], dx, what="dx")
        if affine:
            assert_close(grads["weight"], dw, what="dweight")
        if bias and affine:
            assert_close(grads["bias"], db, what="dbias")
        factor = 1.0 / step if momentum is None else momentum
        running_mean = (1 - factor) * running_mean + factor * mean.ravel()
        running_var = (1 - factor) * running_var + factor * var_unbiased.ravel()
        assert_close(bn.running_mean, running_mean, what="running_mean")
        assert_close(bn.running_var, running_var, what="running_var")
        assert int(bn.num_batches_tracked) == step
    bn.eval()
    x, xr = rounded(rng, SHAPE)
    shape = (1, 3, 1, 1, 1)
    want = (xr - running_mean.reshape(shape)) / np.sqrt(running_var.reshape(shape) + 1e-3)
    if affine:
        want = want * w.reshape(shape)
    if affine and bias:
        want = want + b.reshape(shape)
    assert_close(bn(x), want)
    assert int(bn.num_batches_tracked) == 3  # eval does not count


def test_batch_norm_without_running_stats_uses_batch_stats_in_eval():
    rng = np.random.default_rng(1)
    bn = nn.BatchNorm3d(3, track_running_stats=False)
    assert "running_mean" not in bn and "num_batches_tracked" not in bn
    bn.eval()
    x, xr = rounded(rng, SHAPE)
    assert_close(bn(x), ref.batch_norm(xr, 1e-5)[0])


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_norms_low_precision(dtype):
    rng = np.random.default_rng(2)
    x, xr = rounded(rng, (2, 4, 8, 8, 8), dtype, scale=30.0)  # squares overflow float16 sums
    for module, want in [
        (nn.BatchNorm3d(4, dtype=dtype), ref.batch_norm(xr, 1e-5)[0]),
        (nn.InstanceNorm3d(4, dtype=dtype), ref.instance_norm(xr, 1e-5)[0]),
        (nn.GroupNorm(2, 4, dtype=dtype), ref.group_norm(xr, 2, 1e-5)[0]),
    ]:
        y = module(x)
        assert y.dtype == dtype
        assert_close(y, want, what=type(module).__name__)
    assert nn.BatchNorm3d(4, dtype=dtype).running_var.dtype == dtype


def test_device_argument_runs_on_that_device():
    x = mx.random.normal(SHAPE, key=mx.random.key(4))
    for cls, args in [(nn.BatchNorm3d, (3,)), (nn.InstanceNorm3d, (3,)), (nn.GroupNorm, (1, 3))]:
        np.testing.assert_array_equal(np.array(cls(*args, device="cpu")(x)), np.array(cls(*args)(x)))
    with pytest.raises(ValueError, match=r"`device` must be None, 'cpu', 'gpu'"):
        nn.BatchNorm3d(3, device="tpu")


@pytest.mark.parametrize("affine", [False, True])
def test_instance_norm_matches_reference(affine):
    rng = np.random.default_rng(3)
    norm = nn.InstanceNorm3d(3, affine=affine, track_running_stats=True, momentum=0.5)
    w, b = _set_affine(norm, rng)
    x, xr = rounded(rng, SHAPE)
    want, mean, var_unbiased, vjp = ref.instance_norm(xr, 1e-5, w, b)
    g = rng.normal(size=SHAPE)
    y, grads = _module_vjp(norm, x, g)
    assert_close(y, want)
    dx, dw, db = vjp(g)
    assert_close(grads["x"], dx)
    if affine:
        assert_close(grads["weight"], dw)
        assert_close(grads["bias"], db)
    # Running estimates average the per-instance statistics over the batch.
    assert_close(norm.running_mean, 0.5 * mean.reshape(2, 3).mean(axis=0))
    assert_close(norm.running_var, 0.5 + 0.5 * var_unbiased.reshape(2, 3).mean(axis=0))
    # Unbatched (C, D, H, W) input, eval mode: the running estimates normalise.
    norm.eval()
    x1, xr1 = rounded(rng, SHAPE[1:])
    m = to_np(norm.running_mean).reshape(3, 1, 1, 1)
    v = to_np(norm.running_var).reshape(3, 1, 1, 1)
    want = (xr1 - m) / np.sqrt(v + 1e-5)
    if affine:
        want = want * w.reshape(3, 1, 1, 1) + b.reshape(3, 1, 1, 1)
    assert_close(norm(x1), want)


def test_instance_norm_momentum_none_keeps_running_stats():
    norm = nn.InstanceNorm3d(3, track_running_stats=True, momentum=None)
    norm(mx.random.normal(SHAPE, key=mx.random.key(0)))
    np.testing.assert_array_equal(np.array(norm.running_mean), np.zeros(3))
    np.testing.assert_array_equal(np.array(norm.running_var), np.ones(3))


@pytest.mark.parametrize("groups, shape", [(2, (2, 4, 3, 4, 5)), (1, (2, 3, 5)), (3, (2, 3, 2, 3, 4)),
                                           (4, (2, 8, 6)), (4, (1, 4, 2, 2, 2, 2))])
def test_group_norm_matches_reference(groups, shape):
    rng = np.random.default_rng(4)
    norm = nn.GroupNorm(groups, shape[1], eps=1e-4)
    w, b = _set_affine(norm, rng)
    x, xr = rounded(rng, shape, scale=3.0)
    want, vjp = ref.group_norm(xr, groups, 1e-4, w, b)
    g = rng.normal(size=shape)
    y, grads = _module_vjp(norm, x, g)
    assert_close(y, want)
    dx, dw, db = vjp(g)
    assert_close(grads["x"], dx)
    assert_close(grads["weight"], dw)
    assert_close(grads["bias"], db)
    assert_close(F.group_norm(x, groups, norm.weight, norm.bias, 1e-4), want)


def test_group_norm_hand_computed_and_empty_batch():
    # One group of the values 0..7: mean 3.5, variance 5.25.
    x = mx.arange(8, dtype=mx.float32).reshape(1, 2, 2, 2, 1)
    y = nn.GroupNorm(1, 2, eps=0.0)(x)
    np.testing.assert_allclose(np.array(y).ravel(), (np.arange(8) - 3.5) / np.sqrt(5.25), rtol=1e-6)
    assert nn.GroupNorm(2, 4)(mx.zeros((0, 4, 2, 2, 2))).shape == (0, 4, 2, 2, 2)


def test_functional_batch_norm_updates_running_stats_in_place():
    rng = np.random.default_rng(5)
    x, xr = rounded(rng, SHAPE)
    mean, var = mx.zeros((3,)), mx.ones((3,))
    y = F.batch_norm(x, mean, var, training=True, momentum=0.5)
    _, m, v, _ = ref.batch_norm(xr, 1e-5)
    assert_close(y, ref.batch_norm(xr, 1e-5)[0])
    assert_close(mean, 0.5 * m.ravel())
    assert_close(var, 0.5 + 0.5 * v.ravel())
    # Eval: normalised with the given statistics.
    want = (xr - to_np(mean).reshape(1, 3, 1, 1, 1)) / np.sqrt(to_np(var).reshape(1, 3, 1, 1, 1) + 1e-5)
    assert_close(F.batch_norm(x, mean, var), want)


def test_buffers_are_state_not_trainable_and_a_training_step_works():
    bn = nn.BatchNorm3d(4)
    assert set(bn.parameters()) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    assert set(bn.trainable_parameters()) == {"weight", "bias"}
    bn.unfreeze()
    assert set(bn.trainable_parameters()) == {"weight", "bias"}
    assert bn.num_batches_tracked.dtype == mx.int64

    model = mnn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.BatchNorm3d(4), mnn.ReLU(),
                           nn.GroupNorm(2, 4), nn.InstanceNorm3d(4, affine=True))
    x = mx.random.normal((2, 1, 4, 4, 4), key=mx.random.key(1))
    opt = optim.SGD(learning_rate=0.1)

    def loss_fn(model, x):
        return mx.square(model(x) - 1.0).mean()

    step = mnn.value_and_grad(model, loss_fn)
    loss0, grads = step(model, x)
    opt.update(model, grads)
    mx.eval(model.parameters())
    assert int(model.layers[1].num_batches_tracked) == 1
    assert float(mx.abs(model.layers[1].running_mean).sum()) > 0

    # Compiled with the module state, as mlx.nn layers with state need.
    state = [model.state, opt.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def compiled_step(x):
        loss, grads = step(model, x)
        opt.update(model, grads)
        return loss

    for _ in range(3):
        loss = compiled_step(x)
    mx.eval(loss)
    assert float(loss) < float(loss0)
    assert int(model.layers[1].num_batches_tracked) == 4


def test_reprs():
    assert repr(nn.BatchNorm3d(16)) == \
        "BatchNorm3d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    assert repr(nn.InstanceNorm3d(8)) == \
        "InstanceNorm3d(8, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)"
    assert repr(nn.GroupNorm(4, 16, bias=False)) == "GroupNorm(4, 16, eps=1e-05, affine=True, bias=False)"


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: nn.BatchNorm3d(0), ValueError, r"`num_features` must be >= 1, got 0"),
        (lambda: nn.BatchNorm3d(3.0), TypeError, r"`num_features` must be an int"),
        (lambda: nn.BatchNorm3d(3, eps=-1.0), ValueError, r"`eps` must be a non-negative number, got -1.0"),
        (lambda: nn.BatchNorm3d(3, momentum="0.1"), TypeError, r"`momentum` must be a number or None"),
        (lambda: nn.BatchNorm3d(3, affine=1), TypeError, r"`affine` must be a bool"),
        (lambda: nn.BatchNorm3d(3, dtype=mx.int32), TypeError, r"`dtype` must be one of"),
        (lambda: nn.BatchNorm3d(3)(mx.zeros((2, 3, 4, 4))), ValueError,
         r"`input` must be \(N, C, D, H, W\) \(5-D\), got shape \(2, 3, 4, 4\)"),
        (lambda: nn.BatchNorm3d(3)(mx.zeros((2, 4, 2, 2, 2))), ValueError,
         r"BatchNorm3d: `input` has 4 channels .* but num_features=3"),
        (lambda: nn.BatchNorm3d(3)(mx.zeros((1, 3, 1, 1, 1))), ValueError,
         r"expected more than 1 value per channel when training"),
        (lambda: nn.InstanceNorm3d(3, affine=True)(mx.zeros((1, 4, 2, 2, 2))), ValueError,
         r"InstanceNorm3d: `input` has 4 channels"),
        (lambda: nn.GroupNorm(3, 4), ValueError, r"`num_channels` \(=4\) must be divisible by `num_groups` \(=3\)"),
        (lambda: nn.GroupNorm(2, 4)(mx.zeros((1, 6, 2))), ValueError, r"GroupNorm: `input` has 6 channels"),
        (lambda: F.group_norm(mx.zeros((1, 6, 2)), 4), ValueError, r"6 channels are not divisible by `num_groups` \(=4\)"),
        (lambda: F.batch_norm(mx.zeros((2, 3, 2)), mx.zeros((4,)), mx.ones((3,))), ValueError,
         r"`running_mean` must have shape \(3,\).*got shape \(4,\)"),
        (lambda: F.batch_norm(mx.zeros((2, 3, 2)), None, None), ValueError,
         r"`running_mean` and `running_var` are required when training=False"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_instance_norm_channel_mismatch_without_affine_warns_like_pytorch():
    with pytest.warns(UserWarning, match="has 4 channels"):
        nn.InstanceNorm3d(3)(mx.random.normal((1, 4, 2, 2, 2), key=mx.random.key(0)))


# ---------------------------------------------------------------- PyTorch parity

def _load_from_torch(module, tmod):
    """Copy a PyTorch module's state_dict by name (checks the names match too)."""
    state = {k: v.detach().numpy() for k, v in tmod.state_dict().items()}
    assert set(state) == set(module.parameters()), (set(state), set(module.parameters()))
    module.update({k: mx.array(v) if v.dtype == np.int64 else to_mx(v) for k, v in state.items()})


@pytest.mark.parametrize("cls, kwargs", [
    ("BatchNorm3d", dict()),
    ("BatchNorm3d", dict(momentum=None, eps=1e-3)),
    ("BatchNorm3d", dict(affine=False, track_running_stats=False)),
    ("InstanceNorm3d", dict()),
    ("InstanceNorm3d", dict(affine=True, track_running_stats=True)),
])
def test_norms_match_torch_train_and_eval(cls, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    module, tmod = getattr(nn, cls)(3, **kwargs), getattr(torch.nn, cls)(3, **kwargs).double()
    assert repr(module) == repr(tmod)
    if "weight" in module:
        with torch.no_grad():
            tmod.weight.copy_(torch.tensor(rng.normal(size=3)))
            tmod.bias.copy_(torch.tensor(rng.normal(size=3)))
    _load_from_torch(module, tmod)
    for training in (True, True, False):
        module.train(training)
        tmod.train(training)
        x = rng.normal(size=SHAPE) * 2 + 1
        xt = torch.tensor(x, requires_grad=True)
        g = rng.normal(size=SHAPE)
        yt = tmod(xt)
        yt.backward(torch.tensor(g))
        y, grads = _module_vjp(module, to_mx(x), g)
        assert_close(y, yt.detach().numpy(), what="output")
        assert_close(grads["x"], xt.grad.numpy(), what="dx")
        for name in ("weight", "bias"):
            if name in module:
                assert_close(grads[name], getattr(tmod, name).grad.numpy(), what=name)
                getattr(tmod, name).grad = None
        for name, value in tmod.state_dict().items():
            assert_close(module[name].astype(mx.float32), value.double().numpy(), mx.float32, what=name)


@pytest.mark.parametrize("groups, shape", [(2, (2, 4, 3, 4, 5)), (4, (2, 8, 6))])
def test_group_norm_matches_torch(groups, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    norm, tnorm = nn.GroupNorm(groups, shape[1]), torch.nn.GroupNorm(groups, shape[1]).double()
    assert repr(norm) == repr(tnorm)
    with torch.no_grad():
        tnorm.weight.copy_(torch.tensor(rng.normal(size=shape[1])))
        tnorm.bias.copy_(torch.tensor(rng.normal(size=shape[1])))
    _load_from_torch(norm, tnorm)
    x = rng.normal(size=shape) * 3
    xt = torch.tensor(x, requires_grad=True)
    g = rng.normal(size=shape)
    yt = tnorm(xt)
    yt.backward(torch.tensor(g))
    y, grads = _module_vjp(norm, to_mx(x), g)
    assert_close(y, yt.detach().numpy())
    assert_close(grads["x"], xt.grad.numpy())
    assert_close(grads["weight"], tnorm.weight.grad.numpy())
    assert_close(grads["bias"], tnorm.bias.grad.numpy())


# ---------------------------------------------------------------------------
# Input PyTorch refuses

XN = mx.random.normal((2, 3, 4, 4, 4), key=mx.random.key(0))
STATS = (mx.zeros((3,)), mx.ones((3,)))
REFUSED = [
    Refusal("int running stats", lambda: F.batch_norm(XN, mx.zeros((3,), mx.int32), mx.ones((3,), mx.int32),
                                                      training=True),
            TypeError, r"`running_mean` must be float32, float16 or bfloat16, got mlx.core.int32",
            lambda t: t.nn.functional.batch_norm(t.zeros(2, 3, 4), t.zeros(3, dtype=t.int32),
                                                 t.ones(3, dtype=t.int32), training=True)),
    Refusal("int running var, eval", lambda: F.batch_norm(XN, STATS[0], mx.ones((3,), mx.int64)),
            TypeError, r"`running_var` must be float32",
            lambda t: t.nn.functional.batch_norm(t.zeros(2, 3, 4), t.zeros(3), t.ones(3, dtype=t.int64))),
    Refusal("int weight", lambda: F.instance_norm(XN, weight=mx.ones((3,), mx.int32)), TypeError,
            r"`weight` must be float32",
            lambda t: t.nn.functional.instance_norm(t.zeros(2, 3, 4), weight=t.ones(3, dtype=t.int32))),
    Refusal("bool bias", lambda: F.group_norm(XN, 3, bias=mx.zeros((3,), mx.bool_)), TypeError,
            r"`bias` must be float32",
            lambda t: t.nn.functional.group_norm(t.zeros(2, 3, 4), 3, bias=t.zeros(3, dtype=t.bool))),
    Refusal("eps=0 training", lambda: F.batch_norm(XN, *STATS, training=True, eps=0.0), ValueError,
            r"`eps` must be positive when training, got 0.0",
            lambda t: t.nn.functional.batch_norm(t.zeros(2, 3, 4), t.zeros(3), t.ones(3), training=True, eps=0.0)),
    Refusal("BatchNorm3d(eps=0) trains", lambda: nn.BatchNorm3d(3, eps=0.0)(XN), ValueError,
            r"`eps` must be positive when training",
            lambda t: t.nn.BatchNorm3d(3, eps=0.0)(t.zeros(2, 3, 4, 4, 4))),
    Refusal("BatchNorm3d(eps=0) without running stats",
            lambda: nn.BatchNorm3d(3, eps=0.0, track_running_stats=False).eval()(XN),
            ValueError, r"`eps` must be positive when training",
            lambda t: t.nn.BatchNorm3d(3, eps=0.0, track_running_stats=False).eval()(t.zeros(2, 3, 4, 4, 4))),
    # PyTorch takes eps=nan and returns NaN everywhere; lucid_mlx refuses it.
    Refusal("eps=nan", lambda: nn.BatchNorm3d(3, eps=float("nan")), ValueError,
            r"`eps` must be a non-negative number, got nan"),
    Refusal("training=1", lambda: F.batch_norm(XN, *STATS, training=1), TypeError,
            r"`training` must be a bool, got 1",
            lambda t: t.nn.functional.batch_norm(t.zeros(2, 3, 4), t.zeros(3), t.ones(3), training=1)),
    Refusal("use_input_stats='yes'", lambda: F.instance_norm(XN, use_input_stats="yes"), TypeError,
            r"`use_input_stats` must be a bool",
            lambda t: t.nn.functional.instance_norm(t.zeros(2, 3, 4), use_input_stats="yes")),
    Refusal("momentum=None updating", lambda: F.batch_norm(XN, *STATS, training=True, momentum=None),
            TypeError, r"`momentum` must be a number to update the running statistics",
            lambda t: t.nn.functional.batch_norm(t.zeros(2, 3, 4), t.zeros(3), t.ones(3), training=True,
                                                 momentum=None)),
]

test_refused, test_refused_by_torch_too = refusal_tests(REFUSED)


def test_eps_zero_is_accepted_where_pytorch_accepts_it():
    """PyTorch builds BatchNorm3d(eps=0) and normalises with it in eval mode;
    instance and group norm take eps=0 in training too."""
    bn = nn.BatchNorm3d(3, eps=0.0)
    bn.eval()
    np.testing.assert_allclose(np.array(bn(XN)), np.array(XN), rtol=1e-6, atol=1e-6)
    x = XN + 1
    assert np.isfinite(np.array(F.instance_norm(x, eps=0.0))).all()
    assert np.isfinite(np.array(F.group_norm(x, 3, eps=0.0))).all()


# ---------------------------------------------------------------------------
# Empty batches


def test_batch_norm_on_an_empty_batch_counts_it_and_keeps_the_statistics():
    """As PyTorch: an empty output, num_batches_tracked + 1, running statistics
    untouched (so the cumulative average of later batches counts it)."""
    bn = nn.BatchNorm3d(3, momentum=None)
    x1 = mx.random.normal((2, 3, 2, 2, 2), key=mx.random.key(3))
    x2 = mx.random.normal((2, 3, 2, 2, 2), key=mx.random.key(4)) + 1
    bn(x1)
    mean1 = np.array(bn.running_mean)
    y = bn(mx.zeros((0, 3, 2, 2, 2)))
    assert y.shape == (0, 3, 2, 2, 2)
    assert int(bn.num_batches_tracked) == 2
    np.testing.assert_array_equal(np.array(bn.running_mean), mean1)
    bn(x2)
    # The third batch weighs 1/3: the empty one was counted.
    mean2 = np.array(x2).mean(axis=(0, 2, 3, 4))
    np.testing.assert_allclose(np.array(bn.running_mean), mean1 * 2 / 3 + mean2 / 3, rtol=1e-5)
    assert int(bn.num_batches_tracked) == 3

    torch = pytest.importorskip("torch")
    tbn = torch.nn.BatchNorm3d(3, momentum=None)
    for x in (np.array(x1), np.zeros((0, 3, 2, 2, 2), np.float32), np.array(x2)):
        tbn(torch.tensor(x))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(np.array(bn[name]), tbn.state_dict()[name].numpy(), rtol=1e-5)


@pytest.mark.parametrize("shape", [(0, 3, 2, 2, 2), (2, 3, 0, 2, 2), (2, 0, 2, 2, 2)], ids=str)
def test_functional_norms_on_empty_input_return_empty_output(shape):
    x = mx.zeros(shape)
    mean, var = mx.full((shape[1],), 0.5), mx.full((shape[1],), 2.0)
    assert F.batch_norm(x, mean, var, training=True).shape == shape
    assert F.instance_norm(x, mean, var).shape == shape
    # Statistics of nothing do not update the running ones.
    np.testing.assert_array_equal(np.array(mean), 0.5)
    np.testing.assert_array_equal(np.array(var), 2.0)
    assert nn.InstanceNorm3d(3)(mx.zeros((0, 3, 2, 2, 2))).shape == (0, 3, 2, 2, 2)


def test_instance_norm_of_one_element_per_instance_is_refused_even_when_empty():
    """PyTorch's _verify_spatial_size looks at the spatial size only."""
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        F.instance_norm(mx.zeros((0, 3, 1, 1, 1)))


def test_empty_batch_gradients_of_the_norms():
    """Zero weight and bias gradients, as PyTorch; in its own process, as an
    empty-array gradient is where MLX can die with SIGFPE."""
    printed = assert_runs("""
        x = mx.zeros((0, 3, 2, 2, 2))
        for layer in (nn.BatchNorm3d(3), nn.InstanceNorm3d(3, affine=True), nn.GroupNorm(3, 3)):
            def loss(params, x):
                layer.update(params)
                return (layer(x) * 2).sum()
            grads = mx.grad(loss)(layer.trainable_parameters(), x)
            gx = mx.grad(lambda x: layer(x).sum())(x)
            mx.eval(grads, gx)
            print(type(layer).__name__, gx.shape, float(abs(grads["weight"]).sum() + abs(grads["bias"]).sum()))
    """)
    assert printed.split("\n")[:3] == [f"{name} (0, 3, 2, 2, 2) 0.0"
                                       for name in ("BatchNorm3d", "InstanceNorm3d", "GroupNorm")]


def test_statistics_of_a_large_volume_are_accurate():
    # One float32 running sum over a 64^3 volume drifted by 3e-5 on the mean of N(3, 1)
    # data, which put InstanceNorm3d 4e-5 away from float64; summed axis by axis it stays
    # within a few 1e-7.
    rng = np.random.default_rng(0)
    x = (3.0 + rng.standard_normal((1, 2, 64, 64, 64))).astype(np.float32)
    got = np.array(F.instance_norm(mx.array(x)))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(2, 3, 4), keepdims=True)
    want = (x64 - mean) / np.sqrt(((x64 - mean) ** 2).mean(axis=(2, 3, 4), keepdims=True) + 1e-5)
    assert np.abs(got - want).max() < 4e-6
