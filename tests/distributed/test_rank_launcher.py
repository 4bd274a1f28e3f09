"""The test launcher itself: every rank's status and output, the hostfile, the time limit."""

from __future__ import annotations

import json
import os
import tempfile
import textwrap
from pathlib import Path

import pytest

from rank_launcher import REPO_ROOT, launch, run_ranks

PROGRAM = textwrap.dedent("""
    import json, os, sys, time
    rank = int(os.environ["MLX_RANK"])
    with open(os.environ["MLX_HOSTFILE"]) as f:
        hosts = json.load(f)
    print(json.dumps({"rank": rank, "hosts": hosts, "path": os.environ["PYTHONPATH"]}))
    print(f"note from {rank}", file=sys.stderr)
    mode = sys.argv[1]
    if mode == "fail" and rank == 1:
        sys.exit(3)
    if mode == "hang" and rank == 0:
        time.sleep(600)
""")


@pytest.fixture
def program():
    with tempfile.TemporaryDirectory(prefix="lucid_mlx_launcher_") as tmp:
        path = Path(tmp) / "program.py"
        path.write_text(PROGRAM)
        yield path


def test_every_rank_gets_its_rank_a_ring_hostfile_and_this_checkout(program):
    job = run_ranks(program, ["ok"], n=3, timeout=60)
    seen = [json.loads(r.stdout) for r in job.ranks]
    assert [s["rank"] for s in seen] == [0, 1, 2]
    hosts = seen[0]["hosts"]
    assert all(s["hosts"] == hosts for s in seen)
    assert len(hosts) == 3 and all(len(h) == 1 and h[0].startswith("127.0.0.1:") for h in hosts)
    assert len({h[0] for h in hosts}) == 3  # one port per rank
    # The ranks import this checkout's lucid_mlx, wherever it was cloned.
    assert all(s["path"].split(os.pathsep)[0] == str(REPO_ROOT) for s in seen)
    assert (REPO_ROOT / "lucid_mlx" / "__init__.py").is_file()
    assert [r.stderr.strip() for r in job.ranks] == ["note from 0", "note from 1", "note from 2"]


def test_a_failing_rank_fails_the_job(program):
    job = launch(program, ["fail"], n=2, timeout=60)
    assert not job.ok and not job.timed_out
    assert [r.returncode for r in job.ranks] == [0, 3]
    with pytest.raises(AssertionError, match="exit status 3"):
        run_ranks(program, ["fail"], n=2, timeout=60)


def test_a_hanging_rank_is_killed_at_the_time_limit(program):
    job = launch(program, ["hang"], n=2, timeout=2)
    assert job.timed_out and not job.ok
    assert job.ranks[0].returncode is None  # killed by the launcher
    assert job.ranks[1].returncode == 0
