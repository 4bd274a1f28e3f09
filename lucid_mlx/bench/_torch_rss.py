"""Subprocess helper: print the peak resident-set growth, in bytes, of one torch run
(of a layer, or of a MONAI network).

The inputs are made and torch's convolution code is initialised on a tiny
input, then one run of the case is measured: on Linux the kernel's
high-water mark is reset first (``/proc/self/clear_refs``), and the growth
is the mark after the run minus the resident set before it.  Without that
reset the mark left by importing torch hid the run (0 MiB for a dense
32^3 layer).  Elsewhere the growth of ``ru_maxrss`` (KiB on Linux, bytes on
macOS) is reported, which can read low for the same reason.  The figure
includes torch's set-up for a new layer shape: a 1x2x6^3 layer, whose
buffers are a few KiB, measured 13 MiB forward.  A network's parameters,
buffers and input exist before the run; their bytes are added to its
growth, so the figure counts what MLX's peak counts.
"""

from __future__ import annotations

import json
import resource
import sys

from .cases import lookup
from .model_cases import ModelCase
from .model_runner import torch_model_setup, torch_model_step
from .runner import _torch_setup, _torch_step


def _maxrss() -> int:
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


def _measure(step) -> int:
    try:
        before = _status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current resident set
        step()
        return (_status_kib("VmHWM") - before) * 1024
    except OSError:
        before = _maxrss()
        step()
        return _maxrss() - before


def main() -> None:
    spec = json.loads(sys.argv[1])
    case = lookup([spec["case"]])[0]
    if isinstance(case, ModelCase):
        torch, model, x = torch_model_setup(case, spec["dtype"], spec["device"], spec["threads"])
        step = torch_model_step(torch, model, x, spec["mode"], spec["device"])
        held = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers(), x])
    else:
        torch, x, w, fn, cot = _torch_setup(case, spec["dtype"], spec["device"], spec["threads"])
        step = _torch_step(torch, x, w, fn, cot, spec["mode"], spec["device"])
        held = 0
    # Load and initialise torch's convolution code on a 3^3 input, so the
    # measured run pays only for its own buffers (about 15 MB otherwise).
    warm = torch.ones((1, 1, 3, 3, 3), requires_grad=True)
    torch.nn.functional.conv3d(warm, warm.detach()).sum().backward()
    print(_measure(step) + held)


if __name__ == "__main__":
    main()
