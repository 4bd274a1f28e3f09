"""The check every loss table row runs: a MONAI loss and ours on the same seeded data."""

from __future__ import annotations

import warnings

import mlx.core as mx
import numpy as np
import pytest

from arrays import assert_close


def compare_with_monai(monai_loss, ours, x: np.ndarray, y: np.ndarray) -> None:
    """The loss (with its reduction), its sum and d(sum)/d(input) of ``ours`` against ``monai_loss``'s."""
    torch = pytest.importorskip("torch", reason="MONAI's losses are the reference")
    xt = torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = monai_loss(xt, torch.tensor(y))
        want.sum().backward()
        value, grad = mx.value_and_grad(lambda a: ours(a, mx.array(y)).sum())(mx.array(x))
        got = ours(mx.array(x), mx.array(y))
    assert_close(got, want.detach().double().numpy(), what="loss")
    assert_close(value, want.sum().detach().double().numpy(), what="summed loss")
    assert_close(grad, xt.grad.double().numpy(), what="input gradient")
