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


# --- The default follows the device ------------------------------------------------


@pytest.fixture
def metal(monkeypatch):
    """A mocked Metal device with the stream on the GPU; returns its info dict to fill."""
    import mlx.core as mx

    from lucid_mlx.ops import dispatch

    info: dict = {}
    monkeypatch.setattr(dispatch, "metal_available", lambda: True)
    monkeypatch.setattr(dispatch, "stream_on_gpu", lambda: True)
    monkeypatch.setattr(mx, "device_info", lambda device=None: info)
    monkeypatch.delenv("LUCID_MLX_WORKSPACE_LIMIT", raising=False)
    return info


@pytest.mark.parametrize("working_set, limit", [
    (96 * 2**30, 12 * 2**30),  # a 128 GB Mac: an eighth of its working set
    (12 * 2**30, 1536 * 2**20),  # a 16 GB Mac
    (1 * 2**30, 256 * 2**20),  # never below the CPU's default
], ids=["128 GB", "16 GB", "floor"])
def test_the_default_on_metal_is_an_eighth_of_the_working_set(metal, working_set, limit):
    metal["max_recommended_working_set_size"] = working_set
    assert lucid_mlx.get_workspace_limit() == limit


def test_overrides_win_on_metal(metal, monkeypatch):
    metal["max_recommended_working_set_size"] = 96 * 2**30
    monkeypatch.setenv("LUCID_MLX_WORKSPACE_LIMIT", "64M")
    assert lucid_mlx.get_workspace_limit() == 64 * 2**20
    lucid_mlx.set_workspace_limit(1000)
    assert lucid_mlx.get_workspace_limit() == 1000


def test_metal_without_a_working_set_figure_keeps_the_cpu_default(metal):
    assert lucid_mlx.get_workspace_limit() == 256 * 2**20


def test_metal_present_but_the_stream_on_the_cpu(metal, monkeypatch):
    from lucid_mlx.ops import dispatch

    metal["max_recommended_working_set_size"] = 96 * 2**30
    monkeypatch.setattr(dispatch, "stream_on_gpu", lambda: False)
    assert lucid_mlx.get_workspace_limit() == 256 * 2**20


def test_the_plan_uses_the_metal_default(metal):
    # The 1x32x64^3 layer: in pieces under the 256 MiB floor, whole under an
    # eighth of a 96 GiB working set.
    import mlx.core as mx

    from lucid_mlx.ops import dispatch

    x, w = mx.zeros((1, 32, 64, 64, 64)), mx.zeros((32, 32, 3, 3, 3))
    args = ((1, 1, 1), ((1, 1),) * 3, (1, 1, 1), 1)
    metal["max_recommended_working_set_size"] = 1 * 2**30  # default: the 256 MiB floor
    small = dispatch.conv3d_plan(x, w, *args).split
    metal["max_recommended_working_set_size"] = 96 * 2**30  # default: 12 GiB
    assert small is not None and dispatch.conv3d_plan(x, w, *args).split is None
