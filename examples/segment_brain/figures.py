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


def slices(image, truth, prediction, slab, names, path, spacing=(1.0, 1.0, 1.0),
           input_title: str = "corrupted input") -> None:
    """Axial (in the validation slab, or the middle), coronal and sagittal middle slices.

    Columns: the input, the ground truth over it (left out when ``truth`` is
    None), the prediction over it.  With a ``slab`` (z0, z1), the axial view
    cuts through it and the coronal and sagittal views mark it with lines.
    ``spacing`` (voxel size per axis) sets each view's aspect ratio.
    """
    k = len(names)
    cmap = ListedColormap(_COLOURS[:k])
    z = (slab[0] + slab[1]) // 2 if slab else image.shape[2] // 2
    columns = [(input_title, None)]
    if truth is not None:
        columns.append(("ground truth", _views(truth, z)))
    columns.append(("U-Net prediction", _views(prediction, z)))
    images = _views(image, z)
    sx, sy, sz = spacing
    aspects = (sy / sx, sz / sx, sz / sy)  # rows over columns: (Y, X), (Z, X), (Z, Y)
    fig, axes = plt.subplots(3, len(columns), figsize=(3 * len(columns), 9.5), squeeze=False)
    for row, view in enumerate(("axial (validation slab)" if slab else "axial", "coronal", "sagittal")):
        lo, hi = np.percentile(images[row], [1, 99])
        for col, (title, overlays) in enumerate(columns):
            ax = axes[row, col]
            ax.imshow(images[row], cmap="gray", vmin=lo, vmax=hi, aspect=aspects[row])
            if overlays is not None:
                ax.imshow(np.ma.masked_equal(overlays[row], 0), cmap=cmap, vmin=-0.5, vmax=k - 0.5,
                          alpha=0.55, interpolation="nearest", aspect=aspects[row])
            if row > 0 and slab:
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
    """Validation Dice per epoch per foreground class (solid) against the baseline (dashed).

    ``history[i]["dice"]`` and ``baseline`` hold the foreground classes only (``names[1:]``).
    """
    epochs = [h["epoch"] for h in history]
    dice = np.array([h["dice"] for h in history])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for c in range(1, len(names)):
        line, = ax.plot(epochs, dice[:, c - 1], marker="o", ms=3, color=_COLOURS[c], label=f"U-Net {names[c]}")
        ax.axhline(baseline[c - 1], color=line.get_color(), ls="--", lw=1)
    ax.plot(epochs, dice.mean(1), color="black", marker="o", ms=3, label="U-Net mean")
    ax.axhline(np.mean(baseline), color="black", ls="--", lw=1, label="threshold baseline (dashed)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("Dice on the held-out slab")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
