"""all_sum and all_gather: gradients of the whole job, where MLX's are the local cotangent.

On rank r the loss is ``sum(op(x) * c_r)``; the job's objective is the sum
of these over ranks, so the gradient with respect to x_r is the sum over
ranks of the cotangents that reach x_r (worked out by hand below).
"""

from __future__ import annotations


import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx import distributed as dist
from rank_launcher import NUM_RANKS, run_and_load

N = NUM_RANKS
X = [np.array([r + 1.0, 2.0 * (r + 1)]) for r in range(N)]
C = [np.array([10.0 ** r, -(r + 1.0)]) for r in range(N)]
C_GATHER = [np.arange(2 * N) * (r + 1.0) for r in range(N)]


@pytest.fixture(scope="module")
def ranks():
    return run_and_load("ranks_collectives.py", ["collectives"], timeout=120)["collectives"]


def test_forward_values_match_mlx(ranks):
    total = sum(X)
    for r, got in enumerate(ranks):
        for name in ("ours", "plain"):
            assert got[f"{name}_sum"] == pytest.approx(float((total * C[r]).sum()))
            assert got[f"{name}_gather"] == pytest.approx(
                float((np.concatenate(X) * C_GATHER[r]).sum()))


def test_all_sum_gradient_sums_every_ranks_cotangent(ranks):
    for r, got in enumerate(ranks):
        np.testing.assert_allclose(got["ours_sum_grad"], sum(C), rtol=1e-6)
        np.testing.assert_allclose(got["compiled_sum_grad"], sum(C), rtol=1e-6)
        # MLX's own: the local cotangent, which is why SyncBatchNorm3d needs ours.
        np.testing.assert_allclose(got["plain_sum_grad"], C[r], rtol=1e-6)


def test_all_gather_gradient_sums_every_ranks_cotangent_of_its_rows(ranks):
    for r, got in enumerate(ranks):
        rows = slice(2 * r, 2 * r + 2)
        np.testing.assert_allclose(got["ours_gather_grad"], sum(c[rows] for c in C_GATHER),
                                   rtol=1e-6)
        np.testing.assert_allclose(got["plain_gather_grad"], C_GATHER[r][rows], rtol=1e-6)


def test_alone_they_are_the_identity():
    x = mx.array([1.0, 2.0])
    assert dist.all_sum(x) is x and dist.all_gather(x) is x
    np.testing.assert_array_equal(mx.grad(lambda x: (dist.all_sum(x) * 3).sum())(x), [3, 3])


def test_argument_errors():
    with pytest.raises(TypeError, match="`x`"):
        dist.all_sum([1.0, 2.0])
    with pytest.raises(ValueError, match="at least 1-D"):
        dist.all_gather(mx.array(1.0))
    with pytest.raises(TypeError, match="`group`"):
        dist.all_sum(mx.ones(2), group=0)
