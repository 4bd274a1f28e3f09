"""run_on_main and main_print: a rank-0 checkpoint round trip on several ranks, and alone."""

from __future__ import annotations

import os
import tempfile

import mlx.core as mx
import pytest

from lucid_mlx import distributed as dist
from rank_launcher import NUM_RANKS, load_results, run_ranks


@pytest.fixture(scope="module")
def job():
    with tempfile.TemporaryDirectory(prefix="lucid_mlx_main_") as out:
        result = run_ranks("ranks_main_process.py", [out], timeout=120)
        files = sorted(os.listdir(os.path.join(out, "checkpoints")))
        yield result, load_results(out, "main_process"), files


def test_rank_0_saves_a_lazy_step_and_every_rank_reads_it_back(job):
    _, ranks, files = job
    assert files == ["model.safetensors", "weights.npz"]
    for r, got in enumerate(ranks):
        assert bool(got["same"]), f"rank {r} read back different weights"
        assert bool(got["in_sync"])


def test_the_action_runs_on_rank_0_only(job):
    _, ranks, _ = job
    assert [int(got["ran_on"]) for got in ranks] == [0] + [-1] * (NUM_RANKS - 1)


def test_a_failure_on_rank_0_reaches_every_rank(job):
    _, ranks, _ = job
    rank0_error = str(ranks[0]["errors"][0])
    assert not rank0_error.startswith("RuntimeError: run_on_main"), rank0_error
    for got in ranks[1:]:
        assert str(got["errors"][0]).startswith(
            "RuntimeError: run_on_main: save_torch_state_dict raised an exception on rank 0")


def test_main_print_prints_once(job):
    result, _, _ = job
    assert "printed once array(3, dtype=float32)" in result.ranks[0].stdout
    for r in result.ranks[1:]:
        assert "printed once" not in r.stdout


def test_alone_run_on_main_runs_and_returns(capsys):
    calls = []
    assert dist.run_on_main(lambda a, b=0: calls.append(a + b) or "done", 1, b=2) == "done"
    assert calls == [3]
    dist.main_print("hello", mx.array([1, 2]))
    assert capsys.readouterr().out == "hello array([1, 2], dtype=int32)\n"
    with pytest.raises(ZeroDivisionError):
        dist.run_on_main(lambda: 1 / 0)
    with pytest.raises(TypeError, match="`fn`"):
        dist.run_on_main("save")
