"""Data for the brain-segmentation example: one labelled MRI, cropped and split.

The default volume is the MNI152 2009 template that ships inside nilearn's
wheel (no download): a skull-stripped T1 image with grey- and white-matter
probability maps and a brain mask.  Four classes are derived from them:

* background: outside the brain mask;
* white matter: inside the mask, WM probability >= 0.5 and > GM probability;
* grey matter: inside the mask, GM probability >= 0.5 and >= WM probability;
* CSF: the rest of the mask, where neither tissue dominates (ventricles,
  sulci, the brain's rim).

A user volume (``--image``/``--label``) works the same way: its label values
are numbered 0..K-1 in sorted order, 0 (or the smallest) being background.
``load_user`` checks the two files before anything is trained and raises
``InputError``, whose one-line message names the option at fault.

Validation is a held-out slab of axial slices (along the third voxel axis,
inferior-superior in MNI space).  A left/right split would leak, since the
template is symmetric: each validation voxel would have its mirror image
in the training set.  Training patches are drawn only from the two
sub-volumes below and above the slab (see ``augment.py``).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

TEMPLATE_CLASSES = ("background", "CSF", "grey matter", "white matter")
MAX_CLASSES = 16


class InputError(ValueError):
    """A user file the example cannot use; the message is one line naming the option."""


@dataclass
class Volume:
    """One labelled volume, cropped to its foreground.

    Attributes:
        image: float32 (X, Y, Z) intensities scaled to [0, 1], cropped.
        labels: uint8 (X, Y, Z) class indices, cropped.
        crop: the slices that cut ``image`` out of the full grid.
        nifti: the input image, whose grid, affine and header outputs reuse.
        class_names: one name per class index.
        slab: (z0, z1), the held-out validation slices in cropped coordinates.
    """

    image: np.ndarray
    labels: np.ndarray
    crop: tuple[slice, slice, slice]
    nifti: nib.Nifti1Image
    class_names: tuple[str, ...]
    slab: tuple[int, int]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along each axis in mm (the NIfTI header's zooms)."""
        return tuple(float(z) for z in self.nifti.header.get_zooms()[:3])

    def uncrop(self, array: np.ndarray) -> np.ndarray:
        """Place a cropped array back into the full grid, zeros elsewhere."""
        full = np.zeros(self.nifti.shape[:3], dtype=array.dtype)
        full[self.crop] = array
        return full


def template_labels(mask: np.ndarray, gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """Background/CSF/GM/WM (0..3) from a brain mask and tissue probabilities."""
    brain = mask > 0.5
    labels = np.zeros(mask.shape, np.uint8)
    labels[brain] = 1
    labels[brain & (gm >= 0.5) & (gm >= wm)] = 2
    labels[brain & (wm >= 0.5) & (wm > gm)] = 3
    return labels


def scale01(data: np.ndarray) -> np.ndarray:
    # Robust max: a few bright voxels (vessels, artefacts) must not set the scale.
    data = data.astype(np.float32)
    lo, hi = np.percentile(data, [0.5, 99.5])
    if hi <= lo:
        raise InputError(f"--image: the image has no contrast (its 0.5th and 99.5th percentiles are both "
                         f"{lo:g}); nothing to segment")
    return np.clip((data - lo) / (hi - lo), 0.0, None)


def _prepare(image, labels, nifti, class_names, margin, val_fraction) -> Volume:
    fg = np.argwhere(labels > 0)
    if fg.size == 0:
        raise ValueError("the label map has no foreground (every voxel is background)")
    lo = np.maximum(fg.min(0) - margin, 0)
    hi = np.minimum(fg.max(0) + 1 + margin, labels.shape)
    crop = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    image, labels = image[crop], labels[crop]

    # The slab is centred on the foreground's z extent, so it cuts through
    # the middle of the organ (for the template: the lateral ventricles).
    z = np.argwhere(labels.any(axis=(0, 1)))[:, 0]
    depth = max(1, round(val_fraction * (z[-1] + 1 - z[0])))
    z0 = int((z[0] + z[-1] + 1 - depth) // 2)
    return Volume(image, labels, crop, nifti, tuple(class_names), (z0, z0 + depth))


def load_template(resolution: int = 2, margin: int = 4, val_fraction: float = 0.2) -> Volume:
    """The MNI152 2009 template at 1 or 2 mm with its four tissue classes.

    Args:
        resolution: voxel size in mm, 1 (197x233x189) or 2 (99x117x95).
        margin: voxels of background kept around the brain when cropping.
        val_fraction: the validation slab's share of the brain's z extent.
    """
    if resolution not in (1, 2):
        raise ValueError(f"`resolution` must be 1 or 2 (mm), got {resolution!r}")
    from nilearn import datasets  # imported here: only the default data needs nilearn

    t1 = datasets.load_mni152_template(resolution=resolution)
    gm = datasets.load_mni152_gm_template(resolution=resolution).get_fdata()
    wm = datasets.load_mni152_wm_template(resolution=resolution).get_fdata()
    mask = datasets.load_mni152_brain_mask(resolution=resolution).get_fdata()
    labels = template_labels(mask, gm, wm)
    return _prepare(scale01(t1.get_fdata()), labels, t1, TEMPLATE_CLASSES, margin, val_fraction)


def read_nifti(path: str, option: str) -> tuple[nib.Nifti1Image, np.ndarray]:
    """The image and its voxels as float64, or an InputError naming ``option``."""
    if not os.path.exists(path):
        raise InputError(f"{option}: no such file: {path!r}")
    if os.path.isdir(path):
        raise InputError(f"{option}: {path!r} is a folder, not a NIfTI file")
    try:
        nifti = nib.load(path)
        if not isinstance(nifti, nib.Nifti1Pair):  # NIfTI-1 and -2, single file or .hdr/.img pair
            raise InputError(f"{option}: {path!r} is not a NIfTI file (nibabel reads it as {type(nifti).__name__})")
        data = np.asarray(nifti.get_fdata())
    # What nibabel raises for files it cannot place (ImageFileError), bad
    # headers (ValueError), truncated data (OSError, EOFError) and broken
    # gzip streams (zlib.error).
    except (ImageFileError, ValueError, OSError, EOFError, zlib.error) as e:
        if isinstance(e, InputError):
            raise
        reason = " ".join(str(e).split())
        raise InputError(f"{option}: cannot read {path!r} as NIfTI ({reason})") from None
    return nifti, data


def _count(mask: np.ndarray) -> str:
    return f"{np.count_nonzero(mask)} of {mask.size} voxels"


def read_image(path: str, option: str = "--image") -> tuple[nib.Nifti1Image, np.ndarray]:
    """A 3-D NIfTI image (a 4-D one with a single volume is fine) and its voxels as float64.

    Raises:
        InputError: the file is missing or not NIfTI, the image is not 3-D,
            holds NaN or infinite values, or has a voxel size that is not
            a positive number.
    """
    nifti, image = read_nifti(path, option)
    if image.ndim == 4 and image.shape[3] == 1:
        image = image[..., 0]
    if image.ndim != 3:
        raise InputError(f"{option}: must be a 3-D volume, got shape {image.shape} from {path!r}")
    bad = ~np.isfinite(image)
    if bad.any():
        raise InputError(f"{option}: {_count(bad)} are NaN or infinite; replace them (e.g. with 0) first")
    zooms = np.asarray(nifti.header.get_zooms()[:3], dtype=float)
    if not (np.isfinite(zooms).all() and (zooms > 0).all()):
        raise InputError(f"{option}: its voxel sizes must be positive numbers, the header gives "
                         f"{tuple(float(z) for z in zooms)}")
    return nifti, image


def load_user(image_path: str, label_path: str, margin: int = 4, val_fraction: float = 0.2) -> Volume:
    """A user's NIfTI image and integer label map on the same grid.

    Raises:
        InputError: either file is missing or not NIfTI; the image is not
            3-D, has fewer than 2 slices along its third axis, holds NaN or
            infinite values, or is constant; the label map is on another
            grid (shape or affine), holds values that are not finite
            non-negative integers, or has fewer than 2 or more than
            ``MAX_CLASSES`` distinct labels.
    """
    nifti, image = read_image(image_path)
    label_img, raw = read_nifti(label_path, "--label")
    # The validation slab takes at least one slice along the third axis;
    # training needs another (a 1-voxel first or second axis is fine).
    if image.shape[2] < 2:
        raise InputError(f"--image: needs at least 2 slices along its third axis (one held out for validation, "
                         f"one to train on), got shape {image.shape}")
    if raw.shape[:3] != image.shape or raw.size != image.size:
        raise InputError(f"--label: shape {raw.shape} differs from --image's {image.shape}; "
                         f"resample the labels onto the image's grid first")
    if not np.allclose(label_img.affine, nifti.affine, atol=1e-3):
        gap = np.abs(label_img.affine - nifti.affine).max()
        raise InputError(f"--label: its affine differs from --image's (by up to {gap:.3g}); "
                         f"resample the labels onto the image's grid first")
    raw = raw.reshape(image.shape)
    bad = ~np.isfinite(raw)
    if bad.any():
        raise InputError(f"--label: {_count(bad)} are NaN or infinite; labels must be integers >= 0")
    fractional = raw != np.round(raw)
    if fractional.any():
        raise InputError(f"--label: labels must be integers >= 0, but {_count(fractional)} are not "
                         f"(e.g. {raw[fractional][0]:g}); is this a probability map?")
    if raw.min() < 0:
        raise InputError(f"--label: labels must be integers >= 0 (0 = background), found {raw.min():g}")
    values, labels = np.unique(raw, return_inverse=True)
    if not 2 <= len(values) <= MAX_CLASSES:
        shown = ", ".join(str(int(v)) for v in values[:10]) + (", ..." if len(values) > 10 else "")
        raise InputError(f"--label: needs 2 to {MAX_CLASSES} distinct labels, found {len(values)} ({shown})")
    names = ["background"] + [f"label {int(v)}" for v in values[1:]]
    return _prepare(scale01(image), labels.reshape(image.shape).astype(np.uint8), nifti, names, margin, val_fraction)
