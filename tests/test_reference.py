"""The oracle checked on its own: the definition, and adjoint identities.

If the reference were wrong, every comparison against it would be too; these
tests pin it to the scalar definition of the convolution and check that the
gradients are the adjoints of the forward (<A x, g> == <x, A^T g>).
"""

import numpy as np
import pytest

from reference import (
    conv3d_grads_ref,
    conv3d_naive,
    conv3d_ref,
    pad_grad_ref,
    pad_ref,
    pad_source_index,
    padding_pairs,
)

CASES = [
    # x shape, w shape, stride, padding, dilation, groups
    ((1, 2, 4, 5, 3), (3, 2, 2, 3, 1), 1, 0, 1, 1),
    ((2, 4, 5, 4, 4), (6, 2, 3, 2, 2), (2, 1, 2), (1, 0, 2), (1, 2, 1), 2),
    ((1, 3, 4, 4, 5), (6, 1, 2, 2, 3), 1, "same", (2, 1, 1), 3),
    ((2, 2, 3, 4, 4), (2, 2, 2, 2, 2), 1, "valid", 1, 1),
    ((1, 1, 3, 3, 3), (1, 1, 2, 2, 2), 1, ((0, 1), (1, 0), (1, 1)), 1, 1),
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CASES)
def test_reference_matches_definition(xs, ws, stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=xs), rng.normal(size=ws), rng.normal(size=ws[0])
    got = conv3d_ref(x, w, b, stride, padding, dilation, groups)
    want = conv3d_naive(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CASES)
def test_reference_gradients_are_adjoints(xs, ws, stride, padding, dilation, groups):
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=xs), rng.normal(size=ws)
    y = conv3d_ref(x, w, None, stride, padding, dilation, groups)
    gy = rng.normal(size=y.shape)
    gx, gw, gb = conv3d_grads_ref(gy, x, w, stride, padding, dilation, groups)
    # The convolution is linear in x and in w separately.
    assert np.vdot(y, gy) == pytest.approx(np.vdot(x, gx), rel=1e-10)
    assert np.vdot(y, gy) == pytest.approx(np.vdot(w, gw), rel=1e-10)
    # And a finite difference in the bias direction.
    db = rng.normal(size=ws[0])
    delta = conv3d_ref(x, w, db, stride, padding, dilation, groups) - y
    assert np.vdot(delta, gy) == pytest.approx(np.vdot(db, gb), rel=1e-10)


def test_same_padding_puts_the_odd_element_high():
    assert padding_pairs("same", (2, 3, 4), (1, 1, 3)) == ((0, 1), (1, 1), (4, 5))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_reference_and_its_adjoint(mode):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 2, 3, 4, 5))
    pad = (2, 1, 0, 3, 1, 2)
    y = pad_ref(x, pad, mode)
    assert y.shape == (2, 2, 6, 7, 8)
    # Every element of the padded array comes from the source index tables.
    idx = [pad_source_index(n, lo, hi, mode) for n, lo, hi in ((3, 1, 2), (4, 0, 3), (5, 2, 1))]
    for d, h, w in np.ndindex(*y.shape[2:]):
        src = (idx[0][d], idx[1][h], idx[2][w])
        want = 0.0 if min(src) < 0 else x[:, :, src[0], src[1], src[2]]
        np.testing.assert_array_equal(y[:, :, d, h, w], want)
    gy = rng.normal(size=y.shape)
    assert np.vdot(y, gy) == pytest.approx(np.vdot(x, pad_grad_ref(gy, x.shape, pad, mode)))
