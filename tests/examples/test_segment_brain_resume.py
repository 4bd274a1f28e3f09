"""--resume and Ctrl-C in the brain-segmentation example: the checkpoint carries a run on exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import mlx.core as mx
import numpy as np
import pytest

pytest.importorskip("nibabel")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")
pytest.importorskip("scipy")

from segment_brain_app import APP, ROOT, TINY, main_app, subject_args, synthetic_subject  # noqa: E402

import checkpoint  # noqa: E402
from network import build_network  # noqa: E402

ARGV = TINY + ["--steps", "3", "--overlap", "0.25"]  # 2 epochs of 3 steps


class _StopAtRead:
    """A StopFlag whose ``requested`` turns True at its n-th reading, as if Ctrl-C came just then.

    The loop reads it once after every step and once after each epoch's
    validation: with 3 steps, reading 2 is epoch 1 step 2, reading 4 the end
    of epoch 1, reading 5 epoch 2 step 1.
    """

    def __init__(self, n):
        self.n, self.reads = n, 0

    @property
    def requested(self):
        self.reads += 1
        return self.reads >= self.n

    def request(self):
        self.n = 0


TIMINGS = ("step_seconds", "step_cpu_seconds", "validation_seconds")


def _outputs(out):
    history = [{k: v for k, v in h.items() if k not in TIMINGS}
               for h in json.loads((out / "history.json").read_text())["history"]]
    arrays, _ = checkpoint.read(str(out / checkpoint.FILENAME))
    best = mx.load(str(out / "best.safetensors"))
    return history, arrays, best


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("subject")
    synthetic_subject(folder)
    out = folder / "whole"
    main_app.main(ARGV + subject_args(folder) + ["--out", str(out)])
    return folder, _outputs(out)


# (the flag's reading at which Ctrl-C comes, steps trained before it, the "resumed after" point)
STOPS = [(2, 2, "epoch 0, step 2"), (3, 3, "epoch 0, step 3"), (4, 3, "epoch 1, step 0"), (5, 4, "epoch 1, step 1")]


@pytest.mark.parametrize("stop_at, done, point", STOPS,
                         ids=["mid-epoch-1", "last-step-of-epoch-1", "end-of-epoch-1", "mid-epoch-2"])
def test_resume_gives_the_uninterrupted_run_bit_for_bit(uninterrupted, stop_at, done, point, monkeypatch,
                                                        capsys):
    folder, (history, arrays, best) = uninterrupted
    out = folder / f"stopped_{stop_at}"
    monkeypatch.setattr(main_app, "StopFlag", lambda: _StopAtRead(stop_at))
    with pytest.raises(SystemExit) as exit_info:
        main_app.main(ARGV + subject_args(folder) + ["--out", str(out)])
    assert exit_info.value.code == 130
    assert f"--out {out} --resume" in capsys.readouterr().out
    monkeypatch.undo()

    # Only --out and --resume: the options come from the checkpoint.  The run goes on from the
    # checkpoint, not from the start: it trains only the steps that are left.
    steps = []
    train_step = main_app.train_step
    monkeypatch.setattr(main_app, "train_step", lambda *a: steps.append(1) or train_step(*a))
    main_app.main(["--out", str(out), "--resume"])
    assert f"resumed after {point}" in capsys.readouterr().out
    assert len(steps) == 2 * 3 - done
    got_history, got_arrays, got_best = _outputs(out)
    assert got_history == history
    assert sorted(got_arrays) == sorted(arrays)
    for key in arrays:  # weights, BatchNorm statistics, Adam's moments and step
        np.testing.assert_array_equal(np.array(got_arrays[key]), np.array(arrays[key]), err_msg=key)
    for key in best:
        np.testing.assert_array_equal(np.array(got_best[key]), np.array(best[key]), err_msg=key)


def _damaged_checkpoint(run, folder, name, change):
    """A copy of ``run``'s checkpoint in ``folder / name``, its arrays and JSON state passed through ``change``."""
    arrays, state = checkpoint.read(str(run / checkpoint.FILENAME))
    arrays, state = change(dict(arrays), state)
    (folder / name).mkdir()
    mx.save_safetensors(str(folder / name / checkpoint.FILENAME), arrays, metadata={"state": json.dumps(state)})
    return str(folder / name)


def test_resume_refuses_a_changed_option_and_a_missing_checkpoint(uninterrupted, tmp_path, capsys):
    folder, _ = uninterrupted
    no_weight = _damaged_checkpoint(folder / "whole", tmp_path, "no_weight", lambda a, st: (
        {k: v for k, v in a.items() if not k.endswith("model.0.conv.weight")}, st))
    no_options = _damaged_checkpoint(folder / "whole", tmp_path, "no_options", lambda a, st: (
        a, {k: v for k, v in st.items() if k != "options"}))
    for argv, message in [
        (["--out", no_weight, "--resume"], "--resume: the checkpoint's weights do not fit this network"),
        (["--out", no_options, "--resume"], "does not hold this script's options"),
        (["--out", str(folder / "whole"), "--resume", "--lr", "0.1"],
         "--resume: --lr 0.1 differs from the checkpoint's 0.003; leave it out"),
        (["--out", str(folder / "whole"), "--resume", "--channels", "4,16"], "--resume: --channels (4, 16) differs"),
        (["--out", str(tmp_path / "empty"), "--resume"], "--resume: no checkpoint to resume from at"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main_app.main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count("\n") == 1 and message in err, err
    # Options that agree with the checkpoint are fine (here: the run is already complete).
    # --strides 1 fits the checkpoint's 2 levels, not the default 4: it is checked against the former.
    main_app.main(["--out", str(folder / "whole"), "--resume", "--lr", "0.003", "--channels", "4,8",
                   "--strides", "1"])


def test_sigint_leaves_a_loadable_checkpoint(tmp_path):
    synthetic_subject(tmp_path)
    out = tmp_path / "out"
    argv = TINY + subject_args(tmp_path) + ["--epochs", "1", "--steps", "100000", "--out", str(out)]
    with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
        proc = subprocess.Popen([sys.executable, str(APP / "main.py"), *argv], stdout=stdout, stderr=stderr,
                                cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            deadline = time.monotonic() + 180
            # best.json is written once the Ctrl-C handler is in place, just before the first step.
            while not (out / "best.json").exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    err = (tmp_path / "stderr").read_text()
    assert code == 130, err
    assert "Ctrl-C: stopping after this step" in err and "Traceback" not in err, err
    assert "stopped by Ctrl-C at epoch 1, step " in (tmp_path / "stdout").read_text()

    arrays, state = checkpoint.read(str(out / checkpoint.FILENAME))
    assert state["epoch"] == 0 and state["step"] >= 1 and len(state["losses"]) == state["step"]
    spec = json.loads((out / "best.json").read_text())
    model = build_network(spec["args"])
    optimizer = main_app.build_optimizer(main_app.parse_args(["--out", str(tmp_path / "unused")]))
    checkpoint.restore(arrays, model, optimizer)
    assert int(optimizer.state["step"]) == state["step"]
    assert not os.path.exists(str(out / checkpoint.FILENAME) + ".tmp.safetensors")
