"""Segment a T1 volume with the network that main.py trained.

    python examples/segment_brain/predict.py --weights out/segment_brain/best.safetensors --image T1.nii.gz

``predict`` rebuilds the network from the JSON beside the weights (MONAI's
class and constructor arguments, written by main.py) and loads the weights
strictly.  The image is then brought to what the network was trained on:
the training volume's voxel order and directions (``orientation`` in the
JSON; RAS for the template), the training voxel size (linear resampling), cropped to its
foreground's bounding box plus a margin (training volumes were cropped to
the brain), and scaled so its 1st/99th percentiles are 0/1.  Sliding-window
inference gives class probabilities, which go back the same way (uncropped
as background, resampled to the input's grid, the input's voxel order)
before the argmax, so the label map lies on the input's own grid: any size,
voxel size and orientation.
"""

from __future__ import annotations

import argparse
import os
import time

import mlx.core as mx
import nibabel as nib
import numpy as np
from scipy import ndimage

from augment import normalise
from brain_data import InputError, read_image, scale01
from cli import OneLineParser, check_out_folder
from network import SpecError, load_network, read_spec, segment_probabilities, spec_path

DESCRIPTION = """\
Segment a T1 MRI volume (NIfTI, any size, voxel size and orientation) with
the network main.py trained: writes the label map on the input's grid, with
its affine, and a PNG of three slices.
"""

EPILOG = """\
outputs, written to --out (NAME is the image's file name without .nii/.nii.gz):
  NAME_labels.nii.gz  class indices 0..K-1 (0 = background) on the input's grid,
                      affine and header
  NAME_slices.png     middle axial, coronal and sagittal slices: input and labels

exit status: 0 when done; 2 for a bad option or input file (one line on stderr).
"""

# Voxels of background kept around the foreground, as main.py's crop (brain_data.load_template).
MARGIN = 4
# Foreground: above this fraction of the image's robust maximum.
FOREGROUND = 0.1


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="predict.py", description=DESCRIPTION, epilog=EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True, metavar="PATH",
                   help="the network's weights, e.g. out/segment_brain/best.safetensors")
    p.add_argument("--args", metavar="PATH",
                   help="the network's arguments (JSON) (default: beside --weights, e.g. best.json)")
    p.add_argument("--image", required=True, metavar="PATH", help="a 3-D NIfTI T1 volume (.nii or .nii.gz)")
    p.add_argument("--out", default="out/segment_brain/predicted", metavar="DIR",
                   help="output folder, created if missing (default: %(default)s)")
    p.add_argument("--overlap", type=float, default=0.5, metavar="F",
                   help="overlap of neighbouring windows, in [0, 1) (default: %(default)s)")
    p.add_argument("--sw-batch", type=int, default=4, metavar="N",
                   help="windows per forward pass (default: %(default)s)")
    p.add_argument("--device", default="cpu", choices=("cpu", "gpu"), help="MLX device (default: %(default)s)")
    return p


def parse_args(argv=None, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """The options, each checked; a bad one ends the process through ``parser.error``."""
    p = parser or build_parser()
    args = p.parse_args(argv)
    if not 0 <= args.overlap < 1:
        p.error(f"--overlap must be in [0, 1), got {args.overlap}")
    if args.sw_batch < 1:
        p.error(f"--sw-batch must be >= 1, got {args.sw_batch}")
    if args.device == "gpu" and not mx.is_available(mx.gpu):
        p.error("--device gpu: this MLX build has no GPU backend; use --device cpu")
    check_out_folder(p, args.out)
    if not os.path.isfile(args.weights):
        p.error(f"--weights: no such file: {args.weights!r}")
    args.args = args.args or spec_path(args.weights)
    return args


def reorient(nifti: nib.Nifti1Image, data: np.ndarray, codes: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The voxels in the axis order and directions ``codes`` (e.g. ``"RAS"``), their spacing, and the transform."""
    ornt = nib.orientations.ornt_transform(nib.io_orientation(nifti.affine), nib.orientations.axcodes2ornt(codes))
    out = nib.orientations.apply_orientation(data, ornt)
    affine = nifti.affine @ nib.orientations.inv_ornt_aff(ornt, data.shape)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return out, spacing, ornt


def undo_reorient(labels: np.ndarray, ornt: np.ndarray) -> np.ndarray:
    """Undo ``reorient``: the labels in the input's own voxel order."""
    # Input axis i went to axis ornt[i, 0] (flipped if ornt[i, 1] is -1): send it back.
    back = np.empty_like(ornt)
    for axis, (target, flip) in enumerate(ornt):
        back[int(target)] = (axis, flip)
    return nib.orientations.apply_orientation(labels, back)


def foreground_box(image: np.ndarray, margin: int = MARGIN) -> tuple[slice, slice, slice]:
    """The bounding box of the voxels above FOREGROUND (of a [0, 1]-scaled image) plus ``margin``."""
    fg = np.argwhere(image > FOREGROUND)
    if fg.size == 0:
        return tuple(slice(0, n) for n in image.shape)
    lo = np.maximum(fg.min(0) - margin, 0)
    hi = np.minimum(fg.max(0) + 1 + margin, image.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def predict(model, spec: dict, nifti: nib.Nifti1Image, data: np.ndarray, overlap: float,
            sw_batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Class indices on the input's grid, plus the reoriented image, its labels and its voxel size
    (for the figure).

    Raises:
        InputError: the image is constant (nothing to segment).
    """
    oriented, spacing, ornt = reorient(nifti, data, spec["orientation"])
    scaled = scale01(oriented)
    factors = spacing / np.asarray(spec["spacing_mm"], dtype=float)
    resampled = scaled
    if np.abs(factors - 1).max() > 1e-3:
        shape = np.maximum(np.round(np.array(oriented.shape) * factors), 1).astype(int)
        resampled = ndimage.zoom(scaled, shape / np.array(oriented.shape), order=1, mode="nearest")
    box = foreground_box(resampled)
    roi = spec["roi_size"][0]
    probs = np.array(segment_probabilities(model, normalise(resampled[box]), roi, overlap, sw_batch,
                                           spec.get("tta", "none")))
    k = probs.shape[0]
    full = np.zeros((k,) + resampled.shape, np.float32)
    full[0] = 1.0  # outside the crop: background
    full[(slice(None),) + box] = probs
    if resampled.shape != oriented.shape:
        full = np.stack([ndimage.zoom(p, np.array(oriented.shape) / np.array(p.shape), order=1, mode="nearest")
                         for p in full])
    labels_oriented = np.argmax(full, axis=0).astype(np.uint8)
    return undo_reorient(labels_oriented, ornt), oriented, labels_oriented, spacing


def _stem(path: str) -> str:
    name = os.path.basename(path)
    for ext in (".nii.gz", ".nii", ".img", ".hdr"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def main(argv=None) -> dict:
    """Check the options and the files, segment the image, write the outputs; see ``--help``."""
    parser = build_parser()
    args = parse_args(argv, parser)
    start = time.time()
    mx.set_default_device(mx.gpu if args.device == "gpu" else mx.cpu)
    try:
        spec = read_spec(args.args)
        model = load_network(args.weights, spec)
    except SpecError as e:
        parser.error(f"--weights/--args: {e}")
    try:
        nifti, data = read_image(args.image)
        scale01(data)  # a constant image is refused here, before any work
    except InputError as e:
        parser.error(str(e))

    labels, oriented, labels_oriented, spacing = predict(model, spec, nifti, data, args.overlap, args.sw_batch)
    os.makedirs(args.out, exist_ok=True)
    stem = _stem(args.image)
    header = nifti.header.copy()
    header.set_data_dtype(np.uint8)
    header.set_slope_inter(None, None)
    out_nii = os.path.join(args.out, f"{stem}_labels.nii.gz")
    nib.save(nib.Nifti1Image(labels, nifti.affine, header), out_nii)

    import figures  # matplotlib only once there is something to draw
    names = spec["classes"]
    out_png = os.path.join(args.out, f"{stem}_slices.png")
    figures.slices(scale01(oriented), None, labels_oriented, None, names, out_png, spacing=spacing,
                   input_title="input")

    voxel_ml = float(np.prod(nifti.header.get_zooms()[:3])) / 1000
    counts = np.bincount(labels.ravel(), minlength=len(names))
    print(f"image {data.shape}, voxels {'x'.join(f'{z:g}' for z in nifti.header.get_zooms()[:3])} mm; "
          f"network trained at {'x'.join(f'{z:g}' for z in spec['spacing_mm'])} mm")
    print("volumes: " + ", ".join(f"{n} {c * voxel_ml:.1f} mL" for n, c in zip(names[1:], counts[1:])))
    print(f"wrote {out_nii} and {out_png} in {time.time() - start:.1f} s")
    return {"labels": out_nii, "png": out_png, "counts": counts.tolist()}


if __name__ == "__main__":
    main()
