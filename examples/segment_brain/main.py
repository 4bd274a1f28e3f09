"""Train a 3-D U-Net, built from lucid_mlx's NCDHW layers, to segment brain tissue.

    python examples/segment_brain/main.py --help

``main`` runs the steps in order: check the options (``parse_args``), load
and check the data (``load_volume``), fix the validation copies and score
the baseline on them (``Validation``), build the model and its optimiser,
then per epoch train (``train_epoch``, one ``train_step`` at a time),
validate and keep the best weights (``checkpoint``), and finally write the
outputs (``save_outputs``).  README.md beside this file describes the data,
the corruptions, the validation design and the measured results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import nibabel as nib
import numpy as np
from mlx.utils import tree_flatten
from tqdm import tqdm

import lucid_mlx
from augment import corrupt, sample_patches, training_regions
from brain_data import MAX_CLASSES, InputError, Volume, load_template, load_user
from metrics import dice_counts, dice_scores
from threshold_baseline import ThresholdBaseline
from unet3d import NORMS, UNet3d

DESCRIPTION = """\
Train a 3-D U-Net (lucid_mlx layers on MLX) to segment a brain MRI into
background, CSF, grey matter and white matter. Each epoch prints the loss and
the Dice per class on a held-out slab of axial slices, next to an intensity-
threshold baseline scored on the same slab.

Data: the MNI152 2009 T1 template that ships with nilearn (no download), or
your own volume with --image and --label. Training patches and validation
volumes are corrupted copies (gamma, bias field, noise); see README.md beside
this script for the design and the measured results.
"""

EPILOG = """\
outputs, written to --out:
  best.safetensors        the best epoch's weights, under PyTorch's names
  prediction.nii.gz       the U-Net's labels (0..K-1) for a corrupted copy of the input,
  input_corrupted.nii.gz  that copy, and
  labels.nii.gz           the ground truth: all three on the input's grid, affine
                          and header (open them over the input in ITK-SNAP or 3D Slicer)
  slices.png              middle axial, coronal and sagittal slices: input, truth, prediction
  dice.png                validation Dice per epoch, U-Net against baseline
  history.json            loss and Dice per epoch, the baseline's Dice, the options,
                          seconds and peak MLX memory (strict JSON)

exit status: 0 when done; 2 for a bad option or input file (one line on stderr,
before anything is trained); 1 if training diverges (a NaN or infinite loss or
weight), in which case nothing non-finite is saved.

a larger setting for an Apple-silicon GPU (memory it needs: README.md):
  python examples/segment_brain/main.py --device gpu --resolution 1 \\
      --patch 64 --batch 4 --channels 16,32,64,128 --epochs 20 --steps 100
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is the one line ``main.py: error: ...`` and exit status 2.

    argparse's own ``error`` prints the usage first, which for this many
    options wraps over several lines and pushes the message out of sight.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="main.py", description=DESCRIPTION, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--image", metavar="PATH",
                      help="a 3-D NIfTI volume (.nii or .nii.gz) to segment instead of the template; needs --label")
    data.add_argument("--label", metavar="PATH",
                      help=f"its label map: integers >= 0 (0 = background, 2 to {MAX_CLASSES} distinct values) "
                           "on the image's grid and affine")
    data.add_argument("--resolution", type=int, default=2, choices=(1, 2),
                      help="template voxel size in mm, ignored with --image (default: %(default)s)")
    data.add_argument("--val-copies", type=int, default=2, metavar="N",
                      help="corrupted copies of the validation slab scored each epoch (default: %(default)s)")
    model = p.add_argument_group("model")
    model.add_argument("--channels", default="4,8,16,32", metavar="C1,C2,...",
                       help="feature channels per U-Net level, finest first; at least 2 levels "
                            "(default: %(default)s)")
    model.add_argument("--norm", default="batch", choices=NORMS, help="normalisation layer (default: %(default)s)")
    training = p.add_argument_group("training")
    training.add_argument("--patch", type=int, default=24, metavar="N",
                          help="edge of the cubic training patches in voxels, a multiple of 2**(levels - 1) "
                               "(default: %(default)s)")
    training.add_argument("--batch", type=int, default=2, metavar="N", help="patches per step (default: %(default)s)")
    training.add_argument("--epochs", type=int, default=10, metavar="N", help="epochs (default: %(default)s)")
    training.add_argument("--steps", type=int, default=80, metavar="N",
                          help="training steps per epoch (default: %(default)s)")
    training.add_argument("--lr", type=float, default=3e-3, metavar="RATE",
                          help="Adam's learning rate at the start, > 0, cosine-decayed to 5%% of it by the "
                               "last step (default: %(default)s)")
    training.add_argument("--seed", type=int, default=0, metavar="N",
                          help="random seed, 0 to 2**32 - 1; the same seed and options give the same "
                               "numbers (default: %(default)s)")
    run = p.add_argument_group("run")
    run.add_argument("--device", default="cpu", choices=("cpu", "gpu"), help="MLX device (default: %(default)s)")
    run.add_argument("--out", default="out/segment_brain", metavar="DIR",
                     help="output folder, created if missing (default: %(default)s)")
    return p


def parse_args(argv=None, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """The options, each checked; a bad one ends the process through ``parser.error``."""
    p = parser or build_parser()
    args = p.parse_args(argv)
    if (args.image is None) != (args.label is None):
        p.error("--image and --label go together")
    try:
        args.channels = tuple(int(c) for c in args.channels.split(","))
    except ValueError:
        p.error(f"--channels must be comma-separated ints, got {args.channels!r}")
    if len(args.channels) < 2:
        p.error(f"--channels needs at least 2 levels (the U-Net pools between levels), got {len(args.channels)}")
    if min(args.channels) < 1:
        p.error(f"--channels must all be >= 1, got {','.join(map(str, args.channels))}")
    multiple = 2 ** (len(args.channels) - 1)
    if args.patch < multiple or args.patch % multiple:
        p.error(f"--patch must be a multiple of {multiple} for {len(args.channels)} U-Net levels, got {args.patch}")
    for name in ("batch", "epochs", "steps", "val_copies"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        p.error(f"--lr must be a finite number > 0, got {args.lr}")
    if not 0 <= args.seed < 2**32:
        p.error(f"--seed must be in 0 to 2**32 - 1, got {args.seed}")
    if args.device == "gpu" and not mx.is_available(mx.gpu):
        p.error("--device gpu: this MLX build has no GPU backend; use --device cpu")
    if not args.out:
        p.error("--out must name a folder, got ''")
    # The nearest existing folder on the way to --out must be a writable folder.
    existing = os.path.abspath(args.out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        p.error(f"--out: {existing!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        p.error(f"--out: the folder {existing!r} is not writable")
    return args


def load_volume(args: argparse.Namespace) -> Volume:
    """The user's volume, or the template; raises InputError for a bad file."""
    return load_user(args.image, args.label) if args.image else load_template(args.resolution)


class Diverged(RuntimeError):
    """The loss or the weights stopped being finite."""


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


def class_weights(volume: Volume, regions: list[tuple[int, int]]) -> mx.array:
    """Cross-entropy weights ~ 1/sqrt(class frequency) in the training region, mean 1.

    Without them the thin CSF class was still never predicted after 600 patches.
    """
    k = len(volume.class_names)
    train_labels = np.concatenate([volume.labels[:, :, a:b].ravel() for a, b in regions])
    freq = np.bincount(train_labels, minlength=k) / train_labels.size
    weights = 1 / np.sqrt(np.maximum(freq, 1e-4))
    return mx.array((weights * k / weights.sum()).astype(np.float32))


def build_optimizer(args: argparse.Namespace) -> optim.Optimizer:
    # Cosine decay to 5% of the start: with a constant rate the BatchNorm
    # running statistics and the validation Dice kept jumping between epochs.
    schedule = optim.cosine_decay(args.lr, args.epochs * args.steps, args.lr * 0.05)
    return optim.Adam(learning_rate=schedule)


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
        self.baseline = dice_scores(sum(
            dice_counts(ThresholdBaseline(im, volume.labels, train_mask, self.k).predict(im[:, :, z0:z1]), truth, self.k)
            for im in self.images))

    def score(self, model: UNet3d) -> np.ndarray:
        """The model's Dice per class, pooled over the copies (eval mode)."""
        model.eval()
        z0, z1 = self.volume.slab
        truth = self.volume.labels[:, :, z0:z1]
        return dice_scores(sum(dice_counts(predict(model, im[:, :, self.window])[:, :, self.inner], truth, self.k)
                               for im in self.images))


def _all_finite(model: nn.Module) -> bool:
    return all(mx.isfinite(v).all().item() for _, v in tree_flatten(model.parameters()))


def train_step(model, step, optimizer, xs: np.ndarray, ys: np.ndarray, weights: mx.array) -> float:
    """One Adam update on one batch of patches; returns the batch's loss."""
    loss, grads = step(model, mx.array(xs), mx.array(ys), weights)
    optimizer.update(model, grads)
    mx.eval(loss, model.state, optimizer.state)
    return loss.item()


def train_epoch(model, step, optimizer, volume, regions, weights, args, rng, bar, epoch) -> float:
    """``args.steps`` steps on fresh corrupted patches; returns the mean loss.

    Raises:
        Diverged: a loss, or a weight after the last step, is NaN or infinite.
    """
    model.train()
    losses = []
    for i in range(1, args.steps + 1):
        xs, ys = sample_patches(corrupt(volume.image, rng), volume.labels, regions, args.patch, args.batch, rng)
        loss = train_step(model, step, optimizer, xs, ys, weights)
        if not math.isfinite(loss):
            raise Diverged(f"the loss is {loss} at epoch {epoch}, step {i}")
        losses.append(loss)
        bar.update()
        bar.set_postfix(loss=f"{loss:.3f}")
    if not _all_finite(model):  # the last update comes after the last loss
        raise Diverged(f"the weights hold NaN or infinite values after epoch {epoch}")
    return float(np.mean(losses))


def checkpoint(model: UNet3d, scores: np.ndarray, best: float, path: str) -> bool:
    """Save the weights if their mean foreground Dice beats ``best``; True if saved."""
    if scores[1:].mean() > best:
        lucid_mlx.save_torch_state_dict(model, path)
        return True
    return False


def dice_line(name: str, scores: np.ndarray, names) -> str:
    cells = "  ".join(f"{n} {s:.3f}" for n, s in zip(names[1:], scores[1:]))
    return f"  {name:<9} {cells}  | mean {scores[1:].mean():.3f}"


def _save_nifti(volume: Volume, data: np.ndarray, path: str) -> None:
    # The input's affine and header, so viewers overlay the files on it; the
    # header's data type and scaling are replaced to fit the new array.
    header = volume.nifti.header.copy()
    header.set_data_dtype(data.dtype)
    header.set_slope_inter(None, None)
    nib.save(nib.Nifti1Image(data, volume.nifti.affine, header), path)


def save_outputs(model: UNet3d, volume: Volume, val: Validation, history: list[dict], args) -> None:
    """The NIfTIs and PNGs of the best weights (already loaded into ``model``)."""
    shown = val.images[0]
    model.eval()
    prediction = predict(model, shown)
    _save_nifti(volume, volume.uncrop(prediction), os.path.join(args.out, "prediction.nii.gz"))
    _save_nifti(volume, volume.uncrop(shown), os.path.join(args.out, "input_corrupted.nii.gz"))
    _save_nifti(volume, volume.uncrop(volume.labels), os.path.join(args.out, "labels.nii.gz"))

    import figures  # matplotlib is imported only once there is something to draw
    names = volume.class_names
    figures.slices(shown, volume.labels, prediction, volume.slab, names, os.path.join(args.out, "slices.png"))
    figures.dice_curves(history, val.baseline, names, os.path.join(args.out, "dice.png"))


def train(args: argparse.Namespace, volume: Volume) -> dict:
    """Train, validate and save; returns the summary it also writes to history.json."""
    start = time.time()
    mx.set_default_device(mx.gpu if args.device == "gpu" else mx.cpu)
    mx.random.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    names = volume.class_names

    val = Validation(volume, args.val_copies, context=args.patch // 2, seed=args.seed)
    print(f"volume {volume.nifti.shape[:3]} cropped to {volume.image.shape}, classes {', '.join(names)}")
    print(f"validation slab z {volume.slab[0]}..{volume.slab[1] - 1}, {args.val_copies} corrupted copies")
    print(dice_line("baseline", val.baseline, names))

    model = UNet3d(1, len(names), args.channels, args.norm)
    optimizer = build_optimizer(args)
    step = nn.value_and_grad(model, loss_fn)
    regions = training_regions(volume.image.shape[2], volume.slab)
    weights = class_weights(volume, regions)

    history, best = [], -1.0
    best_path = os.path.join(args.out, "best.safetensors")
    with tqdm(total=args.epochs * args.steps, desc="training", unit="step", dynamic_ncols=True) as bar:
        for epoch in range(1, args.epochs + 1):
            loss = train_epoch(model, step, optimizer, volume, regions, weights, args, rng, bar, epoch)
            scores = val.score(model)
            history.append({"epoch": epoch, "loss": loss, "dice": scores.tolist()})
            saved = checkpoint(model, scores, best, best_path)
            best = max(best, scores[1:].mean())
            bar.write(f"epoch {epoch}/{args.epochs}  loss {loss:.4f}{'  (best, saved)' if saved else ''}")
            bar.write(dice_line("U-Net", scores, names))
            bar.write(dice_line("baseline", val.baseline, names))

    lucid_mlx.load_torch_state_dict(model, best_path)
    save_outputs(model, volume, val, history, args)
    best_epoch = max(history, key=lambda h: np.mean(h["dice"][1:]))
    summary = {
        "classes": list(names), "baseline_dice": val.baseline.tolist(), "best_epoch": best_epoch["epoch"],
        "unet_dice": best_epoch["dice"], "seconds": time.time() - start,
        "peak_memory_gb": mx.get_peak_memory() / 1e9, "history": history, "args": dict(vars(args)),
    }
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump(summary, f, indent=1, allow_nan=False)  # strict JSON: a NaN here is a bug, not a value
    print(f"best epoch {best_epoch['epoch']}: U-Net mean Dice {np.mean(best_epoch['dice'][1:]):.3f} "
          f"vs baseline {val.baseline[1:].mean():.3f}")
    print(f"{summary['seconds']:.0f} s, peak MLX memory {summary['peak_memory_gb']:.2f} GB; outputs in {args.out}/")
    return summary


def main(argv=None) -> dict:
    """Check the options and the data, then train; see ``--help``."""
    parser = build_parser()
    args = parse_args(argv, parser)
    try:
        volume = load_volume(args)
    except InputError as e:
        parser.error(str(e))
    try:
        return train(args, volume)
    except Diverged as e:
        # Exit status 1, not argparse's 2: the options were valid, the run failed.
        raise SystemExit(f"{parser.prog}: training stopped: {e}; try a smaller --lr "
                         f"(nothing non-finite was saved)") from None


if __name__ == "__main__":
    main()
