"""``python -m lucid_mlx.selftest``: check lucid_mlx's Metal kernels on this machine."""

import sys

from . import main

sys.exit(main())
