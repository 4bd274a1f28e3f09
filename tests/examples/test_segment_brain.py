"""The brain-segmentation example (examples/segment_brain/): its pieces, and its whole pipeline in a tiny setting."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")
pytest.importorskip("scipy")

import lucid_mlx  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "segment_brain"
# The app's modules import each other as top-level modules, as they do when
# main.py runs as a script; main.py itself is loaded under a unique name.
sys.path.insert(0, str(APP))
_spec = importlib.util.spec_from_file_location("segment_brain_main", APP / "main.py")
segment_brain = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(segment_brain)

import augment  # noqa: E402
import brain_data  # noqa: E402
from metrics import dice_counts, dice_scores  # noqa: E402
from threshold_baseline import ThresholdBaseline  # noqa: E402

TINY = ["--patch", "16", "--batch", "1", "--epochs", "2", "--steps", "2", "--channels", "4,8", "--val-copies", "1"]


def test_template_labels_rules():
    mask = np.array([0, 1, 1, 1, 1, 1.0])
    gm = np.array([0.9, 0.9, 0.2, 0.5, 0.4, 0.3])
    wm = np.array([0.0, 0.1, 0.7, 0.5, 0.4, 0.6])
    # outside; GM; WM; tie at 0.5 goes to GM; nothing dominant -> CSF; WM.
    assert brain_data.template_labels(mask, gm, wm).tolist() == [0, 2, 3, 2, 1, 3]


def test_dice_counts_by_hand():
    truth = np.array([0, 1, 1, 2, 2, 2])
    pred = np.array([0, 1, 2, 2, 2, 2])
    scores = dice_scores(dice_counts(pred, truth, 4))
    # Class 3 is in neither: Dice 1 by convention, not 0/0.
    np.testing.assert_allclose(scores, [1.0, 2 * 1 / 3, 2 * 3 / 7, 1.0])


def test_baseline_recovers_separable_classes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(20, 20, 20))
    # Class 1 is the brightest: the baseline must find the order itself.
    image = np.choose(labels, [0.1, 0.9, 0.5]) + rng.uniform(-0.05, 0.05, labels.shape)
    mask = np.zeros(labels.shape, bool)
    mask[:, :, :10] = True
    pred = ThresholdBaseline(image, labels, mask, 3).predict(image[:, :, 10:])
    np.testing.assert_array_equal(pred, labels[:, :, 10:])


def test_patches_never_read_the_validation_slab():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1, (24, 24, 40)).astype(np.float32)
    labels = np.ones(image.shape, np.uint8)
    slab = (15, 25)
    image[:, :, slab[0]:slab[1]] = 50.0  # a value no interpolation of [0, 1] can reach
    labels[:, :, slab[0]:slab[1]] = 3
    regions = augment.training_regions(image.shape[2], slab)
    assert regions == [(0, 15), (25, 40)]
    xs, ys = augment.sample_patches(image, labels, regions, patch=20, batch=16, rng=rng)
    assert xs.shape == (16, 1, 20, 20, 20) and ys.shape == (16, 20, 20, 20)
    assert xs.max() <= 1.0 and not (ys == 3).any()


def test_corrupt_changes_the_image_but_keeps_the_scale():
    rng = np.random.default_rng(2)
    clean = np.linspace(0, 1, 32 * 32 * 32, dtype=np.float32).reshape(32, 32, 32)
    noisy = augment.corrupt(clean, rng)
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    np.testing.assert_allclose(np.percentile(noisy, [1, 99]), [0, 1], atol=1e-5)
    assert np.abs(noisy - clean).mean() > 0.01


@pytest.mark.parametrize("argv, message", [
    (["--image", "a.nii.gz"], "--image and --label go together"),
    (["--patch", "18", "--channels", "4,8,16"], "--patch must be a multiple of 4 for 3 U-Net levels, got 18"),
    (["--channels", "4,x"], "--channels must be comma-separated ints"),
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
])
def test_parse_args_rejects_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit):
        segment_brain.parse_args(argv)
    assert message in capsys.readouterr().err


def _synthetic_subject(tmp_path):
    """Nested ellipsoids on an oblique, anisotropic grid (so the affine is not trivial)."""
    shape = (40, 36, 44)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    r = np.sqrt(((grid / np.array([0.8, 0.7, 0.9])[:, None, None, None]) ** 2).sum(0))
    labels = np.select([r < 0.35, r < 0.6, r < 0.85], [3, 2, 1], 0).astype(np.int16)
    image = np.choose(labels, [0.0, 300.0, 600.0, 800.0]).astype(np.float32)
    affine = np.array([[1.2, 0.1, 0, -30], [-0.1, 1.2, 0, -40], [0, 0, 2.5, 10], [0, 0, 0, 1]])
    header = nib.Nifti1Header()
    header["descrip"] = b"synthetic test subject"
    nib.save(nib.Nifti1Image(image, affine, header), tmp_path / "t1.nii.gz")
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "seg.nii.gz")
    return affine, shape


def test_pipeline_on_a_user_volume_writes_aligned_outputs(tmp_path):
    affine, shape = _synthetic_subject(tmp_path)
    out = tmp_path / "out"
    summary = segment_brain.main(
        TINY + ["--image", str(tmp_path / "t1.nii.gz"), "--label", str(tmp_path / "seg.nii.gz"), "--out", str(out)])

    pred = nib.load(out / "prediction.nii.gz")
    np.testing.assert_allclose(pred.affine, affine, atol=1e-6)
    assert pred.shape == shape
    assert pred.header["descrip"].tobytes().rstrip(b"\0") == b"synthetic test subject"
    assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1, 2, 3}
    assert nib.load(out / "input_corrupted.nii.gz").shape == shape

    for name in ("slices.png", "dice.png"):
        with open(out / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history["history"]] == [1, 2]
    assert summary["classes"] == ["background", "label 1", "label 2", "label 3"]
    assert all(0 <= d <= 1 for d in summary["unet_dice"] + summary["baseline_dice"])

    # The saved weights carry PyTorch names and load strictly into a fresh twin.
    from unet3d import UNet3d
    keys = lucid_mlx.load_torch_state_dict(UNet3d(1, 4, (4, 8)), str(out / "best.safetensors"))
    assert keys == ([], [])


def test_pipeline_on_the_template(tmp_path):
    template = pytest.importorskip("nilearn.datasets").load_mni152_template(resolution=2)
    out = tmp_path / "out"
    segment_brain.main(TINY + ["--out", str(out)])
    pred = nib.load(out / "prediction.nii.gz")
    np.testing.assert_allclose(pred.affine, template.affine)
    assert pred.shape == template.shape
    assert (out / "slices.png").stat().st_size > 10_000 and (out / "dice.png").stat().st_size > 10_000
