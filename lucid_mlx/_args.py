"""Argument types and their checks, shared by every functional op and module.

The one place that says what an argument may be: the functional ops in
:mod:`lucid_mlx.nn.functional` call these helpers before any MLX op runs,
and the modules in :mod:`lucid_mlx.nn` call the same helpers in their
constructors, so a bad layer fails where it is built with the message the
functional op would give.  Each helper raises a ``TypeError`` for a wrong
type or a ``ValueError`` for a wrong value, naming the argument, the value
it was given and what was expected, and returns the value normalised
(Python ints and floats, tuples of the right length).  Nothing here touches
MLX arrays beyond reading their ``ndim``/``shape``/``dtype``.

NumPy scalars are taken wherever PyTorch takes them (``np.int64`` where an
int is expected, ``np.float32`` where a number is) and returned as Python
ints and floats; bools never are: a ``stride=True`` is always a mistake.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from typing import Optional, Sequence, Union

import mlx.core as mx

# ---------------------------------------------------------------------------
# Types

Triple = tuple[int, int, int]
"""A normalised per-dimension (D, H, W) int argument."""
Pairs = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
"""Normalised (low, high) amounts for (D, H, W)."""
PadPairs = tuple[tuple[int, int], ...]
"""(low, high) amounts for any number of trailing dimensions, outermost first."""

_size_3 = Union[int, Sequence[int]]
_padding_3 = Union[str, int, Sequence[int]]
_opt_size_3 = Union[int, None, Sequence[Optional[int]]]
_scale_3 = Union[float, Sequence[float]]

FLOAT_DTYPES = (mx.float32, mx.float16, mx.bfloat16)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
"""``Conv3d``'s ``padding_mode``."""
PAD_MODES = ("constant", "reflect", "replicate", "circular")
"""``pad``'s ``mode``; the pad3d kernel's ``MODE`` is an index into this tuple."""
INTERPOLATE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area")
LINEAR_MODES = ("linear", "bilinear", "trilinear")
"""The linear interpolation modes, for 3-, 4- and 5-D input in that order."""


# ---------------------------------------------------------------------------
# Scalars


# MLX keeps shapes and their arithmetic in 32-bit ints.
INT_LIMIT = 2**31 - 1


def _in_range(items, name: str, value) -> None:
    if any(abs(v) > INT_LIMIT for v in items):
        raise ValueError(f"`{name}` must be within +-(2**31 - 1), MLX's 32-bit sizes, got {value!r}")


def is_int(value) -> bool:
    """A Python or NumPy integer (both are ``numbers.Integral``), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A Python or NumPy real number, not a bool (``np.bool_`` is no ``numbers.Real``)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(value, name: str, *, minimum: int | None = None) -> int:
    """An integer, optionally at least ``minimum``, as a Python int."""
    if not is_int(value):
        raise TypeError(f"`{name}` must be an int, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    _in_range((value,), name, value)
    return int(value)


def check_bool(value, name: str) -> bool:
    """A bool, and only a bool: ``ceil_mode='yes'`` or ``count_include_pad=0`` are refused."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool, got {value!r}")
    return value


def check_float(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
                below: float | None = None) -> float:
    """A finite real number (Python or NumPy, not a bool) within the given bounds, as a float."""
    if not is_number(value):
        raise TypeError(f"`{name}` must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}, got {value!r}")
    if below is not None and value >= below:
        raise ValueError(f"`{name}` must be < {below}, got {value!r}")
    return value


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    """One of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}")
    return value


def check_eps(eps) -> float:
    """A non-negative number, not NaN (``batch_norm`` further needs it positive to train)."""
    if not is_number(eps) or not eps >= 0:
        raise ValueError(f"`eps` must be a non-negative number, got {eps!r}")
    return float(eps)


def check_momentum(momentum):
    """A number, ``None``, or a float scalar array (the modules' cumulative average)."""
    if momentum is None or (isinstance(momentum, mx.array) and momentum.ndim == 0
                            and momentum.dtype in FLOAT_DTYPES):
        return momentum
    if not is_number(momentum):
        raise TypeError(f"`momentum` must be a number or None, got {momentum!r}")
    return float(momentum)


def check_p(p) -> float:
    """A dropout probability in [0, 1]."""
    if not is_number(p):
        raise TypeError(f"`p` must be a number in [0, 1], got {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability `p` must be between 0 and 1, got {p}")
    return float(p)


# ---------------------------------------------------------------------------
# Sizes of the arrays an op would make


@functools.lru_cache(maxsize=1)
def memory_bytes() -> int:
    """This machine's memory: the Metal device's where there is one, else physical RAM."""
    if mx.metal.is_available():
        return int(mx.metal.device_info()["memory_size"])
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf: no bound but MLX's own
        return 2**63


def check_size(shape: Sequence[int], itemsize: int, what: str) -> None:
    """Refuse, before anything is allocated, an array no machine here could hold.

    Each dimension must fit MLX's 32-bit shapes, and the whole array this
    machine's memory: past that MLX raises its own errors, or the process
    is killed when it runs out of memory.
    """
    shape = tuple(int(n) for n in shape)
    if any(n > INT_LIMIT for n in shape):
        raise ValueError(f"{what} would have shape {shape}, with dimensions above 2**31 - 1, "
                         "MLX's largest")
    nbytes = math.prod(shape) * itemsize
    if nbytes > memory_bytes():
        raise ValueError(f"{what} would have shape {shape} ({nbytes / 2**30:.3g} GiB), more than "
                         f"this machine's memory ({memory_bytes() / 2**30:.3g} GiB)")


# ---------------------------------------------------------------------------
# Per-dimension tuples


def ntuple(value, n: int, name: str, *, minimum: int | None = 1) -> tuple[int, ...]:
    """An int repeated ``n`` times, or a sequence of exactly ``n`` ints.

    Unlike PyTorch's ``_ntuple`` a sequence of the wrong length is an error,
    not silently accepted.
    """
    if is_int(value):
        items = (int(value),) * n
    elif isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(
                f"`{name}` must be an int or a sequence of {n} ints, got {value!r} "
                f"(length {len(value)})"
            )
        if not all(is_int(item) for item in value):
            raise TypeError(f"`{name}` must contain ints, got {value!r}")
        items = tuple(int(item) for item in value)
    else:
        raise TypeError(
            f"`{name}` must be an int or a sequence of {n} ints, got {value!r} "
            f"({type(value).__name__})"
        )
    if minimum is not None and any(v < minimum for v in items):
        raise ValueError(f"`{name}` values must be >= {minimum}, got {value!r}")
    _in_range(items, name, value)
    return items


def triple(value, name: str, *, minimum: int | None = 1) -> Triple:
    return ntuple(value, 3, name, minimum=minimum)  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# Convolution


def conv_padding(padding: _padding_3, kernel_size: Triple, stride: Triple,
                 dilation: Triple) -> Pairs:
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


def check_output_padding(output_padding, stride: Triple, dilation: Triple) -> Triple:
    """A transposed convolution's output padding: below the stride or the dilation."""
    op = triple(output_padding, "output_padding", minimum=0)
    if any(o >= s and o >= d for o, s, d in zip(op, stride, dilation)):
        raise ValueError(f"`output_padding` must be smaller than either `stride` or `dilation` "
                         f"in every dimension, got output_padding={op}, stride={stride}, "
                         f"dilation={dilation}")
    return op


def transposed_output_shape(sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                            padding: Sequence[int], output_padding: Sequence[int],
                            dilation: Sequence[int]) -> list[int]:
    """PyTorch's transposed-convolution output size, per dimension.

    ``(n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1``;
    :class:`lucid_mlx.nn.ConvTranspose3d` inverts it to turn an ``output_size``
    into an ``output_padding``.
    """
    return [(n - 1) * s - 2 * p + d * (k - 1) + op + 1
            for n, k, s, p, op, d in zip(sizes, kernel, stride, padding, output_padding, dilation)]


# ---------------------------------------------------------------------------
# Pooling


def pool_args(kernel_size, stride, padding, dilation) -> tuple[Triple, Triple, Triple, Triple]:
    """Kernel, stride (the kernel when ``None`` or empty), padding and dilation of a pooling.

    Padding is at most half the kernel in each dimension, as PyTorch requires.
    """
    k = triple(kernel_size, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else triple(stride, "stride")
    p = triple(padding, "padding", minimum=0)
    d = triple(dilation, "dilation")
    for ki, pi in zip(k, p):
        if pi > ki // 2:
            raise ValueError(
                f"`padding` must be at most half of `kernel_size` in every dimension, "
                f"got padding={padding!r} with kernel_size={kernel_size!r}"
            )
    return k, s, p, d


def adaptive_output_size(output_size) -> tuple[Optional[int], Optional[int], Optional[int]]:
    """An adaptive pooling's (D, H, W) bin counts; ``None`` in a sequence keeps that size."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 3:
            raise ValueError(f"`output_size` must be an int or a sequence of 3 ints or None, "
                             f"got {output_size!r}")
        return tuple(None if item is None else check_int(item, "output_size", minimum=1)
                     for item in output_size)  # type: ignore[return-value]
    return (check_int(output_size, "output_size", minimum=1),) * 3  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# Interpolation


def interpolate_mode(mode) -> str:
    if mode not in INTERPOLATE_MODES:
        raise ValueError(f"`mode` must be one of {INTERPOLATE_MODES}, got {mode!r}")
    return mode


def size_or_scale(size, scale_factor) -> None:
    """Exactly one of ``size`` and ``scale_factor``."""
    if size is not None and scale_factor is not None:
        raise ValueError(f"only one of `size` or `scale_factor` should be given, got "
                         f"size={size!r} and scale_factor={scale_factor!r}")
    if size is None and scale_factor is None:
        raise ValueError("either `size` or `scale_factor` must be given")


def scale_factor(value) -> Union[float, tuple[float, ...]]:
    """A positive finite number, or a sequence of them, as floats (PyTorch stores floats)."""
    items = value if isinstance(value, (tuple, list)) else (value,)
    for s in items:
        if not is_number(s):
            raise TypeError(f"`scale_factor` must be a number or a sequence of numbers, "
                            f"got {value!r}")
        if not (s > 0 and math.isfinite(s)):
            raise ValueError(f"`scale_factor` must be positive and finite, got {value!r}")
    if isinstance(value, (tuple, list)):
        return tuple(float(s) for s in value)
    return float(value)


# ---------------------------------------------------------------------------
# Arrays, dtypes and devices


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
    _check_float(value, name)
    return value


def check_vector(value, name: str, length: int, what: str) -> Optional[mx.array]:
    """``None`` or a floating ``(length,)`` array: a norm's weight, bias or running statistics."""
    if value is None:
        return None
    if not isinstance(value, mx.array):
        raise TypeError(f"`{name}` must be an mlx.core.array or None, got {type(value).__name__}")
    if tuple(value.shape) != (length,):
        raise ValueError(f"`{name}` must have shape ({length},) {what}, "
                         f"got shape {tuple(value.shape)}")
    _check_float(value, name)  # integer statistics would be truncated silently
    return value


def _check_float(value: mx.array, name: str) -> None:
    # float64 runs only on MLX's CPU backend; refusing it everywhere keeps a
    # model that works on the CPU from failing inside MLX on the GPU.
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"`{name}` must be float32, float16 or bfloat16, got {value.dtype}")
