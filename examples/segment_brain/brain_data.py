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

Validation is a held-out slab of axial slices (along the third voxel axis,
inferior-superior in MNI space).  A left/right split would leak, since the
template is symmetric: each validation voxel would have its mirror image
in the training set.  Training patches are drawn only from the two
sub-volumes below and above the slab (see ``augment.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

TEMPLATE_CLASSES = ("background", "CSF", "grey matter", "white matter")


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


def _scale01(data: np.ndarray) -> np.ndarray:
    # Robust max: a few bright voxels (vessels, artefacts) must not set the scale.
    data = data.astype(np.float32)
    lo, hi = np.percentile(data, [0.5, 99.5])
    if hi <= lo:
        raise ValueError(f"the image is constant (percentiles 0.5 and 99.5 both {lo}); nothing to segment")
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
    return _prepare(_scale01(t1.get_fdata()), labels, t1, TEMPLATE_CLASSES, margin, val_fraction)


def load_user(image_path: str, label_path: str, margin: int = 4, val_fraction: float = 0.2) -> Volume:
    """A user's NIfTI image and integer label map on the same grid.

    Raises:
        ValueError: the files differ in shape or affine, the label map is
            not integer-valued, or it has fewer than 2 or more than 16 labels.
    """
    nifti = nib.load(image_path)
    label_img = nib.load(label_path)
    image = np.asarray(nifti.get_fdata())
    raw = np.asarray(label_img.get_fdata())
    if image.ndim == 4 and image.shape[3] == 1:
        image = image[..., 0]
    if image.ndim != 3:
        raise ValueError(f"--image must be a 3-D volume, got shape {image.shape} from {image_path!r}")
    if raw.shape[:3] != image.shape:
        raise ValueError(f"--label shape {raw.shape} differs from --image shape {image.shape}")
    if not np.allclose(label_img.affine, nifti.affine, atol=1e-3):
        raise ValueError(
            f"--label affine differs from --image affine; resample the labels onto the image grid first\n"
            f"image:\n{nifti.affine}\nlabel:\n{label_img.affine}"
        )
    raw = raw.reshape(image.shape)
    if not np.array_equal(raw, np.round(raw)):
        raise ValueError(f"--label must hold integer labels, got non-integer values in {label_path!r}")
    values, labels = np.unique(raw.astype(np.int64), return_inverse=True)
    if not 2 <= len(values) <= 16:
        raise ValueError(f"--label must have between 2 and 16 distinct labels, got {len(values)}: {values[:20]}")
    names = ["background"] + [f"label {v}" for v in values[1:]]
    return _prepare(_scale01(image), labels.reshape(image.shape).astype(np.uint8), nifti, names, margin, val_fraction)
