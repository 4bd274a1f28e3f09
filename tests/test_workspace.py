"""The workspace budget's setters and its environment variable."""

from __future__ import annotations

import pytest

import lucid_mlx


@pytest.fixture(autouse=True)
def _restore_limit():
    yield
    lucid_mlx.reset_workspace_limit()


def test_limit_arguments_and_environment(monkeypatch):
    assert lucid_mlx.get_workspace_limit() == 256 * 2**20
    lucid_mlx.set_workspace_limit(1000)
    assert lucid_mlx.get_workspace_limit() == 1000
    lucid_mlx.set_workspace_limit(None)
    assert lucid_mlx.get_workspace_limit() is None
    with pytest.raises(ValueError, match=r"`nbytes` must be >= 0, got -1"):
        lucid_mlx.set_workspace_limit(-1)
    with pytest.raises(TypeError, match=r"`nbytes` must be an int or None, got 1.5"):
        lucid_mlx.set_workspace_limit(1.5)
    with pytest.raises(TypeError, match=r"`nbytes`"):
        lucid_mlx.set_workspace_limit(True)

    lucid_mlx.reset_workspace_limit()
    monkeypatch.setenv("LUCID_MLX_WORKSPACE_LIMIT", "64M")
    assert lucid_mlx.get_workspace_limit() == 64 * 2**20
    monkeypatch.setenv("LUCID_MLX_WORKSPACE_LIMIT", "none")
    assert lucid_mlx.get_workspace_limit() is None
    monkeypatch.setenv("LUCID_MLX_WORKSPACE_LIMIT", "lots")
    with pytest.raises(ValueError, match=r"LUCID_MLX_WORKSPACE_LIMIT.*'lots'"):
        lucid_mlx.get_workspace_limit()


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_a_blank_variable_means_unset(monkeypatch, text):
    # The rule every lucid_mlx variable follows (LUCID_MLX_KERNELS too).
    monkeypatch.setenv("LUCID_MLX_WORKSPACE_LIMIT", text)
    assert lucid_mlx.get_workspace_limit() == 256 * 2**20


@pytest.mark.parametrize("text, value", [(" 12 ", 12), ("8k", 8 * 2**10), ("3G", 3 * 2**30), ("NONE", None)])
def test_variable_forms(monkeypatch, text, value):
    monkeypatch.setenv("LUCID_MLX_WORKSPACE_LIMIT", text)
    assert lucid_mlx.get_workspace_limit() == value


@pytest.mark.parametrize("text", ["\u0663", "\uff11\uff12M", "1.5M", "-1", "12MB", "0x10"])
def test_non_ascii_digits_and_other_numbers_are_refused(monkeypatch, text):
    monkeypatch.setenv("LUCID_MLX_WORKSPACE_LIMIT", text)
    with pytest.raises(ValueError, match="LUCID_MLX_WORKSPACE_LIMIT must be a number of bytes"):
        lucid_mlx.get_workspace_limit()
