"""The benchmark suite runs on a tiny case and writes valid JSON (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json

import pytest

import lucid_mlx
from lucid_mlx.bench import CASES, collect, format_table
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


HAS_MONAI = importlib.util.find_spec("monai") is not None


def test_a_tiny_network_runs_against_monai():
    # --torch-memory: the MONAI run is measured in a subprocess, which must know network cases too.
    impls = ("lucid_mlx", "torch") if HAS_MONAI else ("lucid_mlx",)
    report = collect(cases=["unet_tiny"], impls=impls, repeats=1, warmup=0, torch_memory=True)
    rows = report["results"]
    # Networks run float32 unless asked, and have no hand-written mx.conv3d version.
    assert [(r["dtype"], r["mode"], r["impl"]) for r in rows] == [
        ("float32", mode, impl) for mode in ("fwd", "fwd+bwd") for impl in impls]
    for r in rows:
        assert "error" not in r, r
        assert r["median_s"] > 0 and r["cpu_s"] > 0 and r["peak_bytes"] > 0
        assert r["network"] == "UNet 1x1x8^3"
    assert report["cases"]["unet_tiny"]["model"] == "UNet"
    table = format_table(report)
    assert table.startswith("| network | dtype | pass | lucid_mlx time | lucid_mlx CPU | lucid_mlx peak |")
    assert "| UNet 1x1x8^3 | float32 | fwd+bwd |" in table


def test_case_families():
    from lucid_mlx import models
    from lucid_mlx.bench.cases import lookup

    assert [c.name for c in lookup(["layers"])] == list(CASES)
    networks = lookup(["models"])
    assert networks and all(hasattr(models, c.model) for c in networks)
    assert {c.model for c in networks} >= {"BasicUNet", "UNet", "SegResNet", "DynUNet", "UNETR"}
    assert [c.name for c in lookup(["unet", "models"])][0] == "unet"  # no duplicates, order kept
    assert len(lookup(["unet", "models"])) == len(networks)
    with pytest.raises(ValueError, match="or a family: layers, models"):
        lookup(["unets"])


def test_a_network_lucid_mlx_lacks_is_refused_by_name():
    from lucid_mlx.bench.model_cases import ModelCase
    from lucid_mlx.bench.model_runner import run_mlx_model

    with pytest.raises(RuntimeError, match="lucid_mlx.models has no NoSuchNet"):
        run_mlx_model(ModelCase("x", "NoSuchNet", (1, 1, 8, 8, 8)), "float32", "fwd", 0, 1)
