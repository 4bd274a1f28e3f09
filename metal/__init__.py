"""Metal kernel sources of lucid_mlx, shipped as package data.

The ``.metal`` files here are function bodies for ``mx.fast.metal_kernel``;
:mod:`lucid_mlx.kernels.library` reads them through ``importlib.resources``
(this directory is installed as the package ``lucid_mlx.metal``).
"""
