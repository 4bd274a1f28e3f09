"""The brain-segmentation example's modules, loaded for its tests, and a small synthetic subject.

The app's modules import each other as top-level modules, as they do when
main.py and predict.py run as scripts, so the app's folder goes on
``sys.path``; the two scripts are loaded under unique module names.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "segment_brain"
sys.path.insert(0, str(APP))


def _load(name: str, filename: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, APP / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


main_app = _load("segment_brain_main", "main.py")
predict_app = _load("segment_brain_predict", "predict.py")

TINY = ["--patch", "16", "--batch", "1", "--epochs", "2", "--steps", "2", "--channels", "4,8", "--val-copies", "1"]
SHAPE = (40, 36, 44)
AFFINE = np.array([[1.2, 0.1, 0, -30], [-0.1, 1.2, 0, -40], [0, 0, 2.5, 10], [0, 0, 0, 1]])


def synthetic_subject(folder: Path, shape=SHAPE, affine=AFFINE) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Nested ellipsoids on an oblique, anisotropic grid (so the affine is not trivial).

    Writes ``t1.nii.gz`` and ``seg.nii.gz`` in ``folder``; returns the affine and the shape.
    """
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    r = np.sqrt(((grid / np.array([0.8, 0.7, 0.9])[:, None, None, None]) ** 2).sum(0))
    labels = np.select([r < 0.35, r < 0.6, r < 0.85], [3, 2, 1], 0).astype(np.int16)
    image = np.choose(labels, [0.0, 300.0, 600.0, 800.0]).astype(np.float32)
    header = nib.Nifti1Header()
    header["descrip"] = b"synthetic test subject"
    nib.save(nib.Nifti1Image(image, affine, header), folder / "t1.nii.gz")
    nib.save(nib.Nifti1Image(labels, affine), folder / "seg.nii.gz")
    return affine, shape


def subject_args(folder: Path) -> list[str]:
    return ["--image", str(folder / "t1.nii.gz"), "--label", str(folder / "seg.nii.gz")]


def fails_with(app, argv: list[str], message: str, capsys) -> str:
    """Run ``app.main(argv)``: it must end with status 2 and one line on stderr, ``<prog>: error: ...``
    holding ``message``; returns that line."""
    with pytest.raises(SystemExit) as exit_info:
        app.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"{app.build_parser().prog}: error: "), err
    assert message in err, err
    return err
