"""The autotune cache file: where it lives, a round trip, and foreign or corrupt files."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import mlx.core as mx
import pytest

import lucid_mlx
from lucid_mlx.ops import autotune, autotune_cache, dispatch


pytestmark = pytest.mark.usefixtures("fresh_autotune")  # tests/ops/conftest.py; `clock` is there too


def test_directory_rules(monkeypatch, tmp_path):
    assert autotune_cache.default_path() == tmp_path / "autotune.json"
    monkeypatch.setenv(autotune_cache.ENV_VAR, "  ")  # blank: unset
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert autotune_cache.directory() == tmp_path / "xdg" / "lucid_mlx"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert autotune_cache.directory() == tmp_path / "home" / ".cache" / "lucid_mlx"


def test_header_names_device_and_versions():
    head = autotune_cache.header()
    assert head == {"format": 1, "device": autotune_cache.device_name(), "mlx": mx.__version__,
                    "lucid_mlx": lucid_mlx.__version__}
    assert head["device"]


def _tune_a_layer(clock, monkeypatch, costs):
    """Tune one depthwise layer with per-candidate fake costs; returns the timing calls."""
    calls = []

    def slowed(path):
        def forward(*args):
            calls.append(path.name)
            clock.now += costs[path.name]
            return path.forward(*args)

        def grads(*args):
            calls.append(path.name)
            clock.now += costs[path.name]
            return path.grads(*args)

        return path._replace(forward=forward, grads=grads)

    monkeypatch.setattr(dispatch, "DEPTHWISE", slowed(dispatch.DEPTHWISE))
    monkeypatch.setattr(dispatch, "PER_GROUP", slowed(dispatch.PER_GROUP))
    x, w = mx.zeros((1, 4, 4, 4, 4)), mx.zeros((4, 1, 3, 3, 3))
    with lucid_mlx.autotuning():
        conv_plan = dispatch.conv3d_plan(x, w, (1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 4)
    return conv_plan, calls


def test_round_trip(clock, monkeypatch, tmp_path):
    conv_plan, calls = _tune_a_layer(clock, monkeypatch, {"depthwise": 2.0, "per_group": 1.0})
    assert conv_plan.labels == ("per_group", "per_group") and calls
    path = lucid_mlx.save_autotune_cache()
    assert path == tmp_path / "autotune.json"
    assert [p.name for p in tmp_path.iterdir()] == ["autotune.json"]  # no temporary file left
    data = json.loads(path.read_text())
    assert {k: data[k] for k in ("format", "mlx", "lucid_mlx")} == {
        "format": 1, "mlx": mx.__version__, "lucid_mlx": lucid_mlx.__version__}
    entry = next(iter(data["entries"].values()))
    assert entry == {"winner": "per_group", "seconds": {"depthwise": 2.0, "per_group": 1.0}}

    # A new process (the table forgotten): the file decides, nothing is timed,
    # even though the costs now favour the other candidate.
    autotune.reset()
    conv_plan, calls = _tune_a_layer(clock, monkeypatch, {"depthwise": 1.0, "per_group": 2.0})
    assert conv_plan.labels == ("per_group", "per_group") and calls == []
    assert {m.source for m in autotune.measurements().values()} == {"cache"}


def test_save_merges_with_the_file(tmp_path):
    autotune.remember("one", "a", {"a": 1.0, "b": 2.0})
    autotune.save_cache()
    autotune.reset()
    autotune.remember("two", "b", {"a": 3.0, "b": None})
    autotune.save_cache()
    entries = autotune_cache.load()
    assert entries == {"one": {"winner": "a", "seconds": {"a": 1.0, "b": 2.0}},
                       "two": {"winner": "b", "seconds": {"a": 3.0, "b": None}}}


def _write(path: Path, **changes):
    data = {**autotune_cache.header(), "entries": {"sig": {"winner": "a", "seconds": {"a": 1.0}}}}
    path.write_text(json.dumps({**data, **changes}))


@pytest.mark.parametrize("changes, reason", [
    (dict(mlx="0.0.1"), "was written for"),
    (dict(lucid_mlx="9.9"), "was written for"),
    (dict(device="Apple M9 Ultra"), "was written for"),
    (dict(format=0), "was written for"),
    (dict(entries=[1, 2]), "no 'entries' object"),
    (dict(entries={"sig": {"winner": 3}}), "malformed entries"),
], ids=["mlx version", "lucid_mlx version", "device", "format", "no entries", "bad entry"])
def test_a_foreign_cache_is_ignored_with_one_warning(tmp_path, changes, reason):
    path = tmp_path / "autotune.json"
    _write(path, **changes)
    with pytest.warns(RuntimeWarning, match=f"ignoring the autotune cache .*{reason}"):
        assert autotune_cache.load() == {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning per process, not per read
        assert autotune_cache.load() == {}
    # Saving replaces it with this process's header.
    autotune.remember("new", "b", {"b": 1.0})
    autotune.save_cache()
    assert autotune_cache.load() == {"new": {"winner": "b", "seconds": {"b": 1.0}}}


@pytest.mark.parametrize("text", ["{not json", "", "[]", "null"])
def test_a_corrupt_cache_is_ignored_with_one_warning(tmp_path, text):
    (tmp_path / "autotune.json").write_text(text)
    with pytest.warns(RuntimeWarning, match="ignoring the autotune cache"):
        assert autotune_cache.load() == {}


def test_a_corrupt_cache_does_not_stop_autotuning(clock, tmp_path, monkeypatch):
    (tmp_path / "autotune.json").write_text("{not json")
    with pytest.warns(RuntimeWarning, match="ignoring the autotune cache"):
        conv_plan, calls = _tune_a_layer(clock, monkeypatch, {"depthwise": 1.0, "per_group": 2.0})
    assert conv_plan.labels == ("depthwise", "depthwise") and calls


def test_the_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "autotune.json"
    autotune.remember("old", "a", {"a": 1.0})
    autotune.save_cache()
    before = path.read_text()

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    autotune.remember("new", "b", {"b": 1.0})
    with pytest.raises(OSError, match="disk full"):
        autotune.save_cache()
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["autotune.json"]


def test_the_cache_is_not_read_with_autotuning_off(tmp_path, monkeypatch):
    x, w = mx.zeros((1, 4, 4, 4, 4)), mx.zeros((4, 1, 3, 3, 3))
    args = ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 4)
    keys = dispatch.signatures(x, w, *args)
    for key in keys.values():
        autotune.remember(key, "per_group", {"depthwise": 2.0, "per_group": 1.0})
    autotune.save_cache()
    autotune.reset()
    assert dispatch.conv3d_plan(x, w, *args).labels == ("depthwise", "depthwise")
    with lucid_mlx.autotuning():
        assert dispatch.conv3d_plan(x, w, *args).labels == ("per_group", "per_group")
