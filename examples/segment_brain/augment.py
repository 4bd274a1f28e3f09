"""Corruptions and training patches for the brain-segmentation example.

Clean template intensities separate the tissues almost perfectly (README.md
beside this file gives the threshold baseline's Dice on clean data), so the
example trains and validates on corrupted copies, the way real scans differ
from each other:

* gamma: intensities raised to a power in [0.6, 1.6] (contrast changes);
* bias field: a smooth multiplicative field, exp of random low-frequency
  cosines over the whole volume, up to about +-35 % (coil inhomogeneity);
* Rician noise with sigma in [0.03, 0.12] of the intensity range, as in
  magnitude MR images;
* then the volume is rescaled by its own 1st/99th percentiles, as any
  input is at inference time.

Training patches also get a random left/right flip and a small affine
jitter (rotation up to 8 degrees per axis, scale 0.9-1.1).  These two are
training augmentations only: the validation volumes get fresh intensity
corruptions but stay on the original grid, since resampling the whole
volume would move training anatomy into the held-out slab.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def bias_field(shape: tuple[int, int, int], rng: np.random.Generator, strength: float = 0.3) -> np.ndarray:
    """A smooth positive field, 1 on average, varying over the whole volume."""
    # Separable cosines: a sum of products of 1-D terms costs O(X+Y+Z) per
    # term instead of evaluating a 3-D polynomial on every voxel.
    axes = [np.linspace(0.0, np.pi, n, dtype=np.float32) for n in shape]
    log_field = np.zeros(shape, np.float32)
    for _ in range(6):
        fx, fy, fz = rng.integers(0, 3, size=3)
        phase = rng.uniform(0, 2 * np.pi, size=3)
        term = (np.cos(fx * axes[0] + phase[0])[:, None, None]
                * np.cos(fy * axes[1] + phase[1])[None, :, None]
                * np.cos(fz * axes[2] + phase[2])[None, None, :])
        log_field += rng.normal(0.0, strength / 2) * term
    return np.exp(log_field)


def normalise(image: np.ndarray) -> np.ndarray:
    """Rescale so the 1st/99th percentiles land on 0/1: the network's input scale."""
    lo, hi = np.percentile(image, [1, 99])
    return ((image - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def corrupt(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A corrupted, renormalised copy of a clean [0, 1] volume."""
    gamma = np.exp(rng.uniform(np.log(0.6), np.log(1.6)))
    out = np.power(image, gamma, dtype=np.float32)
    out *= bias_field(image.shape, rng)
    sigma = rng.uniform(0.03, 0.12)
    real = out + rng.normal(0.0, sigma, image.shape).astype(np.float32)
    imag = rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return normalise(np.sqrt(real * real + imag * imag))


def training_regions(volume_z: int, slab: tuple[int, int]) -> list[tuple[int, int]]:
    """The z ranges patches may come from: everything but the validation slab."""
    return [(a, b) for a, b in ((0, slab[0]), (slab[1], volume_z)) if b > a]


def _jitter(rng: np.random.Generator) -> np.ndarray:
    angles = np.deg2rad(rng.uniform(-8, 8, size=3))
    matrix = np.eye(3)
    for axis, angle in enumerate(angles):
        i, j = [a for a in range(3) if a != axis]
        rot = np.eye(3)
        rot[i, i] = rot[j, j] = np.cos(angle)
        rot[i, j], rot[j, i] = -np.sin(angle), np.sin(angle)
        matrix = matrix @ rot
    return matrix * rng.uniform(0.9, 1.1)


def sample_patches(image: np.ndarray, labels: np.ndarray, regions: list[tuple[int, int]],
                   patch: int, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random jittered, flipped patches from the training regions only.

    Patches are centred on foreground voxels.  Each region is cut out first
    and resampled with mirror boundaries, so a
    patch near the slab reflects training anatomy instead of reading the
    held-out slices; that is also what lets a patch be taller than a region.

    Returns:
        ``x`` float32 (batch, 1, P, P, P) and ``y`` int32 (batch, P, P, P).
    """
    sizes = np.array([b - a for a, b in regions], dtype=float)
    xs = np.empty((batch, 1, patch, patch, patch), np.float32)
    ys = np.empty((batch, patch, patch, patch), np.int32)
    for n in range(batch):
        z0, z1 = regions[rng.choice(len(regions), p=sizes / sizes.sum())]
        img, lab = image[:, :, z0:z1], labels[:, :, z0:z1]
        # Centred on a random foreground voxel: uniform centres gave many
        # all-background patches, which teach nothing and bias the Dice term.
        foreground = np.flatnonzero(lab)
        if foreground.size:
            centre = np.array(np.unravel_index(rng.choice(foreground), lab.shape), float)
        else:
            centre = rng.uniform(0, img.shape) - 0.5
        matrix = _jitter(rng)
        # Output voxel o maps to input matrix @ (o - patch centre) + centre.
        offset = centre - matrix @ np.full(3, (patch - 1) / 2)
        # Nearest-neighbour for the image too: every patch voxel is one source
        # voxel's intensity and label.  Linear interpolation paired blended
        # intensities at tissue edges with unblended labels, and averaged the
        # noise down below the validation volumes' (the experiments: README.md).
        xs[n, 0] = ndimage.affine_transform(img, matrix, offset, (patch,) * 3, order=0, mode="mirror")
        ys[n] = ndimage.affine_transform(lab, matrix, offset, (patch,) * 3, order=0, mode="mirror")
        if rng.random() < 0.5:
            xs[n], ys[n] = xs[n, :, ::-1], ys[n, ::-1]
    return xs, ys
