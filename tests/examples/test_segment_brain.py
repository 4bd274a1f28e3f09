"""The brain-segmentation example (examples/segment_brain/): its pieces, its
checks of options and input files, and its whole pipeline in a tiny setting."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")
pytest.importorskip("scipy")

import lucid_mlx  # noqa: E402
from segment_brain_app import APP, ROOT, TINY, fails_with, main_app, subject_args, synthetic_subject  # noqa: E402

import augment  # noqa: E402
import brain_data  # noqa: E402
import validation  # noqa: E402
from metrics import dice_counts, dice_scores  # noqa: E402
from network import build_network  # noqa: E402
from threshold_baseline import ThresholdBaseline  # noqa: E402

segment_brain = main_app


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


def test_the_reported_dice_is_the_voxel_count_dice_per_volume():
    # validation.dice_hd95 scores with lucid_mlx.metrics (MONAI's compute_dice, ignore_empty=False);
    # per volume it must equal the app's own count-based Dice, absent classes included.
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, size=(9, 8, 7))  # class 3 absent from the truth
    pred = rng.integers(0, 4, size=truth.shape)
    pred_without_3 = np.where(pred == 3, 0, pred)
    for p in (pred, pred_without_3):  # class 3 predicted (Dice 0) or not (Dice 1)
        dice, _ = validation.dice_hd95(p, truth, 4, (1.0, 1.0, 1.0))
        np.testing.assert_allclose(dice, dice_scores(dice_counts(p, truth, 4))[1:], rtol=1e-6)
    assert validation.dice_hd95(pred, truth, 4, (1, 1, 1))[0][2] == 0.0
    assert validation.dice_hd95(pred_without_3, truth, 4, (1, 1, 1))[0][2] == 1.0


def _hd95_brute_force(pred, truth, spacing):
    """Surfaces by erosion, every pairwise distance in mm, the larger 95th percentile of the two directions."""
    from scipy import ndimage

    def surface(mask):
        return np.argwhere(mask & ~ndimage.binary_erosion(mask)) * np.asarray(spacing)

    a, b = surface(pred), surface(truth)
    d = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    return max(np.percentile(d.min(1), 95), np.percentile(d.min(0), 95))


def test_hd95_is_in_millimetres_of_the_voxel_spacing():
    truth = np.zeros((14, 12, 10), np.uint8)
    truth[3:10, 3:9, 2:7] = 1
    pred = np.zeros_like(truth)
    pred[4:12, 3:9, 3:9] = 1
    spacing = (0.9, 1.3, 2.5)
    _, hd = validation.dice_hd95(pred, truth, 2, spacing)
    np.testing.assert_allclose(hd[0], _hd95_brute_force(pred == 1, truth == 1, spacing), rtol=1e-5)
    assert hd[0] > 2.5  # the 2-voxel shift along the 2.5 mm axis is seen in mm, not in voxels
    # A class missing from the prediction has no HD95 (NaN, shown as n/a), as in MONAI.
    assert np.isnan(validation.dice_hd95(np.zeros_like(truth), truth, 2, spacing)[1][0])


def test_best_weights_load_strictly_into_monai(tiny_run):
    torch = pytest.importorskip("torch")
    monai = pytest.importorskip("monai")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    _, out, _ = tiny_run
    spec = json.loads((out / "best.json").read_text())
    assert spec["monai_class"] == "monai.networks.nets.UNet"
    twin = monai.networks.nets.UNet(**spec["args"])  # the arguments exactly as written
    twin.load_state_dict(safetensors_torch.load_file(str(out / "best.safetensors")), strict=True)
    twin.eval()
    model = build_network(spec["args"])
    lucid_mlx.load_torch_state_dict(model, str(out / "best.safetensors"))
    model.eval()
    x = np.random.default_rng(4).normal(size=(2, 1, 16, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    got = np.array(model(mx.array(x)))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch, size", [(1, 1), (4, 2), (5, 2), (3, 3)])
def test_the_ranks_loss_shares_add_up_to_dicecelosss_value_on_the_whole_batch(batch, size):
    from lucid_mlx.losses import DiceCELoss

    from loss import ShardedDiceCELoss

    rng = np.random.default_rng(5)
    weights = [0.4, 1.9, 0.8, 0.9]
    logits = rng.normal(size=(batch, 4, 6, 5, 4)).astype(np.float32)
    labels = rng.integers(0, 4, size=(batch, 6, 5, 4))
    labels[0, :3] = 1  # shards with different class mixes, so their weight sums differ
    expected = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, weight=weights,
                          lambda_ce=1.0)(mx.array(logits), mx.array(labels[:, None]))
    # lambda_ce 1 (not the example's): the cross-entropy's share, where shards differ, is larger.
    loss = ShardedDiceCELoss(weights, lambda_ce=1.0)
    total, per_shard = 0.0, 0.0
    for rank in range(size):
        a, b = loss.scales(labels, rank=rank, size=size)
        lo, hi = lucid_mlx.distributed.shard_bounds(batch, rank=rank, size=size)
        x, y = mx.array(logits[lo:hi]), mx.array(labels[lo:hi, None])
        total += loss(x, y, mx.array(a), mx.array(b)).item()
        per_shard += loss(x, y, mx.array(1.0), mx.array(1.0)).item() * (hi - lo) / batch
    np.testing.assert_allclose(total / size, expected.item(), rtol=1e-5)
    if size > 1:  # what weighing each shard's DiceCELoss by its patches alone gives: not the same
        assert abs(per_shard - expected.item()) > 1e-3 * expected.item()
    if size == 1:  # on one rank it is DiceCELoss itself
        assert loss(mx.array(logits), mx.array(labels[:, None]), mx.array(1.0), mx.array(1.0)).item() == expected.item()


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
    # The old U-Net halved the grid at every level; MONAI's UNet does where --strides says 2.
    (["--patch", "18", "--channels", "4,8,16", "--strides", "2,2"],
     "--patch must be a multiple of 4 for 3 U-Net levels, got 18"),
    (["--roi", "22", "--channels", "4,8,16", "--strides", "2,2"],
     "--roi must be a multiple of 4 for 3 U-Net levels, got 22"),
    (["--channels", "4,8,16", "--strides", "2"], "--strides needs 2 values for 3 U-Net levels, got 2"),
    (["--strides", "1,0,2"], "--strides must all be >= 1, got 1,0,2"),
    (["--channels", "4,x"], "--channels must be comma-separated ints"),
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
])
def test_parse_args_rejects_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit):
        segment_brain.parse_args(argv)
    assert message in capsys.readouterr().err


def _no_bare_constants(name):
    raise AssertionError(f"history.json holds a bare {name}: not strict JSON")


def _synthetic_subject(tmp_path):
    return synthetic_subject(tmp_path)


def test_pipeline_on_a_user_volume_writes_aligned_outputs(tiny_run):
    folder, out, summary = tiny_run  # TINY on the synthetic subject (conftest.py)
    affine, shape = _synthetic_subject(folder)  # rewritten identically: the affine and shape to compare with

    pred = nib.load(out / "prediction.nii.gz")
    np.testing.assert_allclose(pred.affine, affine, atol=1e-6)
    assert pred.shape == shape
    assert pred.header["descrip"].tobytes().rstrip(b"\0") == b"synthetic test subject"
    assert set(np.unique(np.asarray(pred.dataobj))) <= {0, 1, 2, 3}
    assert nib.load(out / "input_corrupted.nii.gz").shape == shape

    for name in ("slices.png", "dice.png"):
        with open(out / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "history.json").read_text(), parse_constant=_no_bare_constants)
    assert [h["epoch"] for h in history["history"]] == [1, 2]
    assert summary["classes"] == ["background", "label 1", "label 2", "label 3"]
    assert all(0 <= d <= 1 for d in summary["unet_dice"] + summary["baseline_dice"])

    # The saved weights carry PyTorch (MONAI) names and load strictly into a fresh twin.  The twin
    # was the old hand-written UNet3d(1, 4, (4, 8)); it is now the network best.json describes.
    spec = json.loads((out / "best.json").read_text())
    assert spec["args"]["channels"] == [4, 8] and spec["args"]["out_channels"] == 4
    keys = lucid_mlx.load_torch_state_dict(build_network(spec["args"]), str(out / "best.safetensors"))
    assert keys == ([], [])


def test_pipeline_on_the_template(tmp_path):
    template = pytest.importorskip("nilearn.datasets").load_mni152_template(resolution=2)
    out = tmp_path / "out"
    segment_brain.main(TINY + ["--out", str(out)])
    pred = nib.load(out / "prediction.nii.gz")
    np.testing.assert_allclose(pred.affine, template.affine)
    assert pred.shape == template.shape
    assert (out / "slices.png").stat().st_size > 10_000 and (out / "dice.png").stat().st_size > 10_000


# Checks before anything is trained: each bad option or input file ends the
# run with exit status 2 and one line on stderr naming the option.

def _fails_with(argv, message, capsys):
    return fails_with(main_app, argv, message, capsys)


@pytest.mark.parametrize("argv, message", [
    (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),
    (["--lr", "-1"], "--lr must be a finite number > 0, got -1.0"),
    (["--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
    (["--channels", "4"], "--channels needs at least 2 levels"),
    (["--channels", "4,0"], "--channels must all be >= 1, got 4,0"),
    (["--channels", "4,-8"], "--channels must all be >= 1, got 4,-8"),
    (["--seed", "-1"], "--seed must be in 0 to 2**32 - 1, got -1"),
    (["--out", ""], "--out must name a folder"),
    (["--patch", "x"], "argument --patch: invalid int value: 'x'"),
])
def test_bad_options_end_with_one_line_and_status_2(argv, message, capsys):
    _fails_with(argv, message, capsys)


def test_out_pointing_at_a_file_is_refused(tmp_path, capsys):
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    for out in (a_file, a_file / "sub"):
        _fails_with(["--out", str(out)], f"--out: {str(a_file)!r} is a file, not a folder", capsys)


def _write(path, data, affine=None):
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return str(path)


@pytest.fixture
def subject(tmp_path):
    """A small valid image and label map, and a writer for broken variants."""
    shape = (12, 10, 14)
    labels = np.zeros(shape, np.int16)
    labels[3:9, 2:8, 3:11] = 1
    labels[5:7, 4:6, 5:9] = 2
    image = np.choose(labels, [0.0, 300.0, 600.0]).astype(np.float32)
    return tmp_path, image, labels


def _bad_inputs(tmp_path, image, labels):
    def nan_at_one_voxel(value):
        bad = image.copy()
        bad[4, 4, 4] = value
        return bad

    shifted = np.eye(4)
    shifted[0, 3] = 2.0
    fractional = labels.astype(np.float32)
    fractional[4, 4, 4] = 0.5
    (tmp_path / "notes.nii.gz").write_text("not a NIfTI file")
    (tmp_path / "folder.nii").mkdir()
    w = lambda name, data, affine=None: _write(tmp_path / name, data, affine)  # noqa: E731
    img, lab = w("img.nii.gz", image), w("lab.nii.gz", labels)
    return [
        # (--image, --label, expected message)
        (w("nan.nii.gz", nan_at_one_voxel(np.nan)), lab, "--image: 1 of 1680 voxels are NaN or infinite"),
        (w("inf.nii.gz", nan_at_one_voxel(-np.inf)), lab, "--image: 1 of 1680 voxels are NaN or infinite"),
        (str(tmp_path / "missing.nii.gz"), lab, "--image: no such file"),
        (img, str(tmp_path / "missing.nii.gz"), "--label: no such file"),
        (str(tmp_path / "notes.nii.gz"), lab, "--image: cannot read"),
        (str(tmp_path / "folder.nii"), lab, "is a folder, not a NIfTI file"),
        (img, w("small.nii.gz", labels[:, :, :-1]), "--label: shape (12, 10, 13) differs from --image's (12, 10, 14)"),
        (img, w("moved.nii.gz", labels, shifted), "--label: its affine differs from --image's"),
        (img, w("fraction.nii.gz", fractional), "--label: labels must be integers >= 0, but 1 of 1680 voxels are not"),
        (img, w("negative.nii.gz", labels - 1), "--label: labels must be integers >= 0 (0 = background), found -1"),
        (img, w("empty.nii.gz", np.zeros_like(labels)), "--label: needs 2 to 16 distinct labels, found 1"),
        (w("flat.nii.gz", np.full(image.shape, 7.0, np.float32)), lab, "--image: the image has no contrast"),
        (w("slice.nii.gz", image[:, :, 6:7]), w("slice_lab.nii.gz", labels[:, :, 6:7]),
         "--image: needs at least 2 slices along its third axis"),
        (w("4d.nii.gz", np.stack([image, image], -1)), lab, "--image: must be a 3-D volume"),
    ]


def test_bad_input_files_end_with_one_line_and_status_2(subject, capsys):
    tmp_path, image, labels = subject
    for image_path, label_path, message in _bad_inputs(tmp_path, image, labels):
        err = _fails_with(["--image", image_path, "--label", label_path, "--out", str(tmp_path / "out")],
                          message, capsys)
        assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_integer_valued_float_labels_are_accepted(subject):
    tmp_path, image, labels = subject
    volume = brain_data.load_user(_write(tmp_path / "img.nii.gz", image),
                                  _write(tmp_path / "lab.nii.gz", labels.astype(np.float32)))
    assert volume.class_names == ("background", "label 1", "label 2")


def test_the_script_refuses_a_nan_voxel_without_a_traceback(subject):
    tmp_path, image, labels = subject
    image[1, 2, 3] = np.nan
    run = subprocess.run(
        [sys.executable, str(APP / "main.py"), "--image", _write(tmp_path / "img.nii.gz", image),
         "--label", _write(tmp_path / "lab.nii.gz", labels), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 2, run.stderr
    assert run.stderr == "main.py: error: --image: 1 of 1680 voxels are NaN or infinite; replace them (e.g. with 0) first\n"
    assert run.stdout == ""


def test_help_names_the_options_defaults_and_outputs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        segment_brain.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--image PATH", "--lr RATE", "(default: 0.003)", "(default: 4,8,16,32)", "voxel size in mm",
                   "best.safetensors", "history.json", "exit status"):
        assert needle in text, needle


@pytest.mark.parametrize("steps, lr, reason", [
    # Weights of ~1e30 are finite, but the next loss is not.
    ("3", "1e30", "the loss is nan at epoch 1, step "),
    # One step this large already leaves infinite weights, before any loss shows it.
    ("1", "3e38", "the weights hold NaN or infinite values after epoch 1"),
])
def test_a_diverging_run_stops_before_saving_non_finite_weights(steps, lr, reason, tmp_path, capsys):
    _synthetic_subject(tmp_path)
    out = tmp_path / "out"
    argv = TINY + ["--steps", steps, "--lr", lr, "--image", str(tmp_path / "t1.nii.gz"),
                   "--label", str(tmp_path / "seg.nii.gz"), "--out", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        segment_brain.main(argv)
    assert exit_info.value.code == 1
    message = capsys.readouterr().err.splitlines()[-1]
    assert message.startswith(f"main.py: training stopped: {reason}"), message
    assert "nothing non-finite was saved" in message
    assert not (out / "best.safetensors").exists() and not (out / "history.json").exists()


def test_the_readme_lists_every_option_with_the_parser_default():
    rows = re.findall(r"^\| `(--[\w-]+)[^`]*` \| ([^|]+) \|", (APP / "README.md").read_text(), flags=re.M)
    parser = segment_brain.build_parser()
    options = {a.option_strings[-1]: a.default for a in parser._actions if a.option_strings[-1] != "--help"}
    assert sorted(name for name, _ in rows) == sorted(options)
    for name, default in rows:
        if default.startswith("`"):
            assert default.strip().strip("`") == str(options[name]), name
        else:
            assert options[name] is None, name
