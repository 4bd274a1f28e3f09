"""Fixtures shared by the dispatcher tests and the autotuning tests of this folder."""

from __future__ import annotations

import pytest

import lucid_mlx
from lucid_mlx.ops import autotune, autotune_cache, dispatch


class FakeClock:
    """A clock the test moves by hand: ``clock.now`` is what ``autotune.clock()`` reads."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fresh_autotune(monkeypatch, tmp_path):
    """Autotuning off and forgotten, no environment switches, and an empty cache directory
    (``tmp_path``), so that no file from the user's own runs is read; all reset afterwards."""
    monkeypatch.delenv(autotune.ENV_VAR, raising=False)
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    monkeypatch.setenv(autotune_cache.ENV_VAR, str(tmp_path))
    autotune.reset()
    autotune.set_autotune(None)
    autotune_cache._warned.clear()
    yield
    autotune.reset()
    autotune.set_autotune(None)
    autotune_cache._warned.clear()
    lucid_mlx.reset_workspace_limit()


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """``autotune.clock`` replaced by a :class:`FakeClock`."""
    fake = FakeClock()
    monkeypatch.setattr(autotune, "clock", fake)
    return fake


@pytest.fixture
def fresh_dispatch(monkeypatch):
    """No backend forced by the environment; the dispatcher's memo and the workspace limit reset."""
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    dispatch.reset()
    yield
    lucid_mlx.reset_workspace_limit()
    dispatch.reset()
