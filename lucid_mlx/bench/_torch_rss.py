"""Subprocess helper: print the max-RSS growth, in bytes, of one torch run.

A warm-up would already raise the resident-set high-water mark, so the
inputs are made, the mark is read, one cold run is done and the mark is
read again.  ``ru_maxrss`` is in KiB on Linux and in bytes on macOS.
"""

from __future__ import annotations

import json
import resource
import sys

from .cases import CASES, EXTRA_CASES
from .runner import _torch_setup, _torch_step


def _maxrss() -> int:
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024


def main() -> None:
    spec = json.loads(sys.argv[1])
    case = {**CASES, **EXTRA_CASES}[spec["case"]]
    torch, x, w, fn, cot = _torch_setup(case, spec["dtype"], spec["device"], spec["threads"])
    step = _torch_step(torch, x, w, fn, cot, spec["mode"], spec["device"])
    before = _maxrss()
    step()
    print(_maxrss() - before)


if __name__ == "__main__":
    main()
