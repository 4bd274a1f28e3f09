"""Implementations behind :mod:`lucid_mlx.nn.functional`.

Functions here take arguments that the functional layer has already
validated and normalised; they are not part of the public API.
"""
