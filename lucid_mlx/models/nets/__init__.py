"""MONAI's 3-D networks on MLX, one file per MONAI file."""

__all__: list[str] = []
