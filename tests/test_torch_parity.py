"""Parity with PyTorch's Conv3d, F.conv3d and F.pad, forward and gradients.

Weights are copied across as they are: lucid_mlx keeps PyTorch's
(C_out, C_in/groups, KD, KH, KW) layout, so no transposes appear here.
"""

from __future__ import annotations

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten

torch = pytest.importorskip("torch")
TF = torch.nn.functional

import lucid_mlx.nn.functional as F  # noqa: E402
from arrays import assert_close  # noqa: E402
from lucid_mlx import nn  # noqa: E402

# PyTorch warns that 'same' with an even kernel may copy the input; expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

torch.manual_seed(0)


def _close(got: mx.array, want, what: str = "") -> None:
    """``assert_close`` against a PyTorch tensor (float32 output: 1e-5 of scale)."""
    assert_close(got, want.detach().double().numpy(), what=what)


def _mx(t) -> mx.array:
    return mx.array(t.detach().numpy())


MODULE_CASES = [
    dict(in_channels=2, out_channels=3, kernel_size=3),
    dict(in_channels=2, out_channels=4, kernel_size=(3, 1, 2), stride=(2, 1, 1), padding=(1, 0, 2), bias=False),
    dict(in_channels=3, out_channels=2, kernel_size=2, dilation=(2, 1, 3), padding=2),
    dict(in_channels=2, out_channels=3, kernel_size=(2, 4, 3), padding="same"),
    dict(in_channels=2, out_channels=3, kernel_size=(2, 2, 4), padding="same", dilation=(3, 1, 2)),
    dict(in_channels=2, out_channels=2, kernel_size=3, padding="valid", stride=2),
    dict(in_channels=4, out_channels=6, kernel_size=3, groups=2, padding=1),
    dict(in_channels=6, out_channels=3, kernel_size=(1, 2, 3), groups=3, stride=(1, 2, 1)),
    dict(in_channels=4, out_channels=4, kernel_size=3, groups=4, padding=1),
    dict(in_channels=3, out_channels=6, kernel_size=(2, 3, 2), groups=3, padding="same", bias=False),
    dict(in_channels=2, out_channels=6, kernel_size=3, groups=2, stride=2, dilation=2, padding=2),
    dict(in_channels=2, out_channels=3, kernel_size=3, padding=1, padding_mode="reflect"),
    dict(in_channels=4, out_channels=4, kernel_size=(2, 4, 2), padding="same", padding_mode="reflect", groups=4),
    dict(in_channels=2, out_channels=3, kernel_size=3, padding=(2, 1, 0), padding_mode="replicate"),
    dict(in_channels=4, out_channels=2, kernel_size=(3, 2, 2), padding="same", padding_mode="replicate", groups=2),
    dict(in_channels=2, out_channels=3, kernel_size=3, padding=2, padding_mode="circular", stride=(1, 2, 2)),
    dict(in_channels=2, out_channels=4, kernel_size=(4, 2, 3), padding="same", padding_mode="circular", groups=2),
]


def _case_id(kwargs):
    return ",".join(f"{k}={v}" for k, v in kwargs.items() if k not in ("in_channels", "out_channels"))


@pytest.mark.parametrize("kwargs", MODULE_CASES, ids=[_case_id(c) for c in MODULE_CASES])
def test_module_forward_and_gradients(kwargs):
    ref = torch.nn.Conv3d(**kwargs).double()
    conv = nn.Conv3d(**kwargs)
    # A PyTorch state_dict loads as it is.
    conv.load_weights([(k, mx.array(v.float().numpy())) for k, v in ref.state_dict().items()])
    assert set(ref.state_dict()) == set(dict(tree_flatten(conv.parameters())))
    assert repr(conv) == repr(ref)

    xt = torch.randn(2, kwargs["in_channels"], 5, 6, 7, dtype=torch.float64).float().double()
    xt.requires_grad_(True)
    yt = ref(xt)
    gyt = torch.randn_like(yt)
    yt.backward(gyt)

    x, gy = _mx(xt.float()), _mx(gyt.float())
    y = conv(x)
    _close(y, yt, "output")

    def loss(params, x):
        conv.update(params)
        return (conv(x) * gy).sum()

    grad_x = mx.grad(loss, argnums=1)(conv.trainable_parameters(), x)
    grads = dict(tree_flatten(mx.grad(loss)(conv.trainable_parameters(), x)))
    _close(grad_x, xt.grad, "grad input")
    _close(grads["weight"], ref.weight.grad, "grad weight")
    if ref.bias is not None:
        _close(grads["bias"], ref.bias.grad, "grad bias")


FUNCTIONAL_CASES = [
    # x shape, w shape, stride, padding, dilation, groups, bias
    ((2, 3, 6, 5, 7), (4, 3, 3, 2, 3), 1, 0, 1, 1, True),
    ((1, 4, 6, 6, 6), (6, 2, 3, 3, 3), (2, 1, 2), (1, 2, 0), 1, 2, True),
    ((2, 6, 5, 6, 7), (6, 1, 3, 3, 3), 1, "same", (1, 2, 1), 6, False),
    ((2, 3, 5, 6, 7), (9, 1, 2, 3, 4), 1, "same", 1, 3, True),
    ((1, 6, 7, 7, 7), (3, 2, 2, 2, 2), 3, 1, 2, 3, True),
    ((2, 2, 4, 5, 6), (2, 2, 4, 2, 2), 1, "valid", (1, 3, 2), 1, False),
    ((0, 4, 5, 5, 5), (8, 2, 3, 3, 3), 1, 1, 1, 2, True),
]


@pytest.mark.parametrize("case", FUNCTIONAL_CASES, ids=[str(i) for i in range(len(FUNCTIONAL_CASES))])
def test_functional_forward_and_gradients(case):
    xs, ws, stride, padding, dilation, groups, has_bias = case
    xt = torch.randn(*xs, dtype=torch.float64, requires_grad=True)
    wt = torch.randn(*ws, dtype=torch.float64, requires_grad=True)
    bt = torch.randn(ws[0], dtype=torch.float64, requires_grad=True) if has_bias else None
    yt = TF.conv3d(xt, wt, bt, stride, padding, dilation, groups)
    gyt = torch.randn_like(yt)
    yt.backward(gyt)

    x, w, gy = _mx(xt.float()), _mx(wt.float()), _mx(gyt.float())
    args = [x, w] + ([_mx(bt.float())] if has_bias else [])

    def fn(x, w, b=None):
        return F.conv3d(x, w, b, stride, padding, dilation, groups)

    (y,), grads = mx.vjp(fn, args, [gy])
    _close(y, yt, "output")
    _close(grads[0], xt.grad, "grad input")
    _close(grads[1], wt.grad, "grad weight")
    if has_bias:
        _close(grads[2], bt.grad, "grad bias")


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    "pad", [(1, 1, 1, 1, 1, 1), (2, 0, 1, 3, 0, 2), (4, 4, 3, 3, 2, 2), (-1, 2, 0, -2, 1, 0)], ids=str
)
def test_pad_forward_and_gradient(pad, mode):
    xt = torch.randn(2, 2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    try:
        yt = TF.pad(xt, pad, mode=mode)
    except RuntimeError as err:
        with pytest.raises(ValueError):
            F.pad(_mx(xt.float()), pad, mode=mode)
        pytest.skip(f"PyTorch rejects it too: {err}")
    gyt = torch.randn_like(yt)
    yt.backward(gyt)
    (y,), (gx,) = mx.vjp(lambda x: F.pad(x, pad, mode=mode), [_mx(xt.float())], [_mx(gyt.float())])
    _close(y, yt, "pad")
    _close(gx, xt.grad, "pad gradient")


@pytest.mark.parametrize("pad", [(1, 2), (0, 1, 2, 0), (1, 0, 0, 1, 2, 0, 1, 1)], ids=str)
def test_constant_pad_of_fewer_or_more_dimensions(pad):
    xt = torch.randn(1, 2, 3, 4, 5)
    _close(F.pad(_mx(xt), pad, value=1.5), TF.pad(xt, pad, value=1.5))


def test_module_matches_after_an_sgd_step_on_both_sides():
    """One identical SGD step keeps the two layers equal: gradients agree in use too."""
    import mlx.nn as mlx_nn
    import mlx.optimizers as optim

    kwargs = dict(in_channels=4, out_channels=4, kernel_size=3, padding=1, groups=2, padding_mode="circular")
    ref = torch.nn.Conv3d(**kwargs)
    conv = nn.Conv3d(**kwargs)
    conv.load_weights([(k, _mx(v)) for k, v in ref.state_dict().items()])
    xt = torch.randn(2, 4, 4, 5, 6)
    ((ref(xt) ** 2).mean()).backward()
    torch.optim.SGD(ref.parameters(), lr=0.1).step()

    x = _mx(xt)
    _, grads = mlx_nn.value_and_grad(conv, lambda m: (m(x) ** 2).mean())(conv)
    optim.SGD(learning_rate=0.1).update(conv, grads)
    _close(conv.weight, ref.weight, "weight after a step")
    _close(conv.bias, ref.bias, "bias after a step")
    _close(conv(x), ref(xt), "output after a step")
