"""lucid_mlx.nn.Sequential against torch.nn.Sequential: names, loading, gradients, indexing, repr."""

from __future__ import annotations

from collections import OrderedDict

import mlx.core as mx
import mlx.nn as mnn
import mlx.optimizers as optim
import numpy as np
import pytest

import lucid_mlx
from lucid_mlx import nn as lnn

torch = pytest.importorskip("torch", reason="Sequential is checked against torch.nn.Sequential")


def _pair():
    """The same nested structure in both libraries: positional, named and nested children."""
    t = torch.nn.Sequential(OrderedDict(
        conv=torch.nn.Conv3d(2, 4, 3, padding=1),
        act=torch.nn.PReLU(4),
        body=torch.nn.Sequential(torch.nn.Conv3d(4, 4, 1), torch.nn.ReLU(), torch.nn.Conv3d(4, 3, 1, bias=False)),
    ))
    m = lnn.Sequential(OrderedDict(
        conv=lnn.Conv3d(2, 4, 3, padding=1),
        act=lnn.PReLU(4),
        body=lnn.Sequential(lnn.Conv3d(4, 4, 1), mnn.ReLU(), lnn.Conv3d(4, 3, 1, bias=False)),
    ))
    with torch.no_grad():
        t.act.weight.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    return t, m


def test_state_dict_names_and_values_are_pytorchs():
    t, m = _pair()
    assert lucid_mlx.load_torch_state_dict(m, t.state_dict()) == ([], [])
    ours = lucid_mlx.torch_state_dict(m)
    assert sorted(ours) == sorted(t.state_dict())
    assert "body.2.weight" in ours and not any("layers" in k for k in ours)
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(np.array(ours[k]), v.numpy())
    t.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.items()}, strict=True)


def test_forward_and_gradients_match_torch():
    t, m = _pair()
    lucid_mlx.load_torch_state_dict(m, t.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 6, 7)).astype(np.float32)
    xt = torch.from_numpy(x)
    out = t(xt)
    out.square().sum().backward()
    np.testing.assert_allclose(np.array(m(mx.array(x))), out.detach().numpy(), rtol=1e-5, atol=1e-6)

    grads = mnn.value_and_grad(m, lambda xx: m(xx).square().sum())(mx.array(x))[1]
    # The gradient tree is keyed like the model: "body" -> "2" -> "weight".
    for name, p in t.named_parameters():
        node = grads
        for part in name.split("."):
            node = node[part]
        np.testing.assert_allclose(np.array(node), p.grad.numpy(), rtol=1e-4, atol=1e-5)
    # An optimiser step updates the children in place.
    before = np.array(m.body[2].weight)
    optim.SGD(learning_rate=0.1).update(m, grads)
    assert not np.array_equal(np.array(m.body[2].weight), before)


def test_indexing_len_iteration_append():
    a, b, c = lnn.PReLU(), mnn.ReLU(), lnn.PReLU(2)
    seq = lnn.Sequential(a, b)
    assert len(seq) == 2 and seq[0] is a and seq[-1] is b and list(seq) == [a, b]
    seq.append(c)
    assert seq[2] is c and seq["2"] is c and len(seq) == 3
    tail = seq[1:]
    assert isinstance(tail, lnn.Sequential) and list(tail) == [b, c]
    seq[1] = mnn.Tanh()
    assert isinstance(seq[1], mnn.Tanh) and len(seq) == 3
    named = lnn.Sequential(OrderedDict(first=a))
    named.add_module("second", b)
    assert named.second is b and named[1] is b and len(named) == 2
    del seq[2]  # the last positional child may go
    assert len(seq) == 2
    empty = lnn.Sequential()
    assert len(empty) == 0
    np.testing.assert_array_equal(np.array(empty(mx.ones(3))), np.ones(3))


def test_load_of_integer_named_children_goes_through_update():
    # tree_unflatten turns "0", "1" into lists; Module.update then indexes with ints.
    seq = lnn.Sequential(lnn.Conv3d(1, 2, 1), lnn.Sequential(lnn.PReLU(2)))
    state = {"0.weight": np.full((2, 1, 1, 1, 1), 3.0, np.float32), "0.bias": np.zeros(2, np.float32),
             "1.0.weight": np.array([0.5, 0.7], np.float32)}
    lucid_mlx.load_torch_state_dict(seq, state)
    np.testing.assert_array_equal(np.array(seq[1][0].weight), state["1.0.weight"])
    np.testing.assert_array_equal(np.array(seq[0].weight).ravel(), [3.0, 3.0])


def test_repr_is_pytorchs():
    t = torch.nn.Sequential(torch.nn.Conv3d(2, 4, 3, stride=2), torch.nn.Sequential(torch.nn.PReLU(4)),
                            torch.nn.Sequential())
    m = lnn.Sequential(lnn.Conv3d(2, 4, 3, stride=2), lnn.Sequential(lnn.PReLU(4)), lnn.Sequential())
    assert repr(m) == repr(t)


@pytest.mark.parametrize("call, error, match", [
    (lambda: lnn.Sequential(3), TypeError, "must be mlx.nn.Modules"),
    (lambda: lnn.Sequential(OrderedDict([("a.b", mnn.ReLU())])), ValueError, "without '.'"),
    (lambda: lnn.Sequential(OrderedDict([("_hidden", mnn.ReLU())])), ValueError, "must not start with '_'"),
    (lambda: lnn.Sequential(mnn.ReLU())[1], IndexError, "out of range"),
    (lambda: lnn.Sequential().add_module(3, mnn.ReLU()), TypeError, "`name` must be a str"),
    # Integer names must be positions, or tree_unflatten's lists would misplace weights.
    (lambda: lnn.Sequential(OrderedDict([("1", mnn.ReLU()), ("0", mnn.ReLU())])), ValueError, "by its position"),
    (lambda: lnn.Sequential(mnn.ReLU(), mnn.ReLU()).__delitem__(0), ValueError, "by its position"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


class _ReusingNet(mnn.Module):
    """`act` also sits at `head.1`, as MONAI's SegResNet has `act_mod` at `conv_final.1`."""

    def __init__(self):
        super().__init__()
        self.act = lnn.PReLU(2)
        self.head = lnn.Sequential(lnn.Conv3d(2, 2, 1), lnn.Reuse(self.act))

    def torch_aliases(self):
        return {"head.1": "act"}

    def __call__(self, x):
        return self.head(self.act(x))


def test_reuse_holds_one_set_of_weights_under_two_names():
    t_act = torch.nn.PReLU(2)
    t = torch.nn.Module()
    t.act, t.head = t_act, torch.nn.Sequential(torch.nn.Conv3d(2, 2, 1), t_act)
    with torch.no_grad():
        t_act.weight.copy_(torch.tensor([0.1, -0.3]))
    m = _ReusingNet()
    assert lucid_mlx.load_torch_state_dict(m, t.state_dict()) == ([], [])
    assert sorted(lucid_mlx.torch_names(m).values()) == ["act.weight", "head.0.bias", "head.0.weight"]
    assert sorted(lucid_mlx.torch_state_dict(m)) == sorted(t.state_dict())
    assert m.head[1].module is m.act and repr(m.head[1]) == f"Reuse({m.act!r})"

    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
    out = t.head(t.act(torch.from_numpy(x)))
    out.square().sum().backward()
    grads = mnn.value_and_grad(m, lambda xx: m(xx).square().sum())(mx.array(x))[1]
    named = lucid_mlx.to_torch_names(m, grads)
    assert sorted(named) == ["act.weight", "head.0.bias", "head.0.weight"]
    # The slope's gradient sums over both uses.
    np.testing.assert_allclose(np.array(named["act.weight"]), t_act.weight.grad.numpy(), rtol=1e-5)
    m.train(False)
    assert not m.head[1].module.training


def test_reuse_refuses_a_non_module():
    with pytest.raises(TypeError, match="`module` must be an mlx.nn.Module, got int"):
        lnn.Reuse(3)
