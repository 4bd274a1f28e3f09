"""DropPath (stochastic depth): identity when off, MONAI's distribution when on."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from lucid_mlx.models.layers.drop_path import DropPath


@pytest.mark.parametrize("p,scale", [(0.3, True), (0.6, False)])
def test_drops_whole_samples_with_probability_p(p, scale):
    mx.random.seed(0)
    n = 4000
    out = np.array(DropPath(p, scale_by_keep=scale).train()(mx.ones((n, 2, 3))))
    per_sample = out.reshape(n, -1)
    # Each sample is all-dropped or all-kept.
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))
    kept = per_sample[:, 0] != 0
    # Binomial(n, 1 - p): 5 standard deviations.
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(per_sample[kept, 0], 1 / (1 - p) if scale else 1.0, rtol=1e-6)


def test_identity_in_eval_and_at_zero_and_zero_at_one():
    x = mx.random.normal((8, 3, 2, 2, 2))
    np.testing.assert_array_equal(np.array(DropPath(0.5).eval()(x)), np.array(x))
    np.testing.assert_array_equal(np.array(DropPath(0.0).train()(x)), np.array(x))
    np.testing.assert_array_equal(np.array(DropPath(1.0).train()(x)), np.zeros(x.shape))


def test_gradient_flows_through_kept_samples_only():
    mx.random.seed(1)
    layer = DropPath(0.5).train()
    x = mx.ones((64, 3))
    mx.random.seed(2)
    out = layer(x)
    mx.random.seed(2)
    grad = mx.grad(lambda v: layer(v).sum())(x)
    np.testing.assert_array_equal(np.array(grad), np.array(out))  # d(x * m)/dx = m, and x = 1


@pytest.mark.parametrize("kwargs,error", [(dict(drop_prob=1.5), ValueError), (dict(drop_prob="0.1"), TypeError),
                                          (dict(drop_prob=0.1, scale_by_keep=1), TypeError)])
def test_bad_arguments_are_refused(kwargs, error):
    with pytest.raises(error, match="drop_prob|scale_by_keep"):
        DropPath(**kwargs)
