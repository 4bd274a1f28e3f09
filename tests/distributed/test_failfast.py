"""A failing or stalled rank ends the whole job with a non-zero status and a clear message.

Each job runs under the launcher's 60 s limit; a job that hung would be
killed there and reported as timed out, which fails the test.  The jobs
themselves end after about 1 s (an exception) or 5-7 s (a stall: the
stalled rank's own sleep).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from lucid_mlx import distributed as dist
from rank_launcher import REPO_ROOT, launch

LIMIT = 60.0


def _ended_with_failure(job):
    assert not job.timed_out, "the job hung until the launcher killed it\n" + job.report()
    for r in job.ranks:
        assert r.returncode not in (0, None), f"rank {r.rank} exited with 0\n" + job.report()
        assert "finished all steps" not in r.stdout, job.report()


def test_an_exception_on_one_rank_ends_the_job():
    job = launch("ranks_failfast.py", ["raise"], timeout=LIMIT)
    _ended_with_failure(job)
    culprit = job.ranks[1].stderr
    assert f"rank 1 of {len(job.ranks)} raised an uncaught exception" in culprit, job.report()
    assert "ValueError: deliberate failure on rank 1" in culprit


def test_a_stalled_rank_ends_the_job_at_the_deadline():
    job = launch("ranks_failfast.py", ["stall"], timeout=LIMIT)
    _ended_with_failure(job)
    waiting = job.ranks[0].stderr
    assert (f"rank 0 of {len(job.ranks)}: a collective operation did not finish within 1.5 s"
            in waiting), job.report()


def test_a_rank_that_never_connects_ends_the_job_at_the_deadline():
    job = launch("ranks_failfast.py", ["late_init"], timeout=LIMIT)
    _ended_with_failure(job)
    assert ("rank 0 of ?: connecting to the other ranks did not finish within 1.5 s"
            in job.ranks[0].stderr), job.report()


def test_the_watchdog_ends_a_blocked_process():
    # No group exists in this process yet, so the deadline is armed (in a known
    # group of one rank it would not be: nothing can stall on a peer there).
    code = ("import time; from lucid_mlx import distributed as dist\n"
            "with dist.deadline(0.5, 'sleeping'):\n    time.sleep(30)\n"
            "print('survived')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=LIMIT)
    assert done.returncode == 1 and "survived" not in done.stdout
    assert "sleeping did not finish within 0.5 s" in done.stderr


def test_a_deadline_met_changes_nothing():
    with dist.deadline(30):
        value = sum(range(10))
    assert value == 45


@pytest.mark.parametrize("seconds, error", [(0, ValueError), (-1.0, ValueError),
                                            ("1", TypeError), (True, TypeError)])
def test_deadline_and_init_reject_bad_timeouts(seconds, error):
    with pytest.raises(error, match="seconds|timeout"):
        with dist.deadline(seconds):
            pass
    with pytest.raises(error, match="timeout"):
        dist.init(timeout=seconds)
