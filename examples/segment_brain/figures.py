"""The two PNGs of the brain-segmentation example."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

# Background transparent; CSF blue, GM orange, WM yellow-green, then more.
_COLOURS = ["#00000000", "#1f77b4", "#ff7f0e", "#bcbd22", "#d62728", "#9467bd", "#8c564b",
            "#e377c2", "#7f7f7f", "#17becf", "#2ca02c", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5"]


def _views(volume: np.ndarray, z: int) -> list[np.ndarray]:
    # Arrays are (X, Y, Z) in RAS-like voxel order; transpose and flip so the
    # anterior/superior side is up, as radiology viewers draw them.
    x, y = volume.shape[0] // 2, volume.shape[1] // 2
    return [np.flipud(volume[:, :, z].T), np.flipud(volume[:, y, :].T), np.flipud(volume[x, :, :].T)]


def slices(image, truth, prediction, slab, names, path) -> None:
    """Axial (in the validation slab), coronal and sagittal middle slices.

    Columns: the corrupted input, the ground truth over it, the prediction
    over it.  Coronal and sagittal views mark the held-out slab with lines.
    """
    k = len(names)
    cmap = ListedColormap(_COLOURS[:k])
    z = (slab[0] + slab[1]) // 2
    images, truths, preds = _views(image, z), _views(truth, z), _views(prediction, z)
    fig, axes = plt.subplots(3, 3, figsize=(9, 9.5))
    for row, view in enumerate(("axial (validation slab)", "coronal", "sagittal")):
        lo, hi = np.percentile(images[row], [1, 99])
        for col, (title, overlay) in enumerate((("corrupted input", None), ("ground truth", truths[row]),
                                                ("U-Net prediction", preds[row]))):
            ax = axes[row, col]
            ax.imshow(images[row], cmap="gray", vmin=lo, vmax=hi)
            if overlay is not None:
                ax.imshow(np.ma.masked_equal(overlay, 0), cmap=cmap, vmin=-0.5, vmax=k - 0.5,
                          alpha=0.55, interpolation="nearest")
            if row > 0:
                # Flipped vertically above, so slice z sits at row (Z - 1 - z).
                n = images[row].shape[0]
                for edge in (slab[0] - 0.5, slab[1] - 0.5):
                    ax.axhline(n - 1 - edge, color="white", lw=0.8, ls="--")
            ax.set_title(f"{view}\n{title}" if col == 0 else title, fontsize=9)
            ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=_COLOURS[c]) for c in range(1, k)]
    fig.legend(handles, names[1:], loc="lower center", ncol=min(k - 1, 6), frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def dice_curves(history, baseline, names, path) -> None:
    """Validation Dice per epoch per class (solid) against the baseline (dashed)."""
    epochs = [h["epoch"] for h in history]
    dice = np.array([h["dice"] for h in history])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for c in range(1, len(names)):
        line, = ax.plot(epochs, dice[:, c], marker="o", ms=3, color=_COLOURS[c], label=f"U-Net {names[c]}")
        ax.axhline(baseline[c], color=line.get_color(), ls="--", lw=1)
    ax.plot(epochs, dice[:, 1:].mean(1), color="black", marker="o", ms=3, label="U-Net mean")
    ax.axhline(np.mean(baseline[1:]), color="black", ls="--", lw=1, label="threshold baseline (dashed)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("Dice on the held-out slab")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
