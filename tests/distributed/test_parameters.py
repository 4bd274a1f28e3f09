"""broadcast_parameters, broadcast and the in-sync checks, on several ranks and alone."""

from __future__ import annotations


import mlx.core as mx
import numpy as np
import pytest

import dp_setup
from lucid_mlx import distributed as dist
from rank_launcher import run_and_load


@pytest.fixture(scope="module")
def ranks():
    return run_and_load("ranks_parameters.py", ["parameters"], timeout=120)["parameters"]


def test_ranks_start_different_and_the_check_says_so(ranks):
    keys = [k for k in ranks[0] if k.startswith("before/")]
    assert any(not np.array_equal(ranks[0][k], ranks[-1][k]) for k in keys)
    assert not any(bool(r["in_sync_before"]) for r in ranks)


def test_broadcast_parameters_copies_root_bit_for_bit(ranks):
    root = ranks[-1]
    keys = [k[len("before/"):] for k in root if k.startswith("before/")]
    assert "norm1.running_mean" in keys and "norm1.num_batches_tracked" in keys
    for r, got in enumerate(ranks):
        for key in keys:
            np.testing.assert_array_equal(got[f"after/{key}"], root[f"before/{key}"],
                                          err_msg=f"rank {r}: {key}")
            assert got[f"after/{key}"].dtype == root[f"before/{key}"].dtype
        assert bool(got["in_sync_after"])


def test_one_ulp_on_one_rank_is_caught_and_named_on_every_rank(ranks):
    for got in ranks:
        assert not bool(got["in_sync_one_ulp"])
        message = str(got["check_message"])
        assert "1 arrays: conv2.weight" in message, message


def test_broadcast_of_mixed_dtypes(ranks):
    for got in ranks:
        np.testing.assert_array_equal(got["tree/flag"], [True, True, False])
        np.testing.assert_array_equal(got["tree/ids"], [[0, 0]])
        half = got["tree/half"]
        assert half.dtype == np.float16
        assert half[0] == 1.5 and half[1] == 0 and np.isnan(half[2])
        assert got["tree/brain"][0] == 0.25


def test_different_sets_of_arrays_raise_on_every_rank(ranks):
    for got in ranks:
        assert "the ranks hold different sets of arrays" in str(got["mismatch_message"])


# ---- alone: everything is a no-op ----

def test_alone_broadcast_and_checks_are_no_ops():
    model = dp_setup.SmallNet("group")
    before = model.parameters()
    assert dist.broadcast_parameters(model) is model
    assert model.parameters()["conv1"]["weight"] is before["conv1"]["weight"]
    assert dist.parameters_in_sync(model)
    dist.check_parameters_in_sync(model)
    tree = {"a": mx.ones(2)}
    assert dist.broadcast(tree) is tree


def test_argument_errors():
    with pytest.raises(TypeError, match="`model`"):
        dist.broadcast_parameters({"w": mx.ones(2)})
    with pytest.raises(ValueError, match="`root`"):
        dist.broadcast({"w": mx.ones(2)}, root=1)
    with pytest.raises(ValueError, match="`root`"):
        dist.broadcast({"w": mx.ones(2)}, root=-1)
    with pytest.raises(TypeError, match="not an mlx.core.array"):
        dist.parameters_in_sync({"w": [1.0, 2.0]})
    with pytest.raises(TypeError, match="expected an mlx.nn.Module"):
        dist.parameters_in_sync("weights")
