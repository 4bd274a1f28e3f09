"""lucid_mlx._args through the public API: NumPy scalars are taken where PyTorch
takes them, bools never, and a numpy argument gives the same layer as a Python one."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import lucid_mlx.nn.functional as F
from lucid_mlx import _args, nn

X = mx.random.normal((1, 2, 6, 6, 6), key=mx.random.key(0))
W = mx.random.normal((4, 2, 3, 3, 3), key=mx.random.key(1))
WT = mx.random.normal((2, 3, 2, 2, 2), key=mx.random.key(2))


def _same(a, b) -> None:
    a, b = (a if isinstance(a, (tuple, list)) else [a]), (b if isinstance(b, (tuple, list)) else [b])
    for u, v in zip(a, b):
        np.testing.assert_array_equal(np.array(u), np.array(v))


# Each call takes a converter for its int (i) and float (f) arguments.
CALLS = {
    "conv3d": lambda i, f: F.conv3d(X, W, None, i(2), i(1), (i(1), 1, i(2)), i(1)),
    "conv_transpose3d": lambda i, f: F.conv_transpose3d(X, WT, None, i(2), i(1), i(1), i(1), i(1)),
    "pad": lambda i, f: F.pad(X, (i(1), i(2), 0, i(1), i(-1), 1), value=f(1.5)),
    "pad reflect": lambda i, f: F.pad(X, (i(1), i(2), 0, i(1), i(-1), 1), mode="reflect"),
    "max_pool3d": lambda i, f: F.max_pool3d(X, i(3), (i(2), 1, 2), i(1), i(1), False, True),
    "avg_pool3d": lambda i, f: F.avg_pool3d(X, (i(2), 3, 2), None, (0, i(1), 0), divisor_override=i(3)),
    "adaptive_avg_pool3d": lambda i, f: F.adaptive_avg_pool3d(X, (i(4), None, i(3))),
    "adaptive_max_pool3d": lambda i, f: F.adaptive_max_pool3d(X, i(4)),
    "batch_norm": lambda i, f: F.batch_norm(X, None, None, training=True, momentum=f(0.2), eps=f(1e-3)),
    "instance_norm": lambda i, f: F.instance_norm(X, eps=f(1e-3)),
    "group_norm": lambda i, f: F.group_norm(X, i(2), eps=f(1e-4)),
    "interpolate size": lambda i, f: F.interpolate(X, size=(i(7), 5, i(9)), mode="trilinear"),
    "interpolate scale": lambda i, f: F.interpolate(X, scale_factor=(f(1.5), 2, f(0.5))),
    "dropout3d": lambda i, f: F.dropout3d(X, f(0.5), key=mx.random.key(3)),
    "Conv3d": lambda i, f: _seeded(lambda: nn.Conv3d(i(2), i(4), i(3), i(2), i(1), groups=i(2))(X)),
    "ConvTranspose3d": lambda i, f: _seeded(lambda: nn.ConvTranspose3d(i(2), i(3), (i(2), 2, 3), i(2),
                                                                       output_padding=i(1))(X)),
    "MaxPool3d": lambda i, f: nn.MaxPool3d(i(2), padding=i(1))(X),
    "AvgPool3d": lambda i, f: nn.AvgPool3d((i(3), 2, 2), i(1), divisor_override=i(2))(X),
    "AdaptiveMaxPool3d": lambda i, f: nn.AdaptiveMaxPool3d((None, i(2), 3))(X),
    "BatchNorm3d": lambda i, f: nn.BatchNorm3d(i(2), eps=f(1e-3), momentum=f(0.3))(X),
    "InstanceNorm3d": lambda i, f: nn.InstanceNorm3d(i(2), eps=f(1e-3), affine=True)(X),
    "GroupNorm": lambda i, f: nn.GroupNorm(i(1), i(2), eps=f(1e-3))(X),
    "Upsample": lambda i, f: nn.Upsample(scale_factor=f(2.0), mode="nearest")(X),
    "Dropout3d": lambda i, f: nn.Dropout3d(f(0.0))(X),
}


def _seeded(make):
    mx.random.seed(0)
    return make()


@pytest.mark.parametrize("int_type, float_type", [(np.int64, np.float64), (np.int32, np.float32)],
                         ids=["64-bit", "32-bit"])
@pytest.mark.parametrize("name", list(CALLS))
def test_numpy_scalars_are_taken_as_python_numbers(name, int_type, float_type):
    want = CALLS[name](int, float)
    got = CALLS[name](int_type, float_type)
    _same(got, want)


@pytest.mark.parametrize("value", [True, np.bool_(True)], ids=repr)
@pytest.mark.parametrize(
    "call",
    [
        lambda b: F.conv3d(X, W, stride=b),
        lambda b: nn.Conv3d(2, 4, b),
        lambda b: F.pad(X, (b, 1)),
        lambda b: F.max_pool3d(X, 2, padding=(0, b, 0)),
        lambda b: nn.GroupNorm(b, 2),
        lambda b: F.batch_norm(X, None, None, training=True, eps=b),
        lambda b: F.dropout3d(X, p=b),
        lambda b: nn.Upsample(scale_factor=b),
        lambda b: F.pad(X, (1, 1), value=b),
    ],
    ids=["conv3d stride", "Conv3d kernel_size", "pad amount", "max_pool3d padding",
         "GroupNorm num_groups", "batch_norm eps", "dropout3d p", "Upsample scale_factor", "pad value"],
)
def test_bools_are_still_refused(call, value):
    with pytest.raises((TypeError, ValueError), match=r"`\w+`"):
        call(value)


def test_normalised_values_are_python_numbers():
    assert type(_args.check_int(np.int64(3), "n")) is int
    assert _args.triple(np.int32(2), "stride") == (2, 2, 2)
    assert all(type(v) is int for v in _args.triple((np.int64(1), 2, np.int32(3)), "stride"))
    assert type(_args.check_p(np.float32(0.25))) is float
    assert type(_args.check_eps(np.float16(1e-3))) is float
    assert _args.scale_factor((np.float32(1.5), 2)) == (1.5, 2.0)
    assert nn.Conv3d(np.int64(2), np.int64(4), np.int32(3)).kernel_size == (3, 3, 3)


# --- Huge sizes: refused up front, before MLX allocates or raises its own errors --------------

_X = mx.zeros((1, 4, 5, 5, 5))
_W = mx.zeros((4, 4, 3, 3, 3))

HUGE = [
    ("conv3d padding 2**31", lambda: F.conv3d(_X, _W, padding=2**31), r"`padding` must be within \+-\(2\*\*31 - 1\)"),
    ("conv3d stride 2**31", lambda: F.conv3d(_X, _W, stride=2**31), r"`stride` must be within"),
    ("conv3d dilation 2**40", lambda: F.conv3d(_X, _W, dilation=2**40), r"`dilation` must be within"),
    ("conv3d output beyond memory", lambda: F.conv3d(_X, _W, padding=(2**30, 2**30, 0)),
     r"the output of conv3d would have shape \(1, 4, 2147483651, 2147483651, 3\), with dimensions above"),
    ("Conv3d kernel 2**40", lambda: nn.Conv3d(4, 4, 2**40), r"`kernel_size` must be within"),
    ("Conv3d weight beyond memory", lambda: nn.Conv3d(4, 4, 2**12), r"the weight would have shape \(4, 4, 4096, 4096, 4096\)"),
    ("Conv3d channels 2**31", lambda: nn.Conv3d(2**31, 4, 1), r"`in_channels` must be within"),
    ("pad 2**40", lambda: F.pad(_X, (2**40, 0)), r"`pad` amounts must be within"),
    ("pad beyond memory", lambda: F.pad(_X, (2**30, 0), mode="constant"), r"the output of pad would have shape .* GiB\), more than this machine's memory"),
    ("ConvTranspose3d stride 2**40", lambda: nn.ConvTranspose3d(4, 4, 3, stride=2**40), r"`stride` must be within"),
    ("conv_transpose3d output", lambda: nn.ConvTranspose3d(4, 4, 3, stride=2**30)(_X), r"the output of conv_transpose3d would have shape"),
    ("max_pool3d kernel 2**40", lambda: F.max_pool3d(_X, 2**40), r"`kernel_size` must be within"),
]


@pytest.mark.parametrize("call, pattern", [case[1:] for case in HUGE], ids=[case[0] for case in HUGE])
def test_huge_sizes_are_refused_up_front(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_padding_only_planes_are_cheap():
    # 2 million output planes, all but 7 seeing only padding: two zero blocks, not a loop
    # over planes (it took minutes and gigabytes when each plane was its own piece).
    y = F.conv3d(mx.ones((1, 1, 5, 2, 2)), mx.ones((1, 1, 3, 1, 1)), padding=(2**20, 0, 0))
    assert y.shape == (1, 1, 2**21 + 3, 2, 2)
    assert float(y.sum()) == 4 * (1 + 2 + 3 + 3 + 3 + 2 + 1)
