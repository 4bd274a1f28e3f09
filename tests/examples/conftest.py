"""One tiny training run of the brain-segmentation example, shared by its test files."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """main.py's TINY setting on the synthetic subject: (subject folder, output folder, summary)."""
    for name in ("nibabel", "matplotlib", "tqdm", "scipy"):
        pytest.importorskip(name)
    from segment_brain_app import TINY, main_app, subject_args, synthetic_subject

    folder = tmp_path_factory.mktemp("subject")
    synthetic_subject(folder)
    out = folder / "out"
    summary = main_app.main(TINY + subject_args(folder) + ["--out", str(out)])
    return folder, out, summary
