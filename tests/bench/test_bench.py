"""The benchmark suite runs on a tiny case and writes valid JSON (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json

import pytest

import lucid_mlx
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


@pytest.fixture
def fresh_autotune(monkeypatch, tmp_path):
    from lucid_mlx.ops import autotune

    monkeypatch.setenv("LUCID_MLX_CACHE_DIR", str(tmp_path))  # never the user's cache file
    monkeypatch.delenv(autotune.ENV_VAR, raising=False)
    autotune.reset()
    yield autotune
    autotune.reset()


def test_rows_say_what_ran(fresh_autotune):
    report = collect(cases=["tiny", "dense_valid"], dtypes=["float32"], modes=["fwd"], impls=["lucid_mlx"],
                     repeats=1, warmup=0)
    ran = {r["case"]: r["ran"] for r in report["results"]}
    # The default rule: depthwise sums for the depthwise tiny layer, MLX's convolution for the dense one.
    assert ran == {"tiny": "depthwise", "dense_valid": "dense"}
    assert all("candidates" not in r for r in report["results"])
    assert report["environment"]["autotune"] is False
    assert "| depthwise |" in format_table(report)


def test_autotune_flag_prints_the_candidate_times(fresh_autotune, tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["--cases", "tiny", "--dtypes", "float32", "--impls", "lucid_mlx", "--repeats", "1",
                 "--warmup", "0", "--autotune", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    assert report["environment"]["autotune"] is True
    fwd, both = report["results"]
    assert set(fwd["candidates"]) == {"forward"} and set(both["candidates"]) == {"forward", "backward"}
    for role, found in both["candidates"].items():
        assert set(found["seconds"]) == {"depthwise", "per_group"}
        assert found["winner"] in found["seconds"] and found["source"] == "measured"
    backward = both["candidates"]["backward"]["winner"]
    forward = both["candidates"]["forward"]["winner"]
    assert both["ran"] == (forward if forward == backward else f"forward: {forward}; backward: {backward}")
    out = capsys.readouterr().out
    assert "| layer | dtype | role | candidate | median | vs default | chosen |" in out
    assert "| 1x2x6x6x6->4 k3 p1 g2 | float32 | backward | per_group |" in out
    assert not lucid_mlx.get_autotune()  # the flag holds for the run only
