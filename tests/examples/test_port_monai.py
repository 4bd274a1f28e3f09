"""examples/port_monai.py runs as written and shows what it claims: MONAI's DynUNet and its
lucid_mlx port agree before and after a fine-tuning step, and after the trip back to MONAI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("monai", reason="the example ports a MONAI network")
pytest.importorskip("safetensors", reason="the example reloads its weights in PyTorch with safetensors")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "port_monai.py"


def test_port_monai_tour(capsys):
    spec = importlib.util.spec_from_file_location("port_monai", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    diffs = example.main()
    printed = capsys.readouterr().out

    # Outputs are O(10): these are float32 rounding (relative ~1e-6).
    assert diffs["eval_output"] < 1e-4 and diffs["reloaded_output"] < 1e-4, diffs
    assert diffs["loss"] < 1e-4, diffs
    assert diffs["gradients"] < 1e-4, diffs  # relative to the largest gradient
    assert diffs["weights_after_step"] < 1e-5, diffs
    assert "a strict load would succeed" in printed
    assert "missing=[] unexpected=[], unwrapped the wrapper checkpoint['state_dict']" in printed
    assert "<All keys matched successfully>" in printed
    for key in ("eval_output", "reloaded_output"):
        assert f"{diffs[key]:.2e}" in printed
