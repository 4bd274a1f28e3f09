"""Bad input raises lucid_mlx's own ValueError or TypeError, matched by message.

Every message must name the argument and echo the value given (and the
shapes involved), and no MLX error text (``[conv] ...``, ``[pad] ...``) may
reach the user.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx.nn.functional as F
from lucid_mlx import nn


@contextmanager
def raises(exc, *parts: str):
    """``pytest.raises(exc, match=...)`` requiring every part, in any order."""
    pattern = "(?s)" + "".join(f"(?=.*{re.escape(p)})" for p in parts)
    with pytest.raises(exc, match=pattern) as info:
        yield info
    message = str(info.value)
    assert "[conv" not in message, f"MLX error text leaked: {message}"
    assert not re.match(r"\s*\[\w+\]", message), f"MLX error text leaked: {message}"


X = mx.zeros((1, 2, 5, 5, 5))
W = mx.zeros((4, 2, 3, 3, 3))


# ---------------------------------------------------------------------------
# Rank


@pytest.mark.parametrize("shape", [(2, 5, 5), (5,), (1, 1, 2, 5, 5, 5)], ids=str)
def test_input_of_wrong_rank(shape):
    x = mx.zeros(shape)
    with raises(ValueError, "input", str(shape)):
        F.conv3d(x, W)
    with raises(ValueError, "input", str(shape)):
        nn.Conv3d(2, 4, 3)(x)


@pytest.mark.parametrize("shape", [(4, 2, 3, 3), (4, 2, 3, 3, 3, 1), (4,)], ids=str)
def test_weight_of_wrong_rank(shape):
    with raises(ValueError, "weight", str(shape)):
        F.conv3d(X, mx.zeros(shape))


# ---------------------------------------------------------------------------
# Channels and groups


def test_input_channels_do_not_match_weight():
    x = mx.zeros((1, 3, 5, 5, 5))
    with raises(ValueError, "input", "(1, 3, 5, 5, 5)", "weight", "(4, 2, 3, 3, 3)"):
        F.conv3d(x, W)


def test_input_channels_do_not_match_in_channels():
    x = mx.zeros((1, 3, 5, 5, 5))
    with raises(ValueError, "input", "(1, 3, 5, 5, 5)", "2"):
        nn.Conv3d(2, 4, 3)(x)


def test_input_channels_do_not_match_weight_times_groups():
    # weight (4, 2, ...) with groups=2 expects 4 input channels.
    with raises(ValueError, "input", "(1, 2, 5, 5, 5)", "groups", "4"):
        F.conv3d(X, W, groups=2)


@pytest.mark.parametrize(
    "c_in, c_out, groups, name, value",
    [(5, 4, 2, "in_channels", "5"), (4, 5, 2, "out_channels", "5"), (2, 4, 4, "in_channels", "2"),
     (6, 9, 6, "out_channels", "9")],
)
def test_groups_must_divide_the_channel_counts(c_in, c_out, groups, name, value):
    with raises(ValueError, name, value, "groups", str(groups)):
        nn.Conv3d(c_in, c_out, 3, groups=groups)


def test_groups_must_divide_the_weight_out_channels():
    x = mx.zeros((1, 4, 5, 5, 5))
    with raises(ValueError, "groups", "5"):
        F.conv3d(x, mx.zeros((5, 2, 3, 3, 3)), groups=2)


# ---------------------------------------------------------------------------
# Integer arguments: zero, negative, wrongly sized, not ints

BAD_TRIPLES = [
    (0, ValueError),
    (-1, ValueError),
    ((1, 1), ValueError),
    ((1, 1, 1, 1), ValueError),
    ((1, 0, 1), ValueError),
    (1.5, TypeError),
    ((1, 2.0, 1), TypeError),
    ("2", TypeError),
    (None, TypeError),
    (True, TypeError),
]


def _ids(cases):
    return [f"{v!r}" for v, _ in cases]


@pytest.mark.parametrize("value, exc", BAD_TRIPLES, ids=_ids(BAD_TRIPLES))
@pytest.mark.parametrize("name", ["stride", "dilation"])
def test_bad_stride_and_dilation(name, value, exc):
    with raises(exc, name, repr(value)):
        nn.Conv3d(2, 4, 3, **{name: value})
    with raises(exc, name, repr(value)):
        F.conv3d(X, W, **{name: value})


@pytest.mark.parametrize("value, exc", BAD_TRIPLES, ids=_ids(BAD_TRIPLES))
def test_bad_kernel_size(value, exc):
    with raises(exc, "kernel_size", repr(value)):
        nn.Conv3d(2, 4, value)


@pytest.mark.parametrize("shape", [(4, 2, 0, 3, 3), (0, 2, 3, 3, 3)], ids=str)
def test_weight_with_an_empty_dimension(shape):
    with raises(ValueError, "weight", str(shape)):
        F.conv3d(X, mx.zeros(shape))


BAD_PADDING = [
    (-1, ValueError),
    ((1, -1, 0), ValueError),
    ((1, 1), ValueError),
    ((1, 1, 1, 1, 1, 1), ValueError),
    (1.5, TypeError),
    ((0, 1.0, 0), TypeError),
    (None, TypeError),
]


@pytest.mark.parametrize("value, exc", BAD_PADDING, ids=_ids(BAD_PADDING))
def test_bad_padding(value, exc):
    with raises(exc, "padding", repr(value)):
        nn.Conv3d(2, 4, 3, padding=value)
    with raises(exc, "padding", repr(value)):
        F.conv3d(X, W, padding=value)


@pytest.mark.parametrize("value", ["full", "SAME", "Valid", ""])
def test_unknown_padding_string(value):
    with raises(ValueError, "padding", repr(value), "same", "valid"):
        nn.Conv3d(2, 4, 3, padding=value)
    with raises(ValueError, "padding", repr(value), "same", "valid"):
        F.conv3d(X, W, padding=value)


@pytest.mark.parametrize("value, exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError), (None, TypeError),
                                        ((1,), TypeError)], ids=repr)
def test_bad_groups(value, exc):
    with raises(exc, "groups", repr(value)):
        nn.Conv3d(2, 4, 3, groups=value)
    with raises(exc, "groups", repr(value)):
        F.conv3d(X, W, groups=value)


@pytest.mark.parametrize("name", ["in_channels", "out_channels"])
@pytest.mark.parametrize("value, exc", [(0, ValueError), (-3, ValueError), (2.0, TypeError), ("4", TypeError),
                                        (None, TypeError)], ids=repr)
def test_bad_channel_counts(name, value, exc):
    kwargs = {"in_channels": 2, "out_channels": 4, name: value}
    with raises(exc, name, repr(value)):
        nn.Conv3d(kernel_size=3, **kwargs)


# ---------------------------------------------------------------------------
# Padding modes and 'same'


@pytest.mark.parametrize("value", ["mirror", "zero", "constant", "Reflect", "reflection"])
def test_unknown_padding_mode(value):
    with raises(ValueError, "padding_mode", repr(value), "zeros", "reflect", "replicate", "circular"):
        nn.Conv3d(2, 4, 3, padding_mode=value)


@pytest.mark.parametrize("stride", [2, (1, 2, 1), (1, 1, 3)], ids=str)
def test_same_padding_with_a_stride(stride):
    with raises(ValueError, "same", "stride"):
        nn.Conv3d(2, 4, 3, stride=stride, padding="same")
    with raises(ValueError, "same", "stride"):
        F.conv3d(X, W, stride=stride, padding="same")
    with raises(ValueError, "same", "stride"):
        nn.Conv3d(2, 4, 3, stride=stride, padding="same", padding_mode="reflect")


@pytest.mark.parametrize("pad", [(5, 0, 0, 0, 0, 0), (0, 0, 4, 1, 0, 0), (1, 1, 1, 1, 0, 3)], ids=str)
def test_reflect_padding_must_be_smaller_than_the_input(pad):
    x = mx.zeros((1, 2, 3, 4, 5))
    with raises(ValueError, "reflect", str(pad), "(1, 2, 3, 4, 5)"):
        F.pad(x, pad, mode="reflect")


def test_reflect_padding_mode_larger_than_the_input():
    conv = nn.Conv3d(2, 4, 3, padding=3, padding_mode="reflect")
    with raises(ValueError, "reflect", "(1, 2, 3, 6, 6)"):
        conv(mx.zeros((1, 2, 3, 6, 6)))


@pytest.mark.parametrize("pad", [(6, 0, 0, 0, 0, 0), (0, 0, 0, 0, 0, 4)], ids=str)
def test_circular_padding_must_not_exceed_the_input(pad):
    x = mx.zeros((1, 2, 3, 4, 5))
    with raises(ValueError, "circular", str(pad), "(1, 2, 3, 4, 5)"):
        F.pad(x, pad, mode="circular")


# ---------------------------------------------------------------------------
# Kernel larger than the padded input


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs",
    [
        ((1, 2, 2, 5, 5), (4, 2, 3, 3, 3), {}),
        ((1, 2, 5, 5, 4), (4, 2, 1, 1, 6), dict(padding=(0, 0, 0))),
        ((1, 2, 4, 4, 4), (4, 2, 2, 2, 2), dict(dilation=(1, 4, 1))),
        ((1, 2, 4, 4, 4), (4, 2, 5, 3, 3), dict(padding="valid")),
    ],
    ids=["kernel", "kernel_w", "dilated", "valid"],
)
def test_kernel_larger_than_the_padded_input(x_shape, w_shape, kwargs):
    with raises(ValueError, "kernel", str(tuple(w_shape[2:])), str(tuple(x_shape[2:]))):
        F.conv3d(mx.zeros(x_shape), mx.zeros(w_shape), **kwargs)


def test_kernel_larger_than_the_padded_input_module():
    conv = nn.Conv3d(2, 4, (1, 7, 1), padding=(0, 1, 0))
    with raises(ValueError, "kernel", "(1, 7, 1)", "(3, 4, 5)"):
        conv(mx.zeros((1, 2, 3, 4, 5)))


def test_padding_makes_a_kernel_fit():
    """The check uses the padded size: padding 1 lets a 3-kernel run on a size-1 input."""
    assert tuple(F.conv3d(mx.zeros((1, 2, 1, 1, 1)), W, padding=1).shape) == (1, 4, 1, 1, 1)


# ---------------------------------------------------------------------------
# Bias


@pytest.mark.parametrize("shape", [(5,), (3,), (4, 1), (1, 4), ()], ids=str)
def test_bias_of_the_wrong_shape(shape):
    with raises(ValueError, "bias", str(shape), "(4,)"):
        F.conv3d(X, W, mx.zeros(shape))
    conv = nn.Conv3d(2, 4, 3)
    conv.bias = mx.zeros(shape)
    with raises(ValueError, "bias", str(shape), "(4,)"):
        conv(X)


def test_bias_not_an_array():
    with raises(TypeError, "bias", "ndarray"):
        F.conv3d(X, W, np.zeros(4, np.float32))


# ---------------------------------------------------------------------------
# dtypes and types


@pytest.mark.parametrize("dtype", [mx.float64, mx.int32, mx.int8, mx.uint8, mx.bool_, mx.complex64], ids=str)
def test_module_dtype_must_be_a_supported_float(dtype):
    with raises(TypeError, "dtype", str(dtype).split(".")[-1]):
        nn.Conv3d(2, 4, 3, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, "float32", mx.float32.size], ids=repr)
def test_module_dtype_must_be_an_mlx_dtype(dtype):
    with raises(TypeError, "dtype", repr(dtype)):
        nn.Conv3d(2, 4, 3, dtype=dtype)


@pytest.mark.parametrize("dtype", [mx.float64, mx.int32, mx.uint8, mx.bool_], ids=str)
def test_non_float32_16_input_or_weight(dtype):
    name = str(dtype).split(".")[-1]
    with raises(TypeError, "input", name):
        F.conv3d(X.astype(dtype), W)
    with raises(TypeError, "weight", name):
        F.conv3d(X, W.astype(dtype))
    with raises(TypeError, "input", name):
        nn.Conv3d(2, 4, 3)(X.astype(dtype))


def test_mixed_input_and_weight_dtypes():
    with raises(TypeError, "input", "weight", "float16", "float32"):
        F.conv3d(X, W.astype(mx.float16))


@pytest.mark.parametrize("value", [np.zeros((1, 2, 5, 5, 5), np.float32), [[[[[0.0]]]]]], ids=["numpy", "list"])
def test_input_not_an_mlx_array(value):
    with raises(TypeError, "input", type(value).__name__):
        F.conv3d(value, W)
    with raises(TypeError, "input", type(value).__name__):
        nn.Conv3d(2, 4, 3)(value)
    with raises(TypeError, "weight", type(value).__name__):
        F.conv3d(X, value)


@pytest.mark.parametrize("value", ["tpu", "cuda:0", 0], ids=repr)
def test_unknown_device(value):
    with raises(ValueError, "device", repr(value)):
        nn.Conv3d(2, 4, 3, device=value)


# ---------------------------------------------------------------------------
# pad


@pytest.mark.parametrize("pad", [(1,), (1, 1, 1), (1,) * 12], ids=str)
def test_pad_length(pad):
    with raises(ValueError, "pad", str(pad)):
        F.pad(X, pad)


@pytest.mark.parametrize("pad", [(1, 1, 1, 1), (1, 1)], ids=str)
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_non_constant_pad_of_a_5d_input_takes_three_pairs(pad, mode):
    """PyTorch: 'Padding size 2 is not supported for 5D input tensor' for these modes."""
    with raises(ValueError, "(1, 2, 5, 5, 5)"):
        F.pad(X, pad, mode=mode)


@pytest.mark.parametrize("pad", [(1.5, 1, 0, 0, 0, 0), 1, "1", None], ids=repr)
def test_pad_must_be_ints(pad):
    with raises(TypeError, "pad", repr(pad)):
        F.pad(X, pad)


@pytest.mark.parametrize("mode", ["zeros", "edge", "wrap", "symmetric", "Reflect"])
def test_unknown_pad_mode(mode):
    with raises(ValueError, "mode", repr(mode)):
        F.pad(X, (1,) * 6, mode=mode)


def test_non_constant_mode_takes_no_value():
    with raises(ValueError, "value", "reflect"):
        F.pad(X, (1,) * 6, mode="reflect", value=1.0)


def test_pad_input_not_an_array():
    with raises(TypeError, "input", "ndarray"):
        F.pad(np.zeros((1, 1, 2, 2, 2)), (1,) * 6)
