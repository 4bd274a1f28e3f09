"""Port a MONAI network to lucid_mlx, fine-tune it a step, and take it back to MONAI.

MONAI's DynUNet (the nnU-Net architecture) is built in PyTorch and given
weights a trained network would have (norm scales and shifts away from 1
and 0, BatchNorm running statistics warmed up). Its checkpoint, saved the
way training scripts save them (``{"epoch": ..., "state_dict": ...}``),
goes into ``lucid_mlx.models.DynUNet`` with one call. The script then

1. reports the checkpoint against the model without loading it;
2. loads it and compares the two networks' eval-mode outputs;
3. fine-tunes one step with ``mlx.optimizers`` (SGD with momentum) on
   lucid_mlx's DiceCELoss, takes the same step in PyTorch, and compares the
   gradients (named the PyTorch way with ``to_torch_names``) and the
   weights and running statistics after it;
4. saves the fine-tuned weights with ``save_torch_state_dict``, loads them
   strictly into a fresh MONAI DynUNet and compares the outputs again.

DynUNet registers its blocks twice in PyTorch (also inside ``skip_layers``),
so its state_dict holds many tensors under two names; lucid_mlx holds them
once and reads and writes both names.

Run:  python examples/port_monai.py      (about 15 s of CPU time)
Needs: pip install monai==1.6.1 torch==2.13.0 safetensors  (torch pinned: unpinned, it pulls CUDA packages)
"""

from __future__ import annotations

import os
import tempfile

import mlx.core as mx
import mlx.nn as mnn
import mlx.optimizers as optim
import numpy as np

import lucid_mlx
from lucid_mlx import losses, models

try:
    import monai
    import torch
    from safetensors.torch import load_file
except ImportError:
    raise SystemExit("this example needs MONAI, PyTorch and safetensors: "
                     "pip install monai==1.6.1 torch==2.13.0 safetensors")

CONFIG = dict(spatial_dims=3, in_channels=1, out_channels=3, kernel_size=[3, 3, 3, 3], strides=[1, 2, 2, 2],
              upsample_kernel_size=[2, 2, 2], filters=[8, 16, 32, 64], norm_name="batch", res_block=True)
SHAPE = (1, 1, 32, 32, 32)


def trained_looking_monai_net() -> "torch.nn.Module":
    """MONAI's DynUNet with norm parameters and running statistics a trained network would have."""
    torch.manual_seed(0)
    net = monai.networks.nets.DynUNet(**CONFIG)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm3d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
        net.train()
        for _ in range(3):  # train-mode passes move the running statistics
            net(torch.randn(SHAPE))
    return net


def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def main() -> dict[str, float]:
    """Run the tour; return the max absolute differences it printed."""
    original = trained_looking_monai_net()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SHAPE).astype(np.float32)
    labels = rng.integers(0, CONFIG["out_channels"], size=(SHAPE[0], 1) + SHAPE[2:])
    diffs = {}

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = os.path.join(tmp, "dynunet.pt")
        torch.save({"epoch": 100, "state_dict": original.state_dict()}, checkpoint)
        print(f"MONAI DynUNet: {len(original.state_dict())} state_dict entries "
              f"({sum(k.startswith('skip_layers.') for k in original.state_dict())} of them under "
              "skip_layers, second names of the blocks)")

        # 1. The report, without loading: what a strict load would say.
        model = models.DynUNet(**CONFIG)
        report = lucid_mlx.check_torch_state_dict(model, checkpoint)
        print(f"check_torch_state_dict: a strict load would {'succeed' if report.ok else 'fail'}\n{report}")

        # 2. The port: one call.
        keys = lucid_mlx.load_torch_state_dict(model, checkpoint)
        print(f"load_torch_state_dict: missing={keys.missing_keys} unexpected={keys.unexpected_keys}, "
              f"unwrapped {', '.join(keys.unwrapped)}")
        original.eval(), model.eval()
        with torch.no_grad():
            expected = original(torch.from_numpy(x)).numpy()
        diffs["eval_output"] = max_diff(model(mx.array(x)), expected)
        print(f"eval outputs {expected.shape}: max |lucid_mlx - MONAI| = {diffs['eval_output']:.2e}")

        # 3. One fine-tuning step in each library, from the same weights.
        original.train(), model.train()
        t_loss = monai.losses.DiceCELoss(to_onehot_y=True, softmax=True)(
            original(torch.from_numpy(x)), torch.from_numpy(labels))
        t_loss.backward()
        # SGD rather than Adam for the comparison: Adam's first step is lr * sign(grad) for
        # every weight, so a gradient that is rounding noise in both libraries would still
        # move the weight by a full step, in either direction.
        torch.optim.SGD(original.parameters(), lr=0.01, momentum=0.9).step()

        loss_fn = losses.DiceCELoss(to_onehot_y=True, softmax=True)
        loss, grads = mnn.value_and_grad(model, lambda m, xx, yy: loss_fn(m(xx), yy))(
            model, mx.array(x), mx.array(labels))
        optim.SGD(learning_rate=0.01, momentum=0.9).update(model, grads)
        mx.eval(model.parameters())
        named = lucid_mlx.to_torch_names(model, grads)  # {"input_block.conv1.conv.weight": ..., ...}
        diffs["loss"] = abs(loss.item() - t_loss.item())
        # Relative to the largest gradient of the model, not of each parameter: some are zero
        # in exact arithmetic (a 1-channel 1x1x1 convolution before a BatchNorm is
        # scale-invariant) and are rounding noise in both libraries.
        scale = max(float(p.grad.abs().max()) for p in original.parameters())
        diffs["gradients"] = max(max_diff(named[n], p.grad) for n, p in original.named_parameters()) / scale
        after = lucid_mlx.torch_state_dict(model)
        diffs["weights_after_step"] = max(max_diff(after[n], v.float()) for n, v in original.state_dict().items())
        print(f"one SGD step: DiceCE loss {loss.item():.6f} (MONAI {t_loss.item():.6f}); the {len(named)} "
              f"gradients differ by at most {diffs['gradients']:.2e} of the largest gradient; the weights "
              f"and running statistics after the step by at most {diffs['weights_after_step']:.2e}")

        # 4. Back to MONAI: save, load strictly into a fresh network, compare.
        path = os.path.join(tmp, "finetuned.safetensors")
        lucid_mlx.save_torch_state_dict(model, path)
        restored = monai.networks.nets.DynUNet(**CONFIG)
        result = restored.load_state_dict(load_file(path), strict=True)
        restored.eval(), model.eval()
        with torch.no_grad():
            again = restored(torch.from_numpy(x)).numpy()
        diffs["reloaded_output"] = max_diff(model(mx.array(x)), again)
        print(f"saved, reloaded in MONAI ({result}): max |lucid_mlx - MONAI| = {diffs['reloaded_output']:.2e}")
    return diffs


if __name__ == "__main__":
    main()
