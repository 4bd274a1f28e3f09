"""Port a PyTorch 3-D U-Net to lucid_mlx and back.

The PyTorch network below and the brain-segmentation example's U-Net
(``segment_brain/unet3d.py``) are written with the same
attribute names, so the state_dict maps one to one: no transposes, no
renaming beyond what ``load_torch_state_dict`` does for ``nn.Sequential``.
The script

1. builds the PyTorch U-Net (BatchNorm3d, so running statistics travel too)
   and runs it in train mode once so those statistics are not the defaults;
2. loads its state_dict into the lucid_mlx twin three ways: the dict
   itself, a ``torch.save`` file and a ``.safetensors`` file (the last one
   needs no torch at all on the MLX side);
3. compares the two networks' eval-mode outputs on the same input;
4. saves the MLX model with ``save_torch_state_dict`` and loads it back
   into a fresh PyTorch model.

Needs torch: ``pip install torch==2.13.0 safetensors`` (pinned: an unpinned torch on Linux pulls CUDA packages).
"""

from __future__ import annotations

import os
import tempfile

import mlx.core as mx
import numpy as np

import lucid_mlx
from segment_brain.unet3d import UNet3d  # Python puts examples/, this script's folder, on the path

try:
    import torch
    from safetensors.torch import load_file, save_file
except ImportError:
    raise SystemExit("this example needs PyTorch and safetensors: pip install torch==2.13.0 safetensors")

tnn = torch.nn


def torch_double_conv(c_in: int, c_out: int) -> tnn.Sequential:
    return tnn.Sequential(
        tnn.Conv3d(c_in, c_out, 3, padding=1, bias=False), tnn.BatchNorm3d(c_out), tnn.ReLU(),
        tnn.Conv3d(c_out, c_out, 3, padding=1, bias=False), tnn.BatchNorm3d(c_out), tnn.ReLU(),
    )


class TorchUNet3d(tnn.Module):
    """The PyTorch original: same layers, same attribute names as UNet3d."""

    def __init__(self, in_channels=1, num_classes=4, channels=(8, 16, 32)):
        super().__init__()
        self.encoders = tnn.ModuleList(
            torch_double_conv(a, b) for a, b in zip((in_channels,) + channels[:-1], channels))
        self.pool = tnn.MaxPool3d(2)
        rev = channels[::-1]
        self.ups = tnn.ModuleList(tnn.ConvTranspose3d(a, b, 2, stride=2) for a, b in zip(rev, rev[1:]))
        self.decoders = tnn.ModuleList(torch_double_conv(2 * c, c) for c in rev[1:])
        self.head = tnn.Conv3d(channels[0], num_classes, 1)

    def forward(self, x):
        skips = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x if i == 0 else self.pool(x))
            skips.append(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips[:-1])):
            x = decoder(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def main() -> None:
    torch.manual_seed(0)
    original = TorchUNet3d()
    with torch.no_grad():  # train-mode passes move BatchNorm's running statistics
        for _ in range(3):
            original(torch.randn(2, 1, 16, 16, 16))
    original.eval()
    state = original.state_dict()
    print(f"PyTorch U-Net: {len(state)} state_dict entries, e.g. "
          f"{', '.join(list(state)[:3])}, ..., {list(state)[-1]}")

    x = np.random.default_rng(0).standard_normal((1, 1, 24, 32, 16)).astype(np.float32)
    with torch.no_grad():
        expected = original(torch.from_numpy(x)).numpy()

    with tempfile.TemporaryDirectory() as tmp:
        pt_path, st_path = os.path.join(tmp, "unet.pt"), os.path.join(tmp, "unet.safetensors")
        torch.save(state, pt_path)
        save_file({k: v.contiguous() for k, v in state.items()}, st_path)

        for label, source in (("state_dict", state), (".pt file", pt_path), (".safetensors", st_path)):
            twin = UNet3d(norm="batch")
            keys = lucid_mlx.load_torch_state_dict(twin, source)
            twin.eval()
            got = np.array(twin(mx.array(x)))
            print(f"loaded from {label:<13} missing={keys.missing_keys} unexpected={keys.unexpected_keys} "
                  f"max |MLX - PyTorch| = {np.abs(got - expected).max():.2e}")

        back_path = os.path.join(tmp, "from_mlx.safetensors")
        lucid_mlx.save_torch_state_dict(twin, back_path)
        restored = TorchUNet3d()
        result = restored.load_state_dict(load_file(back_path))
        restored.eval()
        with torch.no_grad():
            again = restored(torch.from_numpy(x)).numpy()
        print(f"MLX -> .safetensors -> PyTorch: {result}, max difference {np.abs(again - expected).max():.2e}")


if __name__ == "__main__":
    main()
