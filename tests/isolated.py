"""Run a snippet in a fresh Python process, for cases that could kill the process.

MLX 0.32 dies with SIGFPE on some operations on empty arrays (the vjp of a
``take`` over an empty batch); run in-process, one such regression would
take the whole test session down with it.  ``assert_runs`` fails one test
instead, naming the signal.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRELUDE = "import mlx.core as mx\nimport numpy as np\nimport lucid_mlx.nn.functional as F\nfrom lucid_mlx import nn\n"


def assert_runs(code: str, timeout: float = 120) -> str:
    """Run ``code`` (after the usual imports) from the repository root; return its stdout."""
    result = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], cwd=ROOT,
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode < 0:
        raise AssertionError(f"the process died with {signal.Signals(-result.returncode).name}\n"
                             f"{result.stderr[-2000:]}")
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
