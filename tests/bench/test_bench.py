"""The benchmark suite runs on a tiny case and writes valid JSON (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from lucid_mlx.bench import collect, format_table
from lucid_mlx.bench.__main__ import main

HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_main_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    code = main(["--cases", "tiny", "--repeats", "1", "--warmup", "0", "--json", str(path)])
    assert code == 0
    report = json.loads(path.read_text())
    env = report["environment"]
    assert env["mlx"] and env["mlx_device"] == "cpu" and env["cpu_count"] >= 1
    assert report["settings"] == {"repeats": 1, "warmup": 0}
    rows = report["results"]
    # tiny is grouped, so mx.conv3d cannot run it; torch only when installed.
    impls = {"lucid_mlx", "torch"} if HAS_TORCH else {"lucid_mlx"}
    assert {r["impl"] for r in rows} == impls
    assert {(r["dtype"], r["mode"]) for r in rows} == {
        (d, m) for d in ("float32", "float16") for m in ("fwd", "fwd+bwd")
    }
    for r in rows:
        assert "error" not in r, r
        assert r["median_s"] > 0 and len(r["times_s"]) == 1
        if r["impl"] == "lucid_mlx":
            assert r["peak_bytes"] > 0
    out = capsys.readouterr().out
    assert "| layer | dtype | pass |" in out and "1x2x6x6x6->4 k3 p1 g2" in out


def test_dense_case_has_all_three_paths():
    impls = ("lucid_mlx", "mx.conv3d", "torch") if HAS_TORCH else ("lucid_mlx", "mx.conv3d")
    report = collect(cases=["dense_valid"], dtypes=["float32"], modes=["fwd"], impls=impls,
                     repeats=1, warmup=0)
    assert [r["impl"] for r in report["results"]] == list(impls)
    table = format_table(report)
    assert table.count("\n") == 2  # header, rule, one row
    assert "32x32x32x32->32 k3" in table


def test_bad_arguments():
    assert main(["--cases", "no_such_case"]) == 2
    assert main(["--cases", "tiny", "--repeats", "0"]) == 2
    with pytest.raises(SystemExit):
        main(["--dtypes", "float64"])
