"""Start N ranks of a Python program on the ring backend over loopback, for tests.

``mlx.launch`` exits 0 even when a rank fails and its output-forwarding
threads spin on a shared machine, so the tests start the ranks themselves,
the way ``mlx.launch`` does for the ring backend (its ``launch_ring``): every
rank gets ``MLX_RANK`` and ``MLX_HOSTFILE``, a JSON list with one
``["ip:port"]`` entry per rank.  Each rank runs in its own session so that a
timeout can kill it and anything it started; every rank's exit status and
output are collected, and :func:`run_ranks` fails when any rank fails.

The ranks import the ``lucid_mlx`` of this checkout: the repository root
(found from this file's location, so a fresh CI clone works too) leads
``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

# The number of ranks of the multi-rank tests; 2 in CI, LUCID_MLX_TEST_RANKS=4 for a wider run.
NUM_RANKS = int(os.environ.get("LUCID_MLX_TEST_RANKS", "2"))


@dataclass
class RankResult:
    rank: int
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str


@dataclass
class JobResult:
    ranks: list[RankResult]
    timed_out: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.timed_out and all(r.returncode == 0 for r in self.ranks)

    def report(self) -> str:
        lines = [f"job of {len(self.ranks)} ranks: timed_out={self.timed_out}, "
                 f"{self.seconds:.1f} s"]
        for r in self.ranks:
            lines.append(f"--- rank {r.rank}: exit status {r.returncode}")
            lines.append(f"stdout:\n{r.stdout.rstrip()}")
            lines.append(f"stderr:\n{r.stderr.rstrip()}")
        return "\n".join(lines)


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports the OS reports free (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def launch(program: str | Path, args: list[str] = (), *, n: int = NUM_RANKS,
           timeout: float = 120.0, env: dict[str, str] | None = None) -> JobResult:
    """Run ``python program *args`` as ranks 0..n-1 and wait for all of them.

    At ``timeout`` seconds every rank still running is killed with its
    process group.  Output goes to files, not pipes, so a chatty rank can
    never block on a full pipe while the launcher waits on another.
    """
    program = Path(program)
    if not program.is_absolute():
        program = HERE / program
    with tempfile.TemporaryDirectory(prefix="lucid_mlx_ranks_") as tmp:
        hostfile = Path(tmp) / "hosts.json"
        hostfile.write_text(json.dumps([[f"127.0.0.1:{p}"] for p in free_ports(n)]))
        base_env = dict(os.environ)
        base_env.update(env or {})
        base_env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT)] + ([base_env["PYTHONPATH"]] if base_env.get("PYTHONPATH") else []))
        base_env["MLX_HOSTFILE"] = str(hostfile)
        base_env.pop("MLX_RING_VERBOSE", None)
        procs, files = [], []
        start = time.monotonic()
        for rank in range(n):
            out = open(Path(tmp) / f"rank{rank}.out", "w+")
            err = open(Path(tmp) / f"rank{rank}.err", "w+")
            files.append((out, err))
            procs.append(subprocess.Popen(
                [sys.executable, str(program), *map(str, args)], cwd=str(REPO_ROOT),
                env={**base_env, "MLX_RANK": str(rank)}, stdout=out, stderr=err,
                stdin=subprocess.DEVNULL, start_new_session=True))
        timed_out = False
        try:
            while any(p.poll() is None for p in procs):
                if time.monotonic() - start > timeout:
                    timed_out = True
                    break
                time.sleep(0.05)
        finally:
            for p in procs:
                if p.poll() is None:
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait()
        seconds = time.monotonic() - start
        results = []
        for rank, (p, (out, err)) in enumerate(zip(procs, files)):
            out.seek(0)
            err.seek(0)
            killed_by_us = timed_out and p.returncode == -signal.SIGKILL
            results.append(RankResult(rank, None if killed_by_us else p.returncode,
                                      out.read(), err.read()))
            out.close()
            err.close()
        return JobResult(results, timed_out, seconds)


def run_ranks(program: str | Path, args: list[str] = (), **kwargs) -> JobResult:
    """:func:`launch`, failing the calling test unless every rank exited with status 0."""
    result = launch(program, args, **kwargs)
    if not result.ok:
        raise AssertionError("a rank failed\n" + result.report())
    return result


def run_and_load(program: str | Path, names: list[str], timeout: float) -> dict[str, list[dict]]:
    """Run ``program OUT_DIR`` on the ranks (:func:`run_ranks`) in a fresh folder, then load each of
    ``names``' per-rank results (:func:`load_results`) before the folder is removed."""
    with tempfile.TemporaryDirectory(prefix="lucid_mlx_ranks_") as out:
        run_ranks(program, [out], timeout=timeout)
        return {name: load_results(out, name) for name in names}


def load_results(out_dir: str | Path, name: str, n: int = NUM_RANKS) -> list[dict]:
    """The ``{name}_rank{r}.npz`` files the ranks wrote, as dicts of NumPy arrays, in rank order."""
    results = []
    for rank in range(n):
        with np.load(Path(out_dir) / f"{name}_rank{rank}.npz") as f:
            results.append(dict(f))
    return results
