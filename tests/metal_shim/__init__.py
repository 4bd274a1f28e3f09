"""Execute lucid_mlx's Metal kernels on the CPU (see harness.py)."""
