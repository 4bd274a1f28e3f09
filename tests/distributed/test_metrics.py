"""reduce_sum and reduce_mean on several ranks, against sums computed by hand, and alone."""

from __future__ import annotations


import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx import distributed as dist
from rank_launcher import NUM_RANKS, run_and_load

N = NUM_RANKS
RANKS = range(N)


@pytest.fixture(scope="module")
def ranks():
    return run_and_load("ranks_metrics.py", ["metrics"], timeout=120)["metrics"]


def test_sums_of_numbers_and_arrays(ranks):
    for got in ranks:
        assert got["count"] == sum(r + 1 for r in RANKS) and str(got["count_type"]) == "float"
        np.testing.assert_array_equal(got["vec"], [sum(RANKS), 2 * sum(RANKS)])
        assert str(got["vec_dtype"]) == "mlx.core.float32"
        np.testing.assert_array_equal(got["ints"], [sum(RANKS), N])
        assert got["ints"].dtype == np.int32
        assert got["brain"][0] == sum(r + 0.5 for r in RANKS)


def test_sums_beyond_float32_are_exact(ranks):
    for got in ranks:
        assert got["big"] == N * 2 ** 25 + sum(RANKS)


def test_means(ranks):
    for got in ranks:
        assert got["mean"] == pytest.approx(10.0 * sum(RANKS) / N, rel=1e-12)
        np.testing.assert_allclose(got["mean_list"], [sum(RANKS) / N, 1.0], rtol=1e-6)


def test_weighted_mean_over_uneven_shards_skips_empty_ones(ranks):
    # Rank r holds r items of mean 2r (rank 0: no items, a NaN mean).
    expected = sum(2.0 * r * r for r in RANKS) / sum(RANKS)
    for got in ranks:
        assert got["weighted"] == pytest.approx(expected, rel=1e-12)
        assert "is 0 on every rank" in str(got["zero_message"])


def test_alone_the_values_come_back():
    assert dist.reduce_sum(3) == 3.0
    out = dist.reduce_sum({"a": mx.array([1.0, 2.0]), "b": [1.5]})
    assert mx.array_equal(out["a"], mx.array([1.0, 2.0])) and out["b"] == [1.5]
    assert dist.reduce_mean(4.0, count=2) == 4.0
    assert dist.reduce_mean(np.array([1, 3]))[1] == 3


@pytest.mark.parametrize("values, error, match", [
    ("loss", TypeError, "numbers or arrays"),
    ({"ok": 1.0, "bad": None}, TypeError, "at `bad`"),
    (True, TypeError, "numbers or arrays"),
])
def test_bad_values(values, error, match):
    with pytest.raises(error, match=match):
        dist.reduce_sum(values)


@pytest.mark.parametrize("count, error", [(-1, ValueError), (float("nan"), ValueError),
                                          ("3", TypeError), (True, TypeError)])
def test_bad_counts(count, error):
    with pytest.raises(error, match="`count`"):
        dist.reduce_mean(1.0, count=count)
