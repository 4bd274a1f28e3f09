"""Train MONAI's 3-D U-Net (``lucid_mlx.models.UNet``, on MLX) to segment brain tissue.

    python examples/segment_brain/main.py --help
    mlx.launch -n 2 -- python examples/segment_brain/main.py      # two ranks, data parallel

``main`` runs the steps in order: check the options (``parse_args``; with
``--resume`` they come from the checkpoint), load and check the data
(``load_volume``), fix the validation copies and score the baseline on them
(``validation.Validation``), build the network and its optimiser, then per
epoch train (``train_epoch``, one ``train_step`` at a time), validate, keep
the best weights and save the checkpoint, and finally write the outputs
(``save_outputs``).  README.md beside this file describes the data, the
corruptions, the validation design and the measured results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from functools import partial

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import nibabel as nib
import numpy as np
from mlx.utils import tree_flatten, tree_map_with_path
from tqdm import tqdm

import lucid_mlx
from augment import corrupt, sample_patches, training_regions
from brain_data import MAX_CLASSES, InputError, Volume, load_template, load_user
from cli import OneLineParser, check_out_folder
from checkpoint import CheckpointError, StopFlag, StopRequested, catch_sigint
from lucid_mlx import distributed as dist
from loss import ShardedDiceCELoss
from lucid_mlx.nn import SyncBatchNorm3d
from network import NORMS, TTA, build_network, network_args, segment, write_spec
from validation import Validation

import checkpoint

DESCRIPTION = """\
Train MONAI's 3-D U-Net (lucid_mlx.models.UNet on MLX) to segment a brain MRI
into background, CSF, grey matter and white matter, with MONAI's DiceCELoss.
Each epoch prints the loss and the Dice and HD95 per class on a held-out slab
of axial slices (sliding-window inference), next to an intensity-threshold
baseline scored on the same slab.

Data: the MNI152 2009 T1 template that ships with nilearn (no download), or
your own volume with --image and --label. Training patches and validation
volumes are corrupted copies (gamma, bias field, noise); see README.md beside
this script for the design and the measured results.

Several ranks: mlx.launch -n 2 -- python main.py ... (data parallel: the
batch is split across ranks, gradients averaged, BatchNorm synchronised).
"""

EPILOG = """\
outputs, written to --out (by rank 0):
  best.safetensors        the best epoch's weights, under MONAI's parameter names
  best.json               the network's MONAI class and constructor arguments, classes,
                          voxel size and window size: predict.py (or MONAI) rebuilds it
  checkpoint.safetensors  the last state (weights, optimizer, epoch, RNG) for --resume
  prediction.nii.gz       the network's labels (0..K-1) for a corrupted copy of the input,
  input_corrupted.nii.gz  that copy, and
  labels.nii.gz           the ground truth: all three on the input's grid, affine
                          and header (open them over the input in ITK-SNAP or 3D Slicer)
  slices.png              middle axial, coronal and sagittal slices: input, truth, prediction
  dice.png                validation Dice per epoch, network against baseline
  history.json            loss, Dice and HD95 per epoch, the baseline's, the options,
                          seconds and peak MLX memory (strict JSON)

segment a new volume with the saved network:
  python examples/segment_brain/predict.py --weights out/segment_brain/best.safetensors \\
      --image T1.nii.gz

exit status: 0 when done; 2 for a bad option or input file (one line on stderr,
before anything is trained); 1 if training diverges (a NaN or infinite loss or
weight), in which case nothing non-finite is saved; 130 after Ctrl-C, once the
checkpoint is saved (continue with --resume).

a larger setting for an Apple-silicon GPU (not yet run on one):
  python examples/segment_brain/main.py --device gpu --resolution 1 --patch 64 --batch 4 \\
      --channels 16,32,64,128 --roi 96 --epochs 20 --steps 100
"""

# Options that define a run; --resume takes them from the checkpoint.
RUN_OPTIONS = ("image", "label", "resolution", "val_copies", "channels", "strides", "res_units", "norm", "patch",
               "batch", "epochs", "steps", "lr", "seed", "roi", "overlap", "sw_batch", "tta")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="main.py", description=DESCRIPTION, epilog=EPILOG,
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
    model = p.add_argument_group("model (MONAI's UNet)")
    model.add_argument("--channels", default="4,8,16,32", metavar="C1,C2,...",
                       help="feature channels per U-Net level, finest first; at least 2 levels "
                            "(default: %(default)s)")
    model.add_argument("--strides", metavar="S1,S2,...",
                       help="each level's stride, one per level after the first (MONAI's strides); 1 keeps a "
                            "level at the resolution of the one above (default: 1, then 2 for every further "
                            "level)")
    model.add_argument("--res-units", type=int, default=0, metavar="N",
                       help="residual units per level (MONAI's num_res_units); 0 for plain convolutions "
                            "(default: %(default)s)")
    model.add_argument("--norm", default="batch", choices=NORMS,
                       help="normalisation layer; batch becomes SyncBatchNorm3d on several ranks "
                            "(default: %(default)s)")
    training = p.add_argument_group("training")
    training.add_argument("--patch", type=int, default=24, metavar="N",
                          help="edge of the cubic training patches in voxels, a multiple of the product of "
                               "the strides (default: %(default)s)")
    training.add_argument("--batch", type=int, default=2, metavar="N",
                          help="patches per step, split across ranks (default: %(default)s)")
    training.add_argument("--epochs", type=int, default=10, metavar="N", help="epochs (default: %(default)s)")
    training.add_argument("--steps", type=int, default=80, metavar="N",
                          help="training steps per epoch (default: %(default)s)")
    training.add_argument("--lr", type=float, default=3e-3, metavar="RATE",
                          help="Adam's learning rate at the start, > 0, cosine-decayed to 5%% of it by the "
                               "last step (default: %(default)s)")
    training.add_argument("--seed", type=int, default=0, metavar="N",
                          help="random seed, 0 to 2**32 - 1; the same seed and options give the same "
                               "numbers (default: %(default)s)")
    inference = p.add_argument_group("validation (sliding-window inference)")
    inference.add_argument("--roi", type=int, default=48, metavar="N",
                           help="edge of the cubic inference windows in voxels, a multiple of the product of "
                                "the strides (default: %(default)s)")
    inference.add_argument("--overlap", type=float, default=0.25, metavar="F",
                           help="overlap of neighbouring windows, in [0, 1) (default: %(default)s)")
    inference.add_argument("--tta", default="flip", choices=TTA,
                           help="test-time augmentation: flip averages the prediction with that of the volume "
                                "mirrored along its first axis (default: %(default)s)")
    inference.add_argument("--sw-batch", type=int, default=4, metavar="N",
                           help="windows per forward pass (default: %(default)s)")
    run = p.add_argument_group("run")
    run.add_argument("--device", default="cpu", choices=("cpu", "gpu"), help="MLX device (default: %(default)s)")
    run.add_argument("--out", default="out/segment_brain", metavar="DIR",
                     help="output folder, created if missing (default: %(default)s)")
    run.add_argument("--resume", action="store_true",
                     help="continue from --out's checkpoint.safetensors, with the options saved there "
                          "(default: %(default)s)")
    return p


def _check_run_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.image is None) != (args.label is None):
        p.error("--image and --label go together")
    args.channels = _int_list(p, "--channels", args.channels)
    if len(args.channels) < 2:
        p.error(f"--channels needs at least 2 levels (the U-Net pools between levels), got {len(args.channels)}")
    if min(args.channels) < 1:
        p.error(f"--channels must all be >= 1, got {','.join(map(str, args.channels))}")
    if args.strides is None:
        args.strides = (1,) + (2,) * (len(args.channels) - 2)
    args.strides = _int_list(p, "--strides", args.strides)
    if len(args.strides) != len(args.channels) - 1:
        p.error(f"--strides needs {len(args.channels) - 1} values for {len(args.channels)} U-Net levels, "
                f"got {','.join(map(str, args.strides))}")
    if min(args.strides) < 1:
        p.error(f"--strides must all be >= 1, got {','.join(map(str, args.strides))}")
    if args.res_units < 0:
        p.error(f"--res-units must be >= 0, got {args.res_units}")
    factor = math.prod(args.strides)
    for name in ("patch", "roi"):
        size = getattr(args, name)
        if size < factor or size % factor:
            p.error(f"--{name} must be a multiple of {factor} for {len(args.channels)} U-Net levels, got {size} "
                    f"(the product of --strides {','.join(map(str, args.strides))})")
    for name in ("batch", "epochs", "steps", "val_copies", "sw_batch"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        p.error(f"--lr must be a finite number > 0, got {args.lr}")
    if not 0 <= args.overlap < 1:
        p.error(f"--overlap must be in [0, 1), got {args.overlap}")
    if not 0 <= args.seed < 2**32:
        p.error(f"--seed must be in 0 to 2**32 - 1, got {args.seed}")


def _int_list(p: argparse.ArgumentParser, option: str, value) -> tuple[int, ...]:
    """A comma-separated list of ints (or one already parsed, from a checkpoint) as a tuple."""
    if isinstance(value, str):
        try:
            return tuple(int(c) for c in value.split(","))
        except ValueError:
            p.error(f"{option} must be comma-separated ints, got {value!r}")
    return tuple(value)


def _given(argv, p: argparse.ArgumentParser) -> set[str]:
    """The options written on the command line (not left at their defaults)."""
    quiet = build_parser()
    for action in quiet._actions:
        action.default = argparse.SUPPRESS
    return set(vars(quiet.parse_args(argv)))


def _adopt_checkpoint(p, args, argv) -> dict:
    """With --resume: the checkpoint's options replace the defaults; a given option must agree."""
    path = os.path.join(args.out, checkpoint.FILENAME)
    try:
        arrays, state = checkpoint.read(path)
    except CheckpointError as e:
        p.error(f"--resume: {e}")
    saved = state.get("options")
    if not isinstance(saved, dict) or any(name not in saved for name in RUN_OPTIONS):
        p.error(f"--resume: the checkpoint {path!r} does not hold this script's options; start a new --out")
    given = _given(argv, p) & set(RUN_OPTIONS)
    for name in RUN_OPTIONS:  # the options left out are the checkpoint's
        if name not in given:
            setattr(args, name, saved[name])
    _check_run_options(p, args)  # the given values in the checkpoint's form, for the comparison
    for name in sorted(given):
        value, kept = getattr(args, name), saved[name]
        if (list(value) if isinstance(value, tuple) else value) != kept:
            option = "--" + name.replace("_", "-")
            p.error(f"--resume: {option} {value!r} differs from the checkpoint's {kept!r}; "
                    f"leave it out (the run keeps its options) or start a new --out")
    return {"arrays": arrays, "state": state}


def parse_args(argv=None, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """The options, each checked; a bad one ends the process through ``parser.error``.

    With ``--resume`` the run's options are the checkpoint's, and
    ``args.resumed`` holds the checkpoint (its arrays and state).
    """
    p = parser or build_parser()
    args = p.parse_args(argv)
    if args.device == "gpu" and not mx.is_available(mx.gpu):
        p.error("--device gpu: this MLX build has no GPU backend; use --device cpu")
    check_out_folder(p, args.out)
    args.resumed = _adopt_checkpoint(p, args, argv) if args.resume else None
    _check_run_options(p, args)
    if args.batch < dist.size():
        p.error(f"--batch {args.batch} is smaller than the {dist.size()} ranks: each rank needs a patch")
    return args


def load_volume(args: argparse.Namespace) -> Volume:
    """The user's volume, or the template; raises InputError for a bad file."""
    return load_user(args.image, args.label) if args.image else load_template(args.resolution)


class Diverged(RuntimeError):
    """The loss or the weights stopped being finite."""


def class_weights(volume: Volume, regions: list[tuple[int, int]]) -> list[float]:
    """Class weights ~ 1/sqrt(class frequency) in the training region, mean 1.

    DiceCELoss applies them to the cross-entropy and to the Dice term; without
    them the thin CSF class was still never predicted after 600 patches (the
    example's first U-Net).
    """
    k = len(volume.class_names)
    train_labels = np.concatenate([volume.labels[:, :, a:b].ravel() for a, b in regions])
    freq = np.bincount(train_labels, minlength=k) / train_labels.size
    weights = 1 / np.sqrt(np.maximum(freq, 1e-4))
    return (weights * k / weights.sum()).tolist()


def build_optimizer(args: argparse.Namespace) -> optim.Optimizer:
    # Cosine decay to 5% of the start: with a constant rate the BatchNorm
    # running statistics and the validation Dice kept jumping between epochs.
    schedule = optim.cosine_decay(args.lr, args.epochs * args.steps, args.lr * 0.05)
    return optim.Adam(learning_rate=schedule)


def _all_finite(model: nn.Module) -> bool:
    return all(mx.isfinite(v).all().item() for _, v in tree_flatten(model.parameters()))


def make_step(model: nn.Module, optimizer: optim.Optimizer, loss_fn: ShardedDiceCELoss):
    """One Adam update on this rank's patches, compiled; ``step(x, y, dice_scale, ce_scale)`` returns this rank's loss.

    The scales (``ShardedDiceCELoss.scales``, both 1 on one rank) make the
    averaged gradient the global batch's.  ``mx.compile`` fuses the
    element-wise work (norms, activations, the loss): 24% less CPU time per
    step than the plain step (measured, the default network at 24^3), same
    numbers.  Build it once the weights and the optimizer state are final
    (``Run.restore`` replaces the latter).
    """
    value_and_grad = nn.value_and_grad(model, lambda m, x, y, a, b: loss_fn(m(x), y, a, b))
    optimizer.init(model.trainable_parameters())
    state = [model.state, optimizer.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x: mx.array, y: mx.array, dice_scale: mx.array, ce_scale: mx.array) -> mx.array:
        loss, grads = value_and_grad(model, x, y, dice_scale, ce_scale)
        if dist.size() > 1:
            # average_gradients rebuilds the tree with tree_unflatten, which
            # turns MONAI's integer-named children ("model.0...") into lists;
            # put the averages back into the model's own structure, which the
            # optimizer state has.
            averaged = dict(tree_flatten(nn.average_gradients(grads)))
            grads = tree_map_with_path(lambda path, _: averaged[path], grads)
        optimizer.update(model, grads)
        return loss

    return step


def train_step(model, step, optimizer, loss_fn: ShardedDiceCELoss, xs: np.ndarray, ys: np.ndarray) -> mx.array:
    """One step on a global batch of patches; returns this rank's share of the loss times the rank count."""
    dice_scale, ce_scale = loss_fn.scales(ys)
    xs, ys = dist.shard_batch((xs, ys))
    loss = step(mx.array(xs), mx.array(ys[:, None]), mx.array(dice_scale, dtype=mx.float32),
                mx.array(ce_scale, dtype=mx.float32))
    with dist.deadline():
        mx.eval(loss, model.state, optimizer.state)
    return loss


def _agree(loss: float, stop: bool) -> tuple[float, bool]:
    """The mean loss over ranks, and whether any rank was asked to stop (one collective)."""
    if dist.size() == 1:
        return loss, stop
    total = dist.reduce_sum(np.array([loss, float(stop)]))
    return float(total[0]) / dist.size(), bool(total[1] > 0)


class Run:
    """The state training carries from step to step, and what the checkpoint holds of it."""

    def __init__(self, args, model, optimizer, rng: np.random.Generator):
        self.args, self.model, self.optimizer, self.rng = args, model, optimizer, rng
        self.epoch, self.step, self.losses, self.history, self.best = 0, 0, [], [], -1.0
        self.path = os.path.join(args.out, checkpoint.FILENAME)

    def state(self) -> dict:
        options = {name: getattr(self.args, name) for name in RUN_OPTIONS}
        options["channels"], options["strides"] = list(options["channels"]), list(options["strides"])
        return {"epoch": self.epoch, "step": self.step, "losses": self.losses, "history": self.history,
                "best": self.best, "numpy_rng": self.rng.bit_generator.state, "options": options}

    def save(self) -> None:
        dist.run_on_main(checkpoint.save, self.path, self.model, self.optimizer, self.state())

    def restore(self, resumed: dict) -> None:
        state = resumed["state"]
        checkpoint.restore(resumed["arrays"], self.model, self.optimizer)
        self.epoch, self.step, self.losses = state["epoch"], state["step"], state["losses"]
        self.history, self.best = state["history"], state["best"]
        self.rng.bit_generator.state = state["numpy_rng"]


def train_epoch(run: Run, step, loss_fn, volume, regions, args, bar, stop: StopFlag) -> float:
    """The rest of the epoch's ``args.steps`` steps on fresh corrupted patches; returns the mean loss.

    Every rank draws the same global batch (the same seed) and trains on
    its shard of it, so N ranks follow one process's patches.  The loss
    printed is the global batch's (the ranks' shares summed).

    Raises:
        Diverged: a loss, or a weight after the last step, is NaN or infinite.
        StopRequested: Ctrl-C on any rank; the checkpoint holds this step.
    """
    run.model.train()
    epoch = run.epoch + 1
    while run.step < args.steps:
        # MLX's generator cannot be restored from a checkpoint (see checkpoint.py): reseed it per step.
        mx.random.seed((args.seed * 1_000_003 + run.epoch * args.steps + run.step) % 2**32)
        xs, ys = sample_patches(corrupt(volume.image, run.rng), volume.labels, regions, args.patch, args.batch,
                                run.rng)
        loss = train_step(run.model, step, run.optimizer, loss_fn, xs, ys).item()
        loss, stopping = _agree(loss, stop.requested)
        if not math.isfinite(loss):
            raise Diverged(f"the loss is {loss} at epoch {epoch}, step {run.step + 1}")
        run.step += 1
        run.losses.append(loss)
        bar.update()
        bar.set_postfix(loss=f"{loss:.3f}")
        if stopping:
            run.save()
            raise StopRequested(f"epoch {epoch}, step {run.step}")
    if not _all_finite(run.model):  # the last update comes after the last loss
        raise Diverged(f"the weights hold NaN or infinite values after epoch {epoch}")
    return float(np.mean(run.losses))


def _cells(values, names, digits: int, unit: str = "") -> str:
    return "  ".join(f"{n} {'n/a' if np.isnan(v) else f'{v:.{digits}f}{unit}'}" for n, v in zip(names, values))


def score_lines(name: str, dice: np.ndarray, hd95: np.ndarray, names) -> list[str]:
    """Two lines: Dice per foreground class and its mean; HD95 per class in mm."""
    return [f"  {name:<8} Dice   {_cells(dice, names[1:], 3)}  | mean {np.mean(dice):.3f}",
            f"  {'':<8} HD95   {_cells(hd95, names[1:], 2, ' mm')}"]


def _save_nifti(volume: Volume, data: np.ndarray, path: str) -> None:
    # The input's affine and header, so viewers overlay the files on it; the
    # header's data type and scaling are replaced to fit the new array.
    header = volume.nifti.header.copy()
    header.set_data_dtype(data.dtype)
    header.set_slope_inter(None, None)
    nib.save(nib.Nifti1Image(data, volume.nifti.affine, header), path)


def save_outputs(model, volume: Volume, val: Validation, history: list[dict], args) -> None:
    """The NIfTIs and PNGs of the best weights (already loaded into ``model``)."""
    shown = val.images[0]
    model.eval()
    prediction = segment(model, shown, args.roi, args.overlap, args.sw_batch, args.tta)
    _save_nifti(volume, volume.uncrop(prediction), os.path.join(args.out, "prediction.nii.gz"))
    _save_nifti(volume, volume.uncrop(shown), os.path.join(args.out, "input_corrupted.nii.gz"))
    _save_nifti(volume, volume.uncrop(volume.labels), os.path.join(args.out, "labels.nii.gz"))

    import figures  # matplotlib is imported only once there is something to draw
    names = volume.class_names
    figures.slices(shown, volume.labels, prediction, volume.slab, names, os.path.join(args.out, "slices.png"),
                   spacing=volume.spacing)
    figures.dice_curves(history, val.baseline_dice, names, os.path.join(args.out, "dice.png"))


def _json_floats(values) -> list:
    """NaN (an HD95 with an empty class) as null: history.json stays strict JSON."""
    return [None if math.isnan(v) else float(v) for v in values]


def _finish(model, volume, val, run: Run, args, spec: dict, start: float) -> dict:
    """Rank 0's last part: reload the best weights, write the outputs and history.json."""
    best_path = os.path.join(args.out, "best.safetensors")
    lucid_mlx.load_torch_state_dict(model, best_path)
    save_outputs(model, volume, val, run.history, args)
    best = max(run.history, key=lambda h: np.mean(h["dice"]))
    summary = {
        "classes": list(volume.class_names), "network": spec, "ranks": dist.size(),
        "baseline_dice": val.baseline_dice.tolist(), "baseline_hd95_mm": _json_floats(val.baseline_hd95),
        "best_epoch": best["epoch"], "unet_dice": best["dice"], "unet_hd95_mm": best["hd95_mm"],
        "seconds": time.time() - start, "cpu_seconds": time.process_time(),
        "peak_memory_gb": mx.get_peak_memory() / 1e9, "history": run.history,
        "args": {k: v for k, v in vars(args).items() if k != "resumed"},
    }
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump(summary, f, indent=1, allow_nan=False)  # strict JSON: a NaN here is a bug, not a value
    print(f"best epoch {best['epoch']}: U-Net mean Dice {np.mean(best['dice']):.3f} "
          f"vs baseline {val.baseline_dice.mean():.3f}")
    print(f"{summary['seconds']:.0f} s ({summary['cpu_seconds']:.0f} s CPU), peak MLX memory "
          f"{summary['peak_memory_gb']:.2f} GB; outputs in {args.out}/")
    return summary


def train(args: argparse.Namespace, volume: Volume, stop: StopFlag) -> dict:
    """Train, validate and save; returns the summary it also writes to history.json (rank 0; {} elsewhere)."""
    start = time.time()
    mx.set_default_device(mx.gpu if args.device == "gpu" else mx.cpu)
    mx.random.seed(args.seed)
    main = dist.is_main()
    if main:
        os.makedirs(args.out, exist_ok=True)
    names = volume.class_names

    val = Validation(volume, args.val_copies, args.roi, args.patch // 2, args.overlap, args.sw_batch, args.tta,
                     seed=args.seed)
    dist.main_print(f"volume {volume.nifti.shape[:3]} cropped to {volume.image.shape}, voxels "
                    f"{'x'.join(f'{s:g}' for s in volume.spacing)} mm, classes {', '.join(names)}")
    dist.main_print(f"validation slab z {volume.slab[0]}..{volume.slab[1] - 1}, {args.val_copies} corrupted "
                    f"copies" + (f"; {dist.size()} ranks" if dist.size() > 1 else ""))
    for line in score_lines("baseline", val.baseline_dice, val.baseline_hd95, names):
        dist.main_print(line)

    net_args = network_args(args.channels, args.strides, args.norm, args.res_units, len(names))
    model = build_network(net_args)
    if dist.size() > 1:
        model = SyncBatchNorm3d.convert_sync_batchnorm(model)
        dist.broadcast_parameters(model)
    orientation = "".join(nib.orientations.ornt2axcodes(nib.io_orientation(volume.nifti.affine)))
    spec = dist.run_on_main(write_spec, os.path.join(args.out, "best.json"), net_args, names, volume.spacing,
                            args.roi, args.tta, orientation)
    dist.main_print(f"network: monai.networks.nets.UNet(**{json.dumps(net_args)})")
    optimizer = build_optimizer(args)
    regions = training_regions(volume.image.shape[2], volume.slab)
    loss_fn = ShardedDiceCELoss(class_weights(volume, regions))
    run = Run(args, model, optimizer, np.random.default_rng(args.seed))
    if args.resumed:
        run.restore(args.resumed)
        dist.main_print(f"resumed after epoch {run.epoch}, step {run.step}")
    step = make_step(model, optimizer, loss_fn)

    total = args.epochs * args.steps
    with tqdm(total=total, initial=run.epoch * args.steps + run.step, desc="training", unit="step",
              dynamic_ncols=True, disable=not main) as bar:
        while run.epoch < args.epochs:
            steps, t0, c0 = args.steps - run.step, time.perf_counter(), time.process_time()
            loss = train_epoch(run, step, loss_fn, volume, regions, args, bar, stop)
            t1, c1 = time.perf_counter(), time.process_time()
            dice, hd95 = val.score(model)
            run.epoch, run.step, run.losses = run.epoch + 1, 0, []
            # Seconds per step, wall and this process's CPU (user + sys), and the validation's wall seconds.
            run.history.append({"epoch": run.epoch, "loss": loss, "dice": dice.tolist(),
                                "hd95_mm": _json_floats(hd95),
                                # None: resumed after a stop on the epoch's last step, no step timed.
                                "step_seconds": (t1 - t0) / steps if steps else None,
                                "step_cpu_seconds": (c1 - c0) / steps if steps else None,
                                "validation_seconds": time.perf_counter() - t1})
            saved = dice.mean() > run.best
            if saved:
                run.best = float(dice.mean())
                dist.run_on_main(lucid_mlx.save_torch_state_dict, model, os.path.join(args.out, "best.safetensors"))
            run.save()
            if main:
                bar.write(f"epoch {run.epoch}/{args.epochs}  loss {loss:.4f}{'  (best, saved)' if saved else ''}")
                for line in score_lines("U-Net", dice, hd95, names) + score_lines(
                        "baseline", val.baseline_dice, val.baseline_hd95, names):
                    bar.write(line)
            if _agree(0.0, stop.requested)[1] and run.epoch < args.epochs:
                raise StopRequested(f"after epoch {run.epoch}")

    return dist.run_on_main(_finish, model, volume, val, run, args, spec, start) or {}


def main(argv=None) -> dict:
    """Check the options and the data, then train; see ``--help``."""
    # A stalled peer ends the job after 10 minutes instead of hanging it
    # (dist.deadline around each step); an exception on any rank ends it at once.
    dist.init(timeout=600)
    parser = build_parser()
    args = parse_args(argv, parser)
    try:
        volume = load_volume(args)
    except InputError as e:
        parser.error(str(e))
    stop = StopFlag()
    try:
        with catch_sigint(stop, announce=dist.is_main()):
            return train(args, volume, stop)
    except CheckpointError as e:  # the checkpoint does not fit the data or the network
        parser.error(f"--resume: {e}")
    except Diverged as e:
        # Exit status 1, not argparse's 2: the options were valid, the run failed.
        dist.main_print(f"{parser.prog}: training stopped: {e}; try a smaller --lr "
                        f"(nothing non-finite was saved)", file=sys.stderr)
        raise SystemExit(1) from None
    except StopRequested as e:
        dist.main_print(f"{parser.prog}: stopped by Ctrl-C at {e}; the checkpoint "
                        f"{os.path.join(args.out, checkpoint.FILENAME)} is saved: continue with "
                        f"--out {args.out} --resume")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
