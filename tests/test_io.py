"""load_torch_state_dict / save_torch_state_dict.

The key-handling tests use NumPy state_dicts and run without torch; the
twin-model tests compare a PyTorch 3-D U-Net with its lucid_mlx twin.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as mnn
import numpy as np
import pytest

import lucid_mlx
from lucid_mlx import IncompatibleKeys, load_torch_state_dict, save_torch_state_dict
from lucid_mlx import nn as lnn


class Small(mnn.Module):
    """A Sequential inside a module, so names need the `layers` hop removed."""

    def __init__(self):
        super().__init__()
        self.body = mnn.Sequential(lnn.Conv3d(2, 4, 3, padding=1), mnn.ReLU(), lnn.Conv3d(4, 4, 1, groups=2))
        self.head = lnn.Conv3d(4, 1, 1, bias=False)

    def __call__(self, x):
        return self.head(self.body(x))


def _numpy_state(seed=0):
    rng = np.random.default_rng(seed)
    shapes = {
        "body.0.weight": (4, 2, 3, 3, 3),
        "body.0.bias": (4,),
        "body.2.weight": (4, 2, 1, 1, 1),
        "body.2.bias": (4,),
        "head.weight": (1, 4, 1, 1, 1),
    }
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def test_names_follow_pytorch():
    assert sorted(lucid_mlx.torch_state_dict(Small())) == sorted(_numpy_state())


def test_load_numpy_state_dict_sets_every_array():
    model, state = Small(), _numpy_state()
    keys = load_torch_state_dict(model, state)
    assert keys == IncompatibleKeys([], [])
    for name, value in lucid_mlx.torch_state_dict(model).items():
        np.testing.assert_array_equal(np.array(value), state[name])


def test_values_take_the_model_dtype():
    model = Small()
    state = {k: v.astype(np.float64) for k, v in _numpy_state().items()}
    load_torch_state_dict(model, state)
    assert model.head.weight.dtype == mx.float32


def test_shape_mismatch_raises_even_when_not_strict_and_loads_nothing():
    model = Small()
    before = np.array(model.head.weight)
    state = _numpy_state()
    state["body.0.weight"] = np.zeros((4, 2, 3, 3, 1), np.float32)
    with pytest.raises(ValueError, match=r"body\.0\.weight: source \(4, 2, 3, 3, 1\), model \(4, 2, 3, 3, 3\)"):
        load_torch_state_dict(model, state, strict=False)
    np.testing.assert_array_equal(np.array(model.head.weight), before)


def test_strict_lists_missing_and_unexpected():
    state = _numpy_state()
    del state["head.weight"]
    state["body.9.weight"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"missing keys \(1\): head\.weight[\s\S]*unexpected keys \(1\): body\.9\.weight"):
        load_torch_state_dict(Small(), state)


def test_non_strict_reports_and_loads_the_rest():
    model, state = Small(), _numpy_state()
    before = np.array(model.head.weight)
    del state["head.weight"]
    state["extra"] = np.zeros(1, np.float32)
    keys = load_torch_state_dict(model, state, strict=False)
    assert keys.missing_keys == ["head.weight"] and keys.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(np.array(model.head.weight), before)
    np.testing.assert_array_equal(np.array(model.body.layers[2].bias), state["body.2.bias"])


def test_bad_sources():
    with pytest.raises(TypeError, match="`source` must be a state_dict"):
        load_torch_state_dict(Small(), 3)
    with pytest.raises(ValueError, match="does not exist"):
        load_torch_state_dict(Small(), "/nonexistent/w.safetensors")
    with pytest.raises(TypeError, match=r"entry 'head\.weight' must be a torch\.Tensor"):
        load_torch_state_dict(Small(), {"head.weight": [1.0]})
    with pytest.raises(TypeError, match="`model` must be an mlx.nn.Module"):
        load_torch_state_dict({}, {})


def test_save_then_load_safetensors(tmp_path):
    src, dst = Small(), Small()
    path = tmp_path / "w.safetensors"
    save_torch_state_dict(src, path)
    load_torch_state_dict(dst, path)
    x = mx.random.normal((1, 2, 5, 5, 5))
    np.testing.assert_array_equal(np.array(src(x)), np.array(dst(x)))
    with pytest.raises(ValueError, match="must be a file name ending in .safetensors"):
        save_torch_state_dict(src, tmp_path / "w.pt")


# ---- a PyTorch 3-D U-Net and its lucid_mlx twin ----------------------------------

def _twins():
    """A PyTorch U-Net covering grouped Conv3d, BatchNorm3d, MaxPool3d,
    ConvTranspose3d and Upsample, its lucid_mlx twin, and a shared input."""
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    class TorchNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.enc = tnn.Sequential(tnn.Conv3d(2, 8, 3, padding=1), tnn.BatchNorm3d(8), tnn.ReLU(),
                                      tnn.Conv3d(8, 8, 3, padding=1, groups=4, bias=False), tnn.BatchNorm3d(8))
            self.pool = tnn.MaxPool3d(2)
            self.mid = tnn.Conv3d(8, 12, 3, padding=1, groups=2)
            self.up = tnn.ConvTranspose3d(12, 8, 2, stride=2, groups=2)
            self.up2 = tnn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)
            self.head = tnn.ModuleList([tnn.Conv3d(16, 3, 1), tnn.Conv3d(12, 3, 1)])

        def forward(self, x):
            skip = self.enc(x)
            deep = torch.relu(self.mid(self.pool(skip)))
            fine = self.head[0](torch.cat([self.up(deep), skip], 1))
            return fine + self.up2(self.head[1](deep))

    class MlxNet(mnn.Module):
        def __init__(self):
            super().__init__()
            self.enc = mnn.Sequential(lnn.Conv3d(2, 8, 3, padding=1), lnn.BatchNorm3d(8), mnn.ReLU(),
                                      lnn.Conv3d(8, 8, 3, padding=1, groups=4, bias=False), lnn.BatchNorm3d(8))
            self.pool = lnn.MaxPool3d(2)
            self.mid = lnn.Conv3d(8, 12, 3, padding=1, groups=2)
            self.up = lnn.ConvTranspose3d(12, 8, 2, stride=2, groups=2)
            self.up2 = lnn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)
            self.head = [lnn.Conv3d(16, 3, 1), lnn.Conv3d(12, 3, 1)]

        def __call__(self, x):
            skip = self.enc(x)
            deep = mnn.relu(self.mid(self.pool(skip)))
            fine = self.head[0](mx.concatenate([self.up(deep), skip], axis=1))
            return fine + self.up2(self.head[1](deep))

    torch.manual_seed(0)
    original = TorchNet()
    with torch.no_grad():  # move the running statistics away from their defaults
        for _ in range(2):
            original(torch.randn(2, 2, 8, 10, 6))
    original.eval()
    x = np.random.default_rng(3).standard_normal((2, 2, 8, 10, 6)).astype(np.float32)
    with torch.no_grad():
        expected = original(torch.from_numpy(x)).numpy()
    return torch, original, MlxNet, x, expected


def _check(twin, x, expected):
    twin.eval()
    np.testing.assert_allclose(np.array(twin(mx.array(x))), expected, rtol=1e-4, atol=1e-5)


def test_twin_from_state_dict_matches_pytorch():
    torch, original, MlxNet, x, expected = _twins()
    twin = MlxNet()
    assert load_torch_state_dict(twin, original.state_dict()) == ([], [])
    assert twin.enc.layers[1].num_batches_tracked.item() == 2
    _check(twin, x, expected)


def test_twin_from_files_matches_pytorch(tmp_path):
    torch, original, MlxNet, x, expected = _twins()
    from safetensors.torch import save_file
    save_file(original.state_dict(), tmp_path / "net.safetensors")
    torch.save(original.state_dict(), tmp_path / "net.pt")
    for path in ("net.safetensors", "net.pt"):
        twin = MlxNet()
        load_torch_state_dict(twin, tmp_path / path)
        _check(twin, x, expected)


def test_bfloat16_tensors_load():
    torch = pytest.importorskip("torch")
    w = torch.randn(1, 4, 1, 1, 1).to(torch.bfloat16)
    model = Small()
    load_torch_state_dict(model, {"head.weight": w}, strict=False)
    np.testing.assert_array_equal(np.array(model.head.weight), w.float().numpy())


def test_save_then_torch_load_round_trip(tmp_path):
    torch, original, MlxNet, x, expected = _twins()
    from safetensors.torch import load_file
    twin = MlxNet()
    load_torch_state_dict(twin, original.state_dict())
    save_torch_state_dict(twin, tmp_path / "back.safetensors")
    state = load_file(tmp_path / "back.safetensors")
    assert state["enc.1.num_batches_tracked"].dtype == torch.int64
    fresh = type(original)()
    result = fresh.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in original.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_pt_file_without_torch_says_what_to_do(tmp_path, monkeypatch):
    path = tmp_path / "w.pt"
    path.write_bytes(b"not read")
    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # `import torch` now fails
    with pytest.raises(ImportError, match=r"needs PyTorch .* save the state_dict as \.safetensors"):
        load_torch_state_dict(Small(), path)
    with pytest.raises(ValueError, match=r"must end in \.safetensors, \.pt, \.pth or \.bin"):
        (tmp_path / "w.npz").write_bytes(b"")
        load_torch_state_dict(Small(), tmp_path / "w.npz")
