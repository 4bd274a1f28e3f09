"""conv3d under ``mx.compile``: every path compiles; shapeless compilation only on unsplit dense layers.

A shapeless compiled function is traced once and its graph replayed, each
primitive asked for its output shapes; no Python code (so no lucid_mlx check)
runs then.  MLX 0.32 cannot infer the output shapes of custom functions (the
depthwise, kernel and split paths), slices (per-group and depthwise) or pads,
so those raise MLX's own "cannot infer output shapes" from inside
``mx.compile``, where lucid_mlx cannot replace the message.  The README says so.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx
import lucid_mlx.nn.functional as F


@pytest.fixture(autouse=True)
def _restore_limit():
    yield
    lucid_mlx.reset_workspace_limit()


def _inputs(groups, c_out):
    keys = mx.random.split(mx.random.key(4), 3)
    x1 = mx.random.normal((1, 4, 6, 6, 6), key=keys[0])
    x2 = mx.random.normal((2, 4, 7, 6, 5), key=keys[1])
    w = mx.random.normal((c_out, 4 // groups, 3, 3, 3), key=keys[2])
    mx.eval(x1, x2, w)
    return x1, x2, w


@pytest.mark.parametrize("groups, c_out, limit", [(1, 4, None), (1, 4, 0), (2, 6, None), (4, 8, None), (4, 8, 0)])
def test_compiled_equals_eager(groups, c_out, limit):
    x1, x2, w = _inputs(groups, c_out)
    lucid_mlx.set_workspace_limit(limit)
    f = lambda x: F.conv3d(x, w, padding=1, groups=groups)  # noqa: E731
    g = mx.grad(lambda x: (f(x) ** 2).sum())
    for x in (x1, x2):
        np.testing.assert_allclose(np.array(mx.compile(f)(x)), np.array(f(x)), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.array(mx.compile(g)(x)), np.array(g(x)), rtol=1e-5, atol=1e-4)


def test_shapeless_compile_of_a_dense_layer():
    x1, x2, w = _inputs(1, 4)
    f = mx.compile(lambda x: F.conv3d(x, w, padding=1), shapeless=True)
    assert f(x1).shape == (1, 4, 6, 6, 6)
    np.testing.assert_allclose(np.array(f(x2)), np.array(F.conv3d(x2, w, padding=1)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups, c_out, limit", [(2, 6, None), (4, 8, None), (1, 4, 0)])
def test_shapeless_compile_elsewhere_is_mlx_s_limit(groups, c_out, limit):
    x1, x2, w = _inputs(groups, c_out)
    lucid_mlx.set_workspace_limit(limit)
    f = mx.compile(lambda x: F.conv3d(x, w, padding=1, groups=groups), shapeless=True)
    with pytest.raises(ValueError, match="cannot infer output shapes"):
        mx.eval(f(x1), f(x2))
