"""SyncBatchNorm3d on several ranks against BatchNorm3d on the concatenated batch.

The ranks (``ranks_sync_batchnorm.py``) each normalise their shard of the
same global batches; the reference is ``BatchNorm3d`` in this process on
the whole batches.  Outputs and input gradients are compared after
concatenating the shards in rank order, affine gradients after summing the
ranks' contributions, running statistics on every rank.  Shards are even,
uneven, and empty on the last rank; one case runs under ``mx.compile``.
"""

from __future__ import annotations


import mlx.core as mx
import mlx.nn as mnn
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_unflatten

import lucid_mlx
import syncbn_cases
from lucid_mlx.nn import BatchNorm3d, Conv3d, GroupNorm, InstanceNorm3d, SyncBatchNorm3d
from rank_launcher import NUM_RANKS, run_and_load

CASES = syncbn_cases.cases(NUM_RANKS)
# float32 statistics combined in a different order than BatchNorm3d's: measured
# differences are below 3e-6 relative (2 and 4 ranks); the plain all_sum
# backward's input gradient is off by 50% (2 ranks) to 75% (4 ranks).
RTOL = 1e-4


@pytest.fixture(scope="module")
def ranks():
    return run_and_load("ranks_sync_batchnorm.py", [case.name for case in CASES], timeout=240)


@pytest.fixture(scope="module")
def references():
    return {case.name: syncbn_cases.reference(case) for case in CASES}


def _close(actual, expected, what):
    scale = max(float(np.abs(expected).max()), 1e-6)
    error = float(np.abs(actual - expected).max()) / scale
    assert error <= RTOL, f"{what}: max difference {error:.3g} of the reference's scale"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_forward_and_eval_equal_batchnorm_on_the_whole_batch(ranks, references, case):
    got, ref = ranks[case.name], references[case.name]
    assert sum(r["y"].shape[0] for r in got) == case.batch
    _close(np.concatenate([r["y"] for r in got]), ref["y"], "training output")
    _close(np.concatenate([r["y_eval"] for r in got]), ref["y_eval"], "eval output")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_running_statistics_equal_batchnorm_on_every_rank(ranks, references, case):
    ref = references[case.name]
    for r, got in enumerate(ranks[case.name]):
        for key in ("running_mean", "running_var"):
            _close(got[key], ref[key], f"rank {r} {key}")
        assert got["num_batches_tracked"] == ref["num_batches_tracked"] == syncbn_cases.STEPS
    first = ranks[case.name][0]
    for got in ranks[case.name][1:]:
        np.testing.assert_array_equal(got["running_var"], first["running_var"])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_gradients_equal_batchnorm_on_the_whole_batch(ranks, references, case):
    got, ref = ranks[case.name], references[case.name]
    _close(np.concatenate([r["gx"] for r in got]), ref["gx"], "input gradient")
    # Each rank holds the gradient of its own terms; data parallelism sums them.  The
    # weight's gradient sums x_hat * g, whose terms largely cancel: float32 rounding of the
    # mean (6.0) alone moves it by ~1e-6 of the terms' magnitude, in BatchNorm3d too, so
    # both affine gradients are compared on the scale of sum(|g|) per channel.
    terms = np.abs(syncbn_cases.data(case)[1]).sum(axis=(0, 2, 3, 4)).max()
    for key in ("g_weight", "g_bias"):
        if key in ref:
            error = np.abs(sum(r[key] for r in got) - ref[key]).max() / terms
            assert error <= RTOL / 10, f"{key}: difference {error:.3g} of sum(|g|)"


def test_plain_all_sum_backward_would_fail_these_tests(ranks, references):
    got, ref = ranks["even"], references["even"]
    plain_y = np.concatenate([r["plain_y"] for r in got])
    plain_gx = np.concatenate([r["plain_gx"] for r in got])
    _close(plain_y, ref["y"], "the plain version's forward")  # right forward...
    error = np.linalg.norm(plain_gx - ref["gx"]) / np.linalg.norm(ref["gx"])
    assert error > 0.25, f"plain all_sum input gradient only {error:.3g} off"  # ...wrong backward


# ---- one process: the size-1 path and the conversion ----

def _set_random_affine(layer, seed):
    rng = np.random.default_rng(seed)
    layer.weight = mx.array(rng.uniform(0.5, 1.5, layer.num_features).astype(np.float32))
    layer.bias = mx.array(rng.uniform(-1, 1, layer.num_features).astype(np.float32))


@pytest.mark.parametrize("momentum", [0.1, None])
def test_alone_it_is_batchnorm(momentum):
    sync, plain = SyncBatchNorm3d(4, momentum=momentum), BatchNorm3d(4, momentum=momentum)
    _set_random_affine(sync, 0)
    _set_random_affine(plain, 0)
    x = [mx.random.normal((2, 4, 3, 3, 3), key=mx.random.key(i)) for i in range(3)]
    for xi in x[:2]:
        assert mx.array_equal(sync(xi), plain(xi))
    for key in ("running_mean", "running_var", "num_batches_tracked"):
        assert mx.array_equal(sync[key], plain[key]), key
    sync.eval()
    plain.eval()
    assert mx.array_equal(sync(x[2]), plain(x[2]))


class _Block(mnn.Module):
    def __init__(self):
        super().__init__()
        self.body = mnn.Sequential(Conv3d(2, 4, 3, padding=1), BatchNorm3d(4), mnn.ReLU())
        self.norms = [BatchNorm3d(4, momentum=None), InstanceNorm3d(4, affine=True)]
        self.by_name = {"gn": GroupNorm(2, 4), "bn": BatchNorm3d(4, bias=False)}
        self.already = SyncBatchNorm3d(4)


def _randomise(model, seed=1):
    """Positive random floats (valid running variances too); batch counts + 3."""
    rng = np.random.default_rng(seed)
    model.update(tree_unflatten([
        (k, mx.array(rng.uniform(0.5, 1.5, v.shape).astype(np.float32))
         if v.dtype == mx.float32 else v + 3)
        for k, v in tree_flatten(model.parameters())]))


def test_convert_sync_batchnorm_keeps_names_values_and_state():
    model = _Block()
    _randomise(model)
    model.norms[0].freeze(keys=["weight"], recurse=False)
    model.eval()
    before = dict(tree_flatten(model.parameters()))
    trainable_before = {k for k, _ in tree_flatten(model.trainable_parameters())}
    already = model.already

    converted = SyncBatchNorm3d.convert_sync_batchnorm(model)

    assert converted is model  # containers are converted in place, as PyTorch
    assert type(model.body.layers[1]) is SyncBatchNorm3d
    assert type(model.norms[0]) is SyncBatchNorm3d and model.norms[0].momentum is None
    assert type(model.norms[1]) is InstanceNorm3d
    assert type(model.by_name["bn"]) is SyncBatchNorm3d and "bias" not in model.by_name["bn"]
    assert type(model.by_name["gn"]) is GroupNorm
    assert model.already is already
    after = dict(tree_flatten(model.parameters()))
    assert after.keys() == before.keys()
    for key in before:
        assert mx.array_equal(after[key], before[key]), key
    assert {k for k, _ in tree_flatten(model.trainable_parameters())} == trainable_before
    assert not model.body.layers[1].training


def test_convert_a_single_layer_returns_a_new_one():
    bn = BatchNorm3d(3, eps=1e-3, momentum=0.3, affine=False, dtype=mx.float16)
    sync = SyncBatchNorm3d.convert_sync_batchnorm(bn)
    assert type(sync) is SyncBatchNorm3d and sync is not bn
    assert (sync.eps, sync.momentum, sync.affine) == (1e-3, 0.3, False)
    assert sync.running_mean.dtype == mx.float16
    assert SyncBatchNorm3d.convert_sync_batchnorm(sync) is sync


def test_checkpoints_load_either_way():
    plain = mnn.Sequential(Conv3d(1, 3, 3), BatchNorm3d(3))
    _randomise(plain)
    sync = SyncBatchNorm3d.convert_sync_batchnorm(
        mnn.Sequential(Conv3d(1, 3, 3), BatchNorm3d(3)))
    state = lucid_mlx.torch_state_dict(plain)
    assert lucid_mlx.load_torch_state_dict(sync, state) == ([], [])
    back = mnn.Sequential(Conv3d(1, 3, 3), BatchNorm3d(3))
    assert lucid_mlx.load_torch_state_dict(back, lucid_mlx.torch_state_dict(sync)) == ([], [])
    for (k, a), (_, b) in zip(tree_flatten(plain.parameters()), tree_flatten(back.parameters())):
        assert mx.array_equal(a, b), k


def test_argument_errors():
    with pytest.raises(TypeError, match="`group`"):
        SyncBatchNorm3d(3, group="all")
    with pytest.raises(TypeError, match="`module`"):
        SyncBatchNorm3d.convert_sync_batchnorm([BatchNorm3d(3)])
    with pytest.raises(ValueError, match="num_features"):
        SyncBatchNorm3d(0)
