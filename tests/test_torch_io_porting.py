"""The importer's porting aids: names, shared modules, checkpoint wrappers, key reports, safe saves.

Most tests use NumPy state_dicts and run without torch; the shared-module
training tests compare with a PyTorch model that registers one module
under two names, as MONAI's DynUNet does.
"""

from __future__ import annotations

import os

import mlx.core as mx
import mlx.nn as mnn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten

import lucid_mlx
from lucid_mlx import (
    check_torch_state_dict,
    load_torch_state_dict,
    save_torch_state_dict,
    to_torch_names,
    torch_names,
    torch_state_dict,
)
from lucid_mlx import nn as lnn


class Small(mnn.Module):
    """An mlx.nn.Sequential inside a module: names drop its `layers` hop."""

    def __init__(self):
        super().__init__()
        self.body = mnn.Sequential(lnn.Conv3d(2, 4, 3, padding=1), mnn.ReLU(), lnn.Conv3d(4, 4, 1))
        self.head = lnn.Conv3d(4, 1, 1, bias=False)

    def __call__(self, x):
        return self.head(self.body(x))


def _state(model, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in torch_state_dict(model).items()}


class Shared(mnn.Module):
    """`enc` is also PyTorch's `skip.first`: one registration, one alias, two uses."""

    def __init__(self):
        super().__init__()
        self.enc = lnn.Conv3d(2, 2, 3, padding=1)
        self.dec = lnn.Conv3d(2, 1, 1)

    def torch_aliases(self):
        return {"skip.first": "enc"}

    def __call__(self, x):
        return self.dec(self.enc(mnn.relu(self.enc(x))))


# ---- names --------------------------------------------------------------------------

def test_torch_names_maps_mlx_paths():
    names = torch_names(Small())
    assert names == {"body.layers.0.weight": "body.0.weight", "body.layers.0.bias": "body.0.bias",
                     "body.layers.2.weight": "body.2.weight", "body.layers.2.bias": "body.2.bias",
                     "head.weight": "head.weight"}
    assert lucid_mlx.torch_names is torch_names


def test_to_torch_names_flattens_a_gradient_tree():
    model = Small()
    x = mx.random.normal((1, 2, 3, 3, 3), key=mx.random.key(0))
    grads = mnn.value_and_grad(model, lambda m, x: m(x).sum())(model, x)[1]
    named = to_torch_names(model, grads)
    assert sorted(named) == sorted(torch_names(model).values())
    np.testing.assert_array_equal(np.array(named["body.2.bias"]), np.array(grads["body"]["layers"][2]["bias"]))
    with pytest.raises(ValueError, match=r"leaf at 'tail\.weight', which is not a parameter path"):
        to_torch_names(model, {"tail": {"weight": mx.zeros(1)}})


# ---- shared modules ------------------------------------------------------------------

def test_alias_names_are_saved_and_accepted():
    model = Shared()
    state = torch_state_dict(model)
    assert sorted(state) == ["dec.bias", "dec.weight", "enc.bias", "enc.weight", "skip.first.bias",
                             "skip.first.weight"]
    assert state["skip.first.weight"] is state["enc.weight"]
    assert to_torch_names(model, model.parameters(), aliases=True).keys() == state.keys()
    source = _state(model)
    source["skip.first.weight"], source["skip.first.bias"] = source["enc.weight"], source["enc.bias"]
    assert load_torch_state_dict(model, source) == ([], [])
    np.testing.assert_array_equal(np.array(model.enc.weight), source["enc.weight"])
    # MLX holds one set of weights: the alias is not a second parameter.
    assert sorted(k for k, _ in tree_flatten(model.parameters())) == [
        "dec.bias", "dec.weight", "enc.bias", "enc.weight"]


@pytest.mark.parametrize("keep", ["enc", "skip.first"])
def test_either_name_of_a_shared_module_loads(keep):
    model, source = Shared(), _state(Shared())
    drop = "skip.first" if keep == "enc" else "enc"
    given = {k.replace("skip.first", keep) if k.startswith("skip.first") else k: v
             for k, v in source.items() if not k.startswith(drop)}
    given[f"{keep}.weight"] = source["enc.weight"]
    given[f"{keep}.bias"] = source["enc.bias"]
    assert load_torch_state_dict(model, given) == ([], [])
    np.testing.assert_array_equal(np.array(model.enc.weight), source["enc.weight"])


def test_alias_values_that_differ_are_refused():
    model = Shared()
    before = np.array(model.enc.weight)
    source = _state(model)
    source["skip.first.weight"] = source["enc.weight"] + 1
    source["skip.first.bias"] = source["enc.bias"]
    with pytest.raises(ValueError, match=r"different values \(1\): skip\.first\.weight != enc\.weight"):
        load_torch_state_dict(model, source, strict=False)
    np.testing.assert_array_equal(np.array(model.enc.weight), before)


def test_a_module_registered_twice_is_reported():
    class Twice(mnn.Module):
        def __init__(self):
            super().__init__()
            self.a = lnn.Conv3d(1, 1, 1)
            self.b = self.a

    model = Twice()
    report = check_torch_state_dict(model, torch_state_dict(model))
    assert report.ok and report.shared == [("a", "b")]
    assert "registered under two names (1): 'a' and 'b'" in str(report)
    with pytest.warns(UserWarning, match="torch_aliases"):
        load_torch_state_dict(model, torch_state_dict(model))


def _torch_shared(skip_first: bool):
    """The PyTorch twin of `Shared`, registering the shared conv under both names."""
    torch = pytest.importorskip("torch", reason="the shared-module training reference is PyTorch")

    class TorchShared(torch.nn.Module):
        def __init__(self):
            super().__init__()
            conv = torch.nn.Conv3d(2, 2, 3, padding=1)
            if skip_first:  # the alias is registered first: named_parameters() reports it
                self.skip = torch.nn.Module()
                self.skip.first = conv
                self.enc = conv
            else:
                self.enc = conv
                self.skip = torch.nn.Module()
                self.skip.first = conv
            self.dec = torch.nn.Conv3d(2, 1, 1)

        def forward(self, x):
            return self.dec(self.skip.first(torch.relu(self.enc(x))))

    torch.manual_seed(0)
    return torch, TorchShared()


@pytest.mark.parametrize("skip_first", [False, True])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_shared_module_trains_as_in_pytorch(skip_first, optimizer):
    torch, original = _torch_shared(skip_first)
    model = Shared()
    load_torch_state_dict(model, original.state_dict())
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 3, 5)).astype(np.float32)

    loss_fn = lambda m, x: (m(x) ** 2).mean()  # noqa: E731
    loss, grads = mnn.value_and_grad(model, loss_fn)(model, mx.array(x))
    t_loss = (original(torch.from_numpy(x)) ** 2).mean()
    t_loss.backward()
    ours = to_torch_names(model, grads, aliases=True)
    for name, p in original.named_parameters():
        np.testing.assert_allclose(np.array(ours[name]), p.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)

    if optimizer == "sgd":
        step, t_step = optim.SGD(learning_rate=0.1), torch.optim.SGD(original.parameters(), lr=0.1)
    else:
        step = optim.Adam(learning_rate=0.01, bias_correction=True)
        t_step = torch.optim.Adam(original.parameters(), lr=0.01)
    step.update(model, grads)
    t_step.step()
    after = torch_state_dict(model)
    for name, value in original.state_dict().items():
        np.testing.assert_allclose(np.array(after[name]), value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


# ---- checkpoints people have ---------------------------------------------------------

@pytest.mark.parametrize("wrap, said", [
    (lambda s: {"state_dict": s, "epoch": 3}, ["the wrapper checkpoint['state_dict']"]),
    (lambda s: {"model": s, "optimizer": {"lr": 0.1}}, ["the wrapper checkpoint['model']"]),
    (lambda s: {"module." + k: v for k, v in s.items()}, ["the prefix 'module.' (DataParallel/DistributedDataParallel)"]),
    (lambda s: {"state_dict": {"module._orig_mod." + k: v for k, v in s.items()}},
     ["the wrapper checkpoint['state_dict']", "the prefix 'module.' (DataParallel/DistributedDataParallel)",
      "the prefix '_orig_mod.' (torch.compile)"]),
])
def test_checkpoint_wrappers_are_removed_and_reported(wrap, said):
    model, state = Small(), _state(Small())
    keys = load_torch_state_dict(model, wrap(state))
    assert keys == ([], []) and list(keys.unwrapped) == said
    assert "unwrapped=" in repr(keys)
    np.testing.assert_array_equal(np.array(model.head.weight), state["head.weight"])


def test_module_prefix_kept_when_the_model_has_it():
    class Outer(mnn.Module):
        def __init__(self):
            super().__init__()
            self.module = lnn.Conv3d(1, 1, 1)

    model = Outer()
    keys = load_torch_state_dict(model, {"module.weight": np.ones((1, 1, 1, 1, 1), np.float32),
                                         "module.bias": np.ones(1, np.float32)})
    assert keys.unwrapped == ()


def test_unknown_wrapper_names_its_entries():
    with pytest.raises(TypeError, match=r"entries \['epoch', 'weights'\] are not tensors"):
        load_torch_state_dict(Small(), {"epoch": 3, "weights": _state(Small())})


def test_pt_checkpoint_file_is_unwrapped(tmp_path):
    torch = pytest.importorskip("torch", reason="writing a .pt checkpoint needs torch")
    state = _state(Small())
    checkpoint = {"epoch": 7, "state_dict": {"module." + k: torch.from_numpy(v) for k, v in state.items()},
                  "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]}}
    torch.save(checkpoint, tmp_path / "CKPT.PT")
    model = Small()
    keys = load_torch_state_dict(model, tmp_path / "CKPT.PT")
    assert len(keys.unwrapped) == 2
    np.testing.assert_array_equal(np.array(model.body.layers[0].weight), state["body.0.weight"])


# ---- the key report -----------------------------------------------------------------

def test_failed_load_groups_keys_and_suggests_names():
    state = _state(Small())
    state["body.2.wieght"] = state.pop("body.2.weight")
    state["head.weight"] = np.zeros((1, 4, 1, 1, 2), np.float32)
    with pytest.raises(ValueError) as err:
        load_torch_state_dict(Small(), state)
    text = str(err.value)
    assert "missing keys (1): body.2.weight" in text
    assert "unexpected keys (1): body.2.wieght (did you mean body.2.weight?)" in text
    assert "shape mismatch (1): head.weight: source (1, 4, 1, 1, 2), model (1, 4, 1, 1, 1)" in text


def test_long_groups_are_cut_with_a_count():
    state = _state(Small())
    state.update({f"extra.{i}.weight": np.zeros(1, np.float32) for i in range(25)})
    report = check_torch_state_dict(Small(), state)
    text = str(report)
    assert "unexpected keys (25)" in text and "... and 15 more" in text
    assert len(text.splitlines()) < 16


def test_check_reports_without_loading():
    model = Small()
    before = np.array(model.head.weight)
    state = _state(model)
    assert check_torch_state_dict(model, state).ok
    del state["head.weight"]
    report = check_torch_state_dict(model, state)
    assert not report.ok and report.missing == ["head.weight"] and report.unexpected == []
    np.testing.assert_array_equal(np.array(model.head.weight), before)


# ---- files --------------------------------------------------------------------------

def test_upper_case_suffix_is_kept(tmp_path):
    src, dst = Small(), Small()
    save_torch_state_dict(src, tmp_path / "W.SAFETENSORS")
    assert os.listdir(tmp_path) == ["W.SAFETENSORS"]
    load_torch_state_dict(dst, tmp_path / "W.SAFETENSORS")
    np.testing.assert_array_equal(np.array(dst.head.weight), np.array(src.head.weight))


def test_interrupted_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    save_torch_state_dict(Small(), path)
    old = path.read_bytes()

    def broken(file, arrays, *args, **kwargs):
        with open(file, "wb") as f:  # a partial write, then the crash
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(mx, "save_safetensors", broken)
    with pytest.raises(OSError, match="disk full"):
        save_torch_state_dict(Small(), path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["w.safetensors"]


def test_directories_get_clear_errors(tmp_path):
    folder = tmp_path / "weights.safetensors"
    folder.mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        load_torch_state_dict(Small(), folder)
    with pytest.raises(ValueError, match="is a directory"):
        save_torch_state_dict(Small(), folder)
    with pytest.raises(ValueError, match="does not exist"):
        save_torch_state_dict(Small(), tmp_path / "nowhere" / "w.safetensors")
