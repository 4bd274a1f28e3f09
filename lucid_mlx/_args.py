"""Argument normalisation shared by every functional op and module.

Each helper checks one kind of argument and raises a ``TypeError`` for a
wrong type or a ``ValueError`` for a wrong value, naming the argument, the
value it was given and what was expected.  Nothing here touches MLX arrays
beyond reading their ``ndim``/``shape``/``dtype``.
"""

from __future__ import annotations

from typing import Sequence, Union

import mlx.core as mx

_size_3 = Union[int, Sequence[int]]
_padding_3 = Union[str, int, Sequence[int]]
_pairs_3 = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
# Normalised forms inside lucid_mlx: (D, H, W) values and (low, high) pads.
Triple = tuple[int, int, int]
Pairs = _pairs_3

FLOAT_DTYPES = (mx.float32, mx.float16, mx.bfloat16)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# F.pad's modes (PyTorch's names), which the pad3d kernels take too.
PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _is_int(value) -> bool:
    # bool is an int subclass, but `stride=True` is always a mistake.
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(value, name: str, *, minimum: int | None = None) -> int:
    """A plain Python int, optionally at least ``minimum``."""
    if not _is_int(value):
        raise TypeError(f"`{name}` must be an int, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return value


def ntuple(value, n: int, name: str, *, minimum: int | None = 1) -> tuple[int, ...]:
    """An int repeated ``n`` times, or a sequence of exactly ``n`` ints.

    Unlike PyTorch's ``_ntuple`` a sequence of the wrong length is an error,
    not silently accepted.
    """
    if _is_int(value):
        items = (value,) * n
    elif isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(
                f"`{name}` must be an int or a sequence of {n} ints, got {value!r} "
                f"(length {len(value)})"
            )
        items = tuple(value)
        for item in items:
            if not _is_int(item):
                raise TypeError(f"`{name}` must contain ints, got {value!r}")
    else:
        raise TypeError(
            f"`{name}` must be an int or a sequence of {n} ints, got {value!r} "
            f"({type(value).__name__})"
        )
    if minimum is not None and any(v < minimum for v in items):
        raise ValueError(f"`{name}` values must be >= {minimum}, got {value!r}")
    return items


def triple(value, name: str, *, minimum: int | None = 1) -> tuple[int, int, int]:
    return ntuple(value, 3, name, minimum=minimum)  # type: ignore[return-value]


def conv_padding(
    padding: _padding_3,
    kernel_size: tuple[int, int, int],
    stride: tuple[int, int, int],
    dilation: tuple[int, int, int],
) -> _pairs_3:
    """Resolve ``padding`` to ``(low, high)`` pairs for (D, H, W).

    'same' pads ``dilation * (kernel - 1)`` in total per dimension, the odd
    element going to the high side, which is what PyTorch does for even
    kernels.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * 3  # type: ignore[return-value]
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"padding='same' is not supported for strided convolutions, "
                    f"got stride={stride}; use an explicit padding instead"
                )
            pairs = []
            for k, d in zip(kernel_size, dilation):
                total = d * (k - 1)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)  # type: ignore[return-value]
        raise ValueError(
            f"`padding` must be an int, a tuple of 3 ints, 'same' or 'valid', got {padding!r}"
        )
    pads = triple(padding, "padding", minimum=0)
    return tuple((p, p) for p in pads)  # type: ignore[return-value]


def padding_mode(mode) -> str:
    if not isinstance(mode, str) or mode not in PADDING_MODES:
        raise ValueError(f"`padding_mode` must be one of {PADDING_MODES}, got {mode!r}")
    return mode


def float_dtype(dtype, name: str = "dtype") -> mx.Dtype:
    """float32 (for ``None``), float16 or bfloat16."""
    if dtype is None:
        return mx.float32
    if not isinstance(dtype, mx.Dtype) or dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"`{name}` must be one of mlx.core.float32, float16 or bfloat16, got {dtype!r}"
        )
    return dtype


def device(value) -> mx.Device | None:
    """None, 'cpu', 'gpu', an ``mx.Device`` or an ``mx.DeviceType``."""
    if value is None:
        return None
    if isinstance(value, mx.Device):
        dev = value
    elif isinstance(value, mx.DeviceType):
        dev = mx.Device(value)
    elif value in ("cpu", "gpu"):
        dev = mx.Device(mx.cpu if value == "cpu" else mx.gpu)
    else:
        raise ValueError(f"`device` must be None, 'cpu', 'gpu' or an mlx.core.Device, got {value!r}")
    if not mx.is_available(dev):
        raise ValueError(f"`device` {value!r} is not available in this MLX build")
    return dev


def check_array(value, name: str, ndim: int | Sequence[int], shape_doc: str) -> mx.array:
    """A floating ``mx.array`` of the given rank."""
    if not isinstance(value, mx.array):
        raise TypeError(f"`{name}` must be an mlx.core.array, got {type(value).__name__}")
    ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if value.ndim not in ranks:
        raise ValueError(
            f"`{name}` must be {shape_doc} ({' or '.join(map(str, ranks))}-D), "
            f"got shape {tuple(value.shape)}"
        )
    # float64 runs only on MLX's CPU backend; refusing it everywhere keeps a
    # model that works on the CPU from failing inside MLX on the GPU.
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"`{name}` must be float32, float16 or bfloat16, got {value.dtype}"
        )
    return value
