"""Train a 3-D U-Net, built from lucid_mlx's NCDHW layers, to segment brain tissue.

Run ``python examples/segment_brain/main.py --help`` for the data, the
corruptions and the validation design; the same text is below in HELP.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import nibabel as nib
import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # sibling modules, run from anywhere

from augment import corrupt, sample_patches, training_regions  # noqa: E402
from brain_data import Volume, load_template, load_user  # noqa: E402
from metrics import dice_counts, dice_scores  # noqa: E402
from threshold_baseline import ThresholdBaseline  # noqa: E402
from unet3d import NORMS, UNet3d  # noqa: E402

import lucid_mlx  # noqa: E402

HELP = """\
Segment brain MRI into background, CSF, grey matter and white matter with a
3-D U-Net written with lucid_mlx (PyTorch-layout NCDHW layers on MLX).

Data (offline): the MNI152 2009 T1 template shipped in nilearn's wheel, at
2 mm by default (--resolution 1 for 1 mm). Its brain mask and grey/white
matter probability maps give four classes: background outside the mask;
WM where P(WM) >= 0.5 and beats P(GM); GM where P(GM) >= 0.5 and is at least
P(WM); CSF for the rest of the mask (ventricles, sulci). Or bring your own
volume: --image T1.nii.gz --label labels.nii.gz (integer labels, same grid).

Why corrupt: on the clean template three intensity thresholds already reach a
mean Dice of about 0.93. So every training patch and every validation volume
is a corrupted copy: a random gamma (0.6-1.6), a smooth multiplicative bias
field (up to about +-35%), Rician noise (sigma 3-12% of the range), then
per-volume percentile normalisation. Training patches also get a random
left/right flip and a small affine jitter (+-8 degrees, scale 0.9-1.1).

The model: a 3-D U-Net of lucid_mlx layers only (Conv3d, BatchNorm3d, ReLU,
MaxPool3d, ConvTranspose3d), 4 levels of 4-8-16-32 channels by default,
trained with mlx.optimizers.Adam (cosine-decayed) on class-weighted
cross-entropy plus soft Dice, with patches centred on brain voxels.

Validation: there is one volume, so a slab of axial slices (20% of the
brain's height, through its middle) is held out; training patches come only
from above and below it (a left/right split would leak: the template is
symmetric). Each epoch prints the loss and the per-class and mean Dice
(background excluded) of the U-Net on fixed corrupted copies of the slab,
next to a threshold baseline on the same copies, its thresholds fitted with
the labels on each copy's own training region.

Outputs (--out): best.safetensors (the best epoch's weights, under PyTorch's
names: loadable into the same network in PyTorch), prediction.nii.gz and
input_corrupted.nii.gz and labels.nii.gz (the input's grid, affine and
header: open them over the input in ITK-SNAP or 3D Slicer), slices.png
(middle axial/coronal/sagittal slices: image, truth, prediction) and
dice.png (Dice per epoch), history.json.

The defaults (800 steps of two 24^3 patches at 2 mm) finish in under 5
minutes on 2 CPU cores. On an Apple-silicon GPU, a larger setting:
  python examples/segment_brain/main.py --device gpu --resolution 1 \\
      --patch 64 --batch 4 --channels 16,32,64,128 --epochs 20 --steps 100
(training with it peaked at 7.3 GB in MLX on the CPU; --batch 2 halves that.)
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", help="a NIfTI volume to segment instead of the MNI152 template")
    p.add_argument("--label", help="its integer label map (same grid); required with --image")
    p.add_argument("--resolution", type=int, default=2, choices=(1, 2), help="template voxel size in mm (default 2)")
    p.add_argument("--device", default="cpu", choices=("cpu", "gpu"), help="MLX device (default cpu)")
    p.add_argument("--patch", type=int, default=24, help="training patch edge in voxels (default 24)")
    p.add_argument("--batch", type=int, default=2, help="patches per step (default 2)")
    p.add_argument("--epochs", type=int, default=10, help="epochs (default 10)")
    p.add_argument("--steps", type=int, default=80, help="training steps per epoch (default 80)")
    p.add_argument("--channels", default="4,8,16,32", help="U-Net channels per level, finest first (default 4,8,16,32)")
    p.add_argument("--norm", default="batch", choices=NORMS, help="normalisation layer (default batch)")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate at the start, cosine-decayed (default 3e-3)")
    p.add_argument("--val-copies", type=int, default=2, help="corrupted copies of the validation slab (default 2)")
    p.add_argument("--out", default="out/segment_brain", help="output directory (default out/segment_brain)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = p.parse_args(argv)
    if (args.image is None) != (args.label is None):
        p.error("--image and --label go together")
    try:
        args.channels = tuple(int(c) for c in args.channels.split(","))
    except ValueError:
        p.error(f"--channels must be comma-separated ints, got {args.channels!r}")
    multiple = 2 ** (len(args.channels) - 1)
    if args.patch < multiple or args.patch % multiple:
        p.error(f"--patch must be a multiple of {multiple} for {len(args.channels)} U-Net levels, got {args.patch}")
    for name in ("batch", "epochs", "steps", "val_copies"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def loss_fn(model: UNet3d, x: mx.array, y: mx.array, weights: mx.array) -> mx.array:
    """Class-weighted cross-entropy plus soft Dice over the foreground classes."""
    logits = model(x)
    k = logits.shape[1]
    onehot = (y[:, None] == mx.arange(k).reshape(1, k, 1, 1, 1)).astype(logits.dtype)
    log_p = logits - mx.logsumexp(logits, axis=1, keepdims=True)
    ce = -(onehot * log_p * weights.reshape(1, k, 1, 1, 1)).sum(axis=1).mean()
    p = mx.exp(log_p)
    axes = (0, 2, 3, 4)
    dice = (2 * (p * onehot).sum(axes) + 1) / (p.sum(axes) + onehot.sum(axes) + 1)
    return ce + 1 - dice[1:].mean()


def predict(model: UNet3d, image: np.ndarray) -> np.ndarray:
    """Class indices for a whole (X, Y, Z) volume in one forward pass."""
    m = model.multiple
    pads = [(0, -s % m) for s in image.shape]
    x = mx.array(np.pad(image, pads, mode="reflect")[None, None])
    labels = mx.argmax(model(x), axis=1)[0]
    return np.array(labels)[tuple(slice(0, s) for s in image.shape)].astype(np.uint8)


class Validation:
    """Fixed corrupted copies of the volume, scored on the held-out slab."""

    def __init__(self, volume: Volume, copies: int, context: int, seed: int):
        rng = np.random.default_rng(seed + 1_000_003)  # apart from the training stream
        self.volume, self.k = volume, len(volume.class_names)
        self.images = [corrupt(volume.image, rng) for _ in range(copies)]
        z0, z1 = volume.slab
        # Image context around the slab lets the U-Net see past its edges;
        # only the slab's own voxels are scored.
        self.window = slice(max(0, z0 - context), min(volume.image.shape[2], z1 + context))
        self.inner = slice(z0 - self.window.start, z1 - self.window.start)
        train_mask = np.ones(volume.image.shape, bool)
        train_mask[:, :, z0:z1] = False
        truth = volume.labels[:, :, z0:z1]
        self.baseline = sum(
            dice_counts(ThresholdBaseline(im, volume.labels, train_mask, self.k).predict(im[:, :, z0:z1]), truth, self.k)
            for im in self.images)

    def unet_counts(self, model: UNet3d) -> np.ndarray:
        z0, z1 = self.volume.slab
        truth = self.volume.labels[:, :, z0:z1]
        return sum(dice_counts(predict(model, im[:, :, self.window])[:, :, self.inner], truth, self.k)
                   for im in self.images)


def dice_line(name: str, scores: np.ndarray, names) -> str:
    cells = "  ".join(f"{n} {s:.3f}" for n, s in zip(names[1:], scores[1:]))
    return f"  {name:<9} {cells}  | mean {scores[1:].mean():.3f}"


def train(args: argparse.Namespace) -> dict:
    """Run the whole example; returns the summary it also writes to history.json."""
    start = time.time()
    if args.device == "gpu" and not mx.is_available(mx.gpu):
        raise SystemExit("--device gpu: this MLX build has no GPU backend; use --device cpu")
    mx.set_default_device(mx.gpu if args.device == "gpu" else mx.cpu)
    mx.random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)

    volume = load_user(args.image, args.label) if args.image else load_template(args.resolution)
    names, k = volume.class_names, len(volume.class_names)
    val = Validation(volume, args.val_copies, context=args.patch // 2, seed=args.seed)
    base = dice_scores(val.baseline)
    print(f"volume {volume.nifti.shape[:3]} cropped to {volume.image.shape}, classes {', '.join(names)}")
    print(f"validation slab z {volume.slab[0]}..{volume.slab[1] - 1}, {args.val_copies} corrupted copies")
    print(dice_line("baseline", base, names))

    model = UNet3d(1, k, args.channels, args.norm)
    # Cosine decay to 5% of the start: with a constant rate the BatchNorm
    # running statistics and the validation Dice kept jumping between epochs.
    schedule = optim.cosine_decay(args.lr, args.epochs * args.steps, args.lr * 0.05)
    optimizer = optim.Adam(learning_rate=schedule)
    step = nn.value_and_grad(model, loss_fn)
    regions = training_regions(volume.image.shape[2], volume.slab)
    # CE weights ~ 1/sqrt(class frequency) in the training region: without
    # them the thin CSF class (~5% of voxels) was still never predicted
    # after 600 patches.
    train_labels = np.concatenate([volume.labels[:, :, a:b].ravel() for a, b in regions])
    freq = np.bincount(train_labels, minlength=k) / train_labels.size
    weights = 1 / np.sqrt(np.maximum(freq, 1e-4))
    weights = mx.array((weights * k / weights.sum()).astype(np.float32))
    history, best = [], -1.0
    best_path = os.path.join(args.out, "best.safetensors")

    bar = tqdm(total=args.epochs * args.steps, desc="training", unit="step", dynamic_ncols=True)
    for epoch in range(1, args.epochs + 1):
        model.train()
        losses = []
        for _ in range(args.steps):
            xs, ys = sample_patches(corrupt(volume.image, rng), volume.labels, regions, args.patch, args.batch, rng)
            loss, grads = step(model, mx.array(xs), mx.array(ys), weights)
            optimizer.update(model, grads)
            mx.eval(loss, model.state, optimizer.state)
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        model.eval()
        scores = dice_scores(val.unet_counts(model))
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "dice": scores.tolist()})
        mark = ""
        if scores[1:].mean() > best:
            best, mark = scores[1:].mean(), "  (best, saved)"
            lucid_mlx.save_torch_state_dict(model, best_path)
        bar.write(f"epoch {epoch}/{args.epochs}  loss {history[-1]['loss']:.4f}{mark}")
        bar.write(dice_line("U-Net", scores, names))
        bar.write(dice_line("baseline", base, names))
    bar.close()

    lucid_mlx.load_torch_state_dict(model, best_path)
    model.eval()
    best_epoch = max(history, key=lambda h: np.mean(h["dice"][1:]))
    shown = val.images[0]
    prediction = predict(model, shown)
    _save_nifti(volume, volume.uncrop(prediction), os.path.join(args.out, "prediction.nii.gz"))
    _save_nifti(volume, volume.uncrop(shown), os.path.join(args.out, "input_corrupted.nii.gz"))
    _save_nifti(volume, volume.uncrop(volume.labels), os.path.join(args.out, "labels.nii.gz"))

    import figures  # matplotlib is imported only once there is something to draw
    figures.slices(shown, volume.labels, prediction, volume.slab, names, os.path.join(args.out, "slices.png"))
    figures.dice_curves(history, base, names, os.path.join(args.out, "dice.png"))

    summary = {
        "classes": list(names), "baseline_dice": base.tolist(), "best_epoch": best_epoch["epoch"],
        "unet_dice": best_epoch["dice"], "seconds": time.time() - start,
        "peak_memory_gb": mx.get_peak_memory() / 1e9, "history": history, "args": {
            key: value for key, value in vars(args).items()},
    }
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"best epoch {best_epoch['epoch']}: U-Net mean Dice {np.mean(best_epoch['dice'][1:]):.3f} "
          f"vs baseline {base[1:].mean():.3f}")
    print(f"{summary['seconds']:.0f} s, peak MLX memory {summary['peak_memory_gb']:.2f} GB; outputs in {args.out}/")
    return summary


def _save_nifti(volume: Volume, data: np.ndarray, path: str) -> None:
    # The input's affine and header, so viewers overlay the files on it; the
    # header's data type and scaling are replaced to fit the new array.
    header = volume.nifti.header.copy()
    header.set_data_dtype(data.dtype)
    header.set_slope_inter(None, None)
    nib.save(nib.Nifti1Image(data, volume.nifti.affine, header), path)


def main(argv=None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
