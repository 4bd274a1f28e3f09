"""``python -m lucid_mlx.autotune`` on the tiny case: the table and the cache file (no timing assertions)."""

from __future__ import annotations

import json

import pytest

from lucid_mlx import autotune as command
from lucid_mlx.ops import autotune, autotune_cache


@pytest.fixture(autouse=True)
def _fresh(monkeypatch, tmp_path):
    monkeypatch.setenv(autotune_cache.ENV_VAR, str(tmp_path))
    autotune.reset()
    yield
    autotune.reset()


def test_tunes_and_writes_the_cache(tmp_path, capsys):
    table = tmp_path / "table.json"
    assert command.main(["--cases", "tiny", "dilated", "--dtypes", "float32", "--repeats", "1",
                         "--json", str(table)]) == 0
    assert autotune.REPEATS == 3  # restored after the run
    rows = json.loads(table.read_text())
    assert [(r["case"], r["role"]) for r in rows] == [
        ("tiny", "forward"), ("tiny", "backward"), ("dilated", "forward"), ("dilated", "backward")]
    tiny, dilated = rows[0], rows[2]
    assert set(tiny["seconds"]) == {"depthwise", "per_group"} and tiny["default"] == "depthwise"
    assert tiny["winner"] in tiny["seconds"] and tiny["plan_s"] > 0
    assert dilated["seconds"] == {"dense": None} and dilated["winner"] == "dense"
    # The cache holds the two measured signatures (a single candidate is never timed).
    entries = autotune_cache.load(tmp_path / "autotune.json")
    assert len(entries) == 2 and {e["winner"] for e in entries.values()} <= {"depthwise", "per_group"}
    out = capsys.readouterr().out
    assert "| 1x2x6x6x6->4 k3 p1 g2 | float32 | backward |" in out and "only candidate" in out
    assert f"saved 2 choices to {tmp_path / 'autotune.json'}" in out


def test_measures_afresh_even_with_a_cache(tmp_path, capsys):
    assert command.main(["--cases", "tiny", "--dtypes", "float32", "--repeats", "1"]) == 0
    first = json.loads((tmp_path / "autotune.json").read_text())["entries"]
    assert command.main(["--cases", "tiny", "--dtypes", "float32", "--repeats", "1", "--no-save"]) == 0
    assert {m.source for m in autotune.measurements().values()} == {"measured"}
    assert json.loads((tmp_path / "autotune.json").read_text())["entries"] == first  # --no-save


def test_bad_arguments(capsys):
    assert command.main(["--cases", "no_such_case", "--no-save"]) == 2
    assert command.main(["--repeats", "0"]) == 2
