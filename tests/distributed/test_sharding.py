"""Sharding by rank, for every rank of a few job sizes (given explicitly: no job needed)."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx import distributed as dist

SIZES = [1, 2, 3, 4, 7]
LENGTHS = [0, 1, 2, 5, 8, 9, 13]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("length", LENGTHS)
def test_bounds_follow_numpy_array_split(length, size):
    expected = np.array_split(np.arange(length), size)
    for rank in range(size):
        start, stop = dist.shard_bounds(length, rank=rank, size=size)
        np.testing.assert_array_equal(np.arange(start, stop), expected[rank])


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("length", LENGTHS)
def test_remainders(length, size):
    shards = {mode: [list(dist.shard_indices(length, remainder=mode, rank=r, size=size))
                     for r in range(size)] for mode in ("keep", "drop", "pad")}
    assert sum(shards["keep"], []) == list(range(length))
    assert sum(shards["drop"], []) == list(range(length // size * size))
    assert all(len(s) == length // size for s in shards["drop"])
    padded = sum(shards["pad"], [])
    per_rank = math.ceil(length / size) if length else 0
    assert all(len(s) == per_rank for s in shards["pad"])
    # Every item once, then items from the start again until every rank has as many.
    assert padded == [i % length for i in range(per_rank * size)] if length else padded == []


def test_sequences_keep_their_type():
    assert dist.shard_sequence(["a", "b", "c"], rank=1, size=2) == ["c"]
    assert dist.shard_sequence(("a", "b", "c"), rank=0, size=2) == ("a", "b")
    assert dist.shard_sequence(range(10), rank=2, size=3) == range(7, 10)
    np.testing.assert_array_equal(dist.shard_sequence(np.arange(5) * 2, rank=1, size=2), [6, 8])
    assert dist.shard_sequence(["a", "b", "c"], remainder="pad", rank=1, size=2) == ["c", "a"]
    assert dist.shard_sequence(mx.arange(4), rank=1, size=2).tolist() == [2, 3]


def test_batches_split_together_along_an_axis():
    x = mx.arange(5 * 2).reshape(5, 2)
    y = np.arange(5)
    xs, ys = dist.shard_batch((x, y), rank=1, size=2)
    assert xs.tolist() == [[6, 7], [8, 9]] and ys.tolist() == [3, 4]
    part = dist.shard_batch({"image": x.T, "n": np.ones((2, 5))}, axis=1, rank=0, size=2)
    assert part["image"].shape == (2, 3) and part["n"].shape == (2, 3)
    assert dist.shard_batch(x, axis=-2, rank=0, size=3).shape == (2, 2)
    assert dist.shard_batch(x[:1], rank=1, size=2).shape == (0, 2)  # an empty shard


def test_alone_the_shard_is_everything():
    assert dist.shard_sequence([1, 2, 3]) == [1, 2, 3]
    assert dist.shard_bounds(4) == (0, 4)
    x = mx.ones((3, 2))
    assert dist.shard_batch(x).shape == (3, 2)


@pytest.mark.parametrize("call, error, match", [
    (lambda: dist.shard_bounds(5, rank=2, size=2), ValueError, "`rank` must be < `size`"),
    (lambda: dist.shard_bounds(5, rank=0), ValueError, "both `rank` and `size`"),
    (lambda: dist.shard_bounds(-1, rank=0, size=1), ValueError, "`length`"),
    (lambda: dist.shard_bounds(2.0, rank=0, size=1), TypeError, "`length`"),
    (lambda: dist.shard_bounds(2, rank=0, size=0), ValueError, "`size`"),
    (lambda: dist.shard_indices(3, remainder="wrap"), ValueError, "`remainder`"),
    (lambda: dist.shard_sequence(iter([1, 2])), TypeError, "`items`"),
    (lambda: dist.shard_batch((mx.ones(3), mx.ones(4))), ValueError, "differ in length"),
    (lambda: dist.shard_batch(mx.ones(3), axis=1), ValueError, "`axis`"),
    (lambda: dist.shard_batch([1, 2]), TypeError, "mlx or NumPy arrays"),
    (lambda: dist.shard_batch(()), ValueError, "empty"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
