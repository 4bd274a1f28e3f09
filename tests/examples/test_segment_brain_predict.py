"""The brain-segmentation example's second entry point, predict.py: a trained network applied to a new volume."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")
pytest.importorskip("matplotlib")
pytest.importorskip("scipy")

from segment_brain_app import fails_with, predict_app  # noqa: E402


def _volume(folder, name, data, affine):
    path = folder / name
    nib.save(nib.Nifti1Image(data, affine), path)
    return str(path)


def _new_subject(shape=(30, 26, 21)):
    """Another synthetic head: a different size, voxel size and orientation from the training subject."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    # Off centre, so that no flip of an axis maps the head onto itself.
    r = np.sqrt(((grid - np.array([0.15, -0.1, 0.2])[:, None, None, None]) ** 2).sum(0))
    image = np.select([r < 0.3, r < 0.55, r < 0.8], [800.0, 600.0, 300.0], 0.0).astype(np.float32)
    affine = np.array([[0, 0, -3.0, 40], [1.5, 0, 0, -20], [0, 1.1, 0, 5], [0, 0, 0, 1]])  # not RAS
    return image, affine


def test_predict_writes_labels_on_the_input_grid(tiny_run, tmp_path, capsys):
    _, out, _ = tiny_run
    image, affine = _new_subject()
    result = predict_app.main(["--weights", str(out / "best.safetensors"),
                               "--image", _volume(tmp_path, "head.nii.gz", image, affine),
                               "--out", str(tmp_path / "pred")])
    labels = nib.load(tmp_path / "pred" / "head_labels.nii.gz")
    assert labels.shape == image.shape
    np.testing.assert_allclose(labels.affine, affine)
    data = np.asarray(labels.dataobj)
    assert data.dtype == np.uint8 and set(np.unique(data)) <= {0, 1, 2, 3}
    assert result["counts"] == np.bincount(data.ravel(), minlength=4).tolist()
    with open(tmp_path / "pred" / "head_slices.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "volumes: label 1 " in capsys.readouterr().out


def test_predict_does_not_depend_on_the_voxel_order(tiny_run, tmp_path):
    # The same head stored with its first axis reversed (and the affine saying so) is the same
    # anatomy: the labels must be the same voxels, reversed back.
    _, out, _ = tiny_run
    image, affine = _new_subject()
    flip = np.diag([-1.0, 1, 1, 1])
    flip[0, 3] = image.shape[0] - 1
    labels = []
    for name, data, aff in (("a.nii.gz", image, affine), ("b.nii.gz", image[::-1].copy(), affine @ flip)):
        predict_app.main(["--weights", str(out / "best.safetensors"), "--image", _volume(tmp_path, name, data, aff),
                          "--out", str(tmp_path)])
        labels.append(np.asarray(nib.load(tmp_path / name.replace(".nii.gz", "_labels.nii.gz")).dataobj))
    np.testing.assert_array_equal(labels[1][::-1], labels[0])


@pytest.mark.parametrize("training", ["RAS", "LPS", "AIL"])
def test_a_new_image_reaches_the_network_in_the_training_volumes_voxel_order(training, tiny_run):
    # One anatomy stored two ways: in RAS order, and in the `training` orientation.
    ras = np.random.default_rng(0).normal(size=(5, 6, 7)).astype(np.float32)
    ras_affine = np.diag([1.0, 2.0, 3.0, 1.0])
    to_training = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"),
                                                  nib.orientations.axcodes2ornt(training))
    stored = nib.orientations.apply_orientation(ras, to_training)
    stored_affine = ras_affine @ nib.orientations.inv_ornt_aff(to_training, ras.shape)
    assert "".join(nib.aff2axcodes(stored_affine)) == training
    spacing = np.sqrt((stored_affine[:3, :3] ** 2).sum(axis=0))
    # Whichever way the file stores it, the network gets it in the training volume's order.
    for data, affine in ((ras, ras_affine), (stored, stored_affine)):
        seen, seen_spacing, ornt = predict_app.reorient(nib.Nifti1Image(data, affine), data, training)
        np.testing.assert_array_equal(seen, stored)
        np.testing.assert_allclose(seen_spacing, spacing)
        np.testing.assert_array_equal(predict_app.undo_reorient(seen, ornt), data)
    # main.py writes the training volume's orientation beside the weights (the tiny subject's is RAS).
    _, out, _ = tiny_run
    assert json.loads((out / "best.json").read_text())["orientation"] == "RAS"


def test_resampling_to_the_training_voxel_size_and_back_keeps_the_grid(tmp_path):
    # A stand-in network that outputs its input's class by thresholds shows that
    # resampling, cropping and reorienting put every label back on its voxel.
    image = np.zeros((23, 19, 17), np.float32)
    image[5:18, 4:15, 3:14] = 1.0
    affine = np.diag([1.0, 1.0, 1.0, 1.0])

    def threshold_model(x):
        import mlx.core as mx
        return mx.concatenate([0.5 - x, x - 0.5], axis=1) * 100

    spec = {"spacing_mm": [2.0, 2.0, 2.0], "roi_size": [8, 8, 8], "orientation": "RAS"}
    nifti = nib.Nifti1Image(image, affine)
    labels, *_ = predict_app.predict(threshold_model, spec, nifti, image, overlap=0.25, sw_batch=2)
    # Linear resampling to 2 mm and back blurs the cube's faces by at most a voxel.
    inner = np.zeros_like(image, bool)
    inner[6:17, 5:14, 4:13] = True
    outer = np.zeros_like(image, bool)
    outer[4:19, 3:16, 2:15] = True
    assert labels[inner].all() and not labels[~outer].any()


def _fails_with(argv, message, capsys):
    fails_with(predict_app, argv, message, capsys)


def test_bad_inputs_end_with_one_line_and_status_2(tiny_run, tmp_path, capsys):
    _, out, _ = tiny_run
    weights = str(out / "best.safetensors")
    image, affine = _new_subject()
    good = _volume(tmp_path, "good.nii.gz", image, affine)
    nan = image.copy()
    nan[3, 3, 3] = np.nan
    # A copy of the weights without the JSON beside them, and one with another network's JSON.
    shutil.copy(weights, tmp_path / "lonely.safetensors")
    shutil.copy(weights, tmp_path / "other.safetensors")
    spec = json.loads((out / "best.json").read_text())
    spec["args"]["channels"] = [4, 16]
    (tmp_path / "other.json").write_text(json.dumps(spec))
    (tmp_path / "broken.json").write_text("{not json")
    for name, key, value in (("spacing", "spacing_mm", [2.0, 0.0, 2.0]), ("axes", "orientation", "RAR")):
        shutil.copy(weights, tmp_path / f"{name}.safetensors")
        (tmp_path / f"{name}.json").write_text(json.dumps({**json.loads((out / "best.json").read_text()),
                                                          key: value}))
    cases = [
        (["--image", good], "the following arguments are required: --weights"),
        (["--weights", str(tmp_path / "none.safetensors"), "--image", good], "--weights: no such file"),
        (["--weights", str(tmp_path / "lonely.safetensors"), "--image", good], "no network arguments at"),
        (["--weights", str(tmp_path / "other.safetensors"), "--image", good],
         "the weights do not fit the saved arguments"),
        (["--weights", weights, "--args", str(tmp_path / "broken.json"), "--image", good], "cannot read"),
        (["--weights", str(tmp_path / "spacing.safetensors"), "--image", good],
         "spacing_mm must be 3 voxel sizes > 0, got [2.0, 0.0, 2.0]"),
        (["--weights", str(tmp_path / "axes.safetensors"), "--image", good],
         "orientation must be 3 axis codes such as 'RAS', got 'RAR'"),
        (["--weights", weights, "--image", str(tmp_path / "none.nii.gz")], "--image: no such file"),
        (["--weights", weights, "--image", _volume(tmp_path, "nan.nii.gz", nan, affine)],
         "--image: 1 of 16380 voxels are NaN or infinite"),
        (["--weights", weights, "--image", _volume(tmp_path, "flat.nii.gz", np.ones_like(image), affine)],
         "--image: the image has no contrast"),
        (["--weights", weights, "--image", _volume(tmp_path, "4d.nii.gz", np.stack([image] * 2, -1), affine)],
         "--image: must be a 3-D volume"),
        (["--weights", weights, "--image", good, "--overlap", "1"], "--overlap must be in [0, 1), got 1.0"),
        (["--weights", weights, "--image", good, "--sw-batch", "0"], "--sw-batch must be >= 1, got 0"),
    ]
    for argv, message in cases:
        _fails_with(argv + ["--out", str(tmp_path / "refused")], message, capsys)
    assert not (tmp_path / "refused").exists()
