"""init, rank, size, is_main and barrier: in a job (reported by the ranks) and alone."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from lucid_mlx import distributed as dist
from rank_launcher import NUM_RANKS, REPO_ROOT, run_ranks

PROGRAM = """
import sys
from lucid_mlx import distributed as dist
group = dist.init(backend="ring", strict=True)
assert dist.get_group() is group
dist.barrier()
print(dist.rank(), dist.size(), dist.is_main(), sys.excepthook is not sys.__excepthook__)
"""


def test_in_a_job_every_rank_knows_its_place():
    with tempfile.TemporaryDirectory(prefix="lucid_mlx_group_") as tmp:
        program = Path(tmp) / "program.py"
        program.write_text(PROGRAM)
        job = run_ranks(program, timeout=60)
    lines = [r.stdout.split() for r in job.ranks]
    assert lines == [[str(r), str(NUM_RANKS), str(r == 0), "True"] for r in range(NUM_RANKS)]


def test_alone_the_group_has_one_rank_and_no_hook():
    group = dist.init()
    assert (group.size(), dist.rank(), dist.size(), dist.is_main()) == (1, 0, 1, True)
    assert dist.get_group() is group and dist.get_group(group) is group
    assert getattr(sys.excepthook, "__module__", "") != "lucid_mlx.distributed.failfast"
    dist.barrier()


def test_alone_a_timeout_arms_no_deadline():
    # In a subprocess: were the deadline armed, it would end the process.
    code = ("import time; from lucid_mlx import distributed as dist\n"
            "dist.init(timeout=0.05)\n"
            "with dist.deadline():\n    time.sleep(0.5)\n"
            "print('alive')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "alive\n", done.stderr


@pytest.mark.parametrize("kwargs, error, match", [
    ({"backend": "tcp"}, ValueError, "`backend`"),
    ({"strict": 1}, TypeError, "`strict`"),
    ({"fail_fast": "yes"}, TypeError, "`fail_fast`"),
])
def test_init_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        dist.init(**kwargs)


def test_get_group_rejects_other_things():
    with pytest.raises(TypeError, match="`group`"):
        dist.rank(group="world")
