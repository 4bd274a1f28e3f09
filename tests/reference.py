"""An independent NumPy oracle for conv3d and pad, written for clarity.

Everything here is float64 NumPy, NCDHW, with PyTorch's weight layout
(C_out, C_in/groups, KD, KH, KW).  Nothing imports lucid_mlx or MLX.

The convolution is a direct summation over kernel offsets: for each group
and each offset (kd, kh, kw) the strided window of the zero-padded input is
contracted with that tap of the kernel.  The three gradients are written out
on their own, not derived from the forward code:

* ``grad_input`` scatters each tap's contribution back into the padded input
  and crops the padding off (the adjoint, written as loops over taps);
* ``grad_weight`` correlates the output gradient with each window;
* ``grad_bias`` sums the output gradient over everything but channels.

``pad_ref`` is ``np.pad`` ('constant', 'reflect', 'edge', 'wrap' for
PyTorch's 'constant', 'reflect', 'replicate', 'circular') applied with
PyTorch's ordering (last dimension first); ``pad_grad_ref`` is its adjoint,
built from the index each output element is read from.
"""

from __future__ import annotations

from itertools import product

import numpy as np

Pairs = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


# ---------------------------------------------------------------------------
# Arguments


def triple(value) -> tuple[int, int, int]:
    if isinstance(value, int):
        return (value,) * 3
    assert len(value) == 3
    return tuple(int(v) for v in value)  # type: ignore[return-value]


def padding_pairs(padding, kernel_size, dilation) -> Pairs:
    """PyTorch's padding as (low, high) per spatial dim.

    'same' pads ``dilation*(k-1)`` in total; PyTorch puts the odd element on
    the high side (``_convolution_mode`` pads the right by the difference).
    """
    kernel_size, dilation = triple(kernel_size), triple(dilation)
    if padding == "valid":
        return ((0, 0),) * 3  # type: ignore[return-value]
    if padding == "same":
        pairs = []
        for k, d in zip(kernel_size, dilation):
            total = d * (k - 1)
            pairs.append((total // 2, total - total // 2))
        return tuple(pairs)  # type: ignore[return-value]
    return tuple((p, p) for p in triple(padding))  # type: ignore[return-value]


def output_size(size: int, k: int, s: int, d: int, lo: int, hi: int) -> int:
    return (size + lo + hi - d * (k - 1) - 1) // s + 1


def _window(start: int, stride: int, count: int) -> slice:
    return slice(start, start + stride * (count - 1) + 1, stride)


def _geometry(x_shape, w_shape, stride, pairs, dilation):
    stride, dilation = triple(stride), triple(dilation)
    kernel = w_shape[2:]
    out = tuple(
        output_size(n, k, s, d, lo, hi)
        for n, k, s, d, (lo, hi) in zip(x_shape[2:], kernel, stride, dilation, pairs)
    )
    assert all(o >= 1 for o in out), f"empty output {out}"
    return stride, dilation, kernel, out


def _taps(kernel, stride, dilation, out):
    """For each kernel offset, the slices it reads from the padded input."""
    for kd, kh, kw in product(*(range(k) for k in kernel)):
        window = tuple(
            _window(k * d, s, o)
            for k, d, s, o in zip((kd, kh, kw), dilation, stride, out)
        )
        yield (kd, kh, kw), window


def _groups(c_in: int, c_out: int, groups: int):
    assert c_in % groups == 0 and c_out % groups == 0
    ci, co = c_in // groups, c_out // groups
    for g in range(groups):
        yield slice(g * ci, (g + 1) * ci), slice(g * co, (g + 1) * co)


def _zero_pad(x: np.ndarray, pairs: Pairs) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pairs), mode="constant")


# ---------------------------------------------------------------------------
# conv3d and its gradients


def conv3d_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """y[n, o, z, y, x] = b[o] + sum_{c in group(o), taps} xp[n, c, window] * w[o, c, tap]."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    pairs = padding if _is_pairs(padding) else padding_pairs(padding, w.shape[2:], dilation)
    stride, dilation, kernel, out = _geometry(x.shape, w.shape, stride, pairs, dilation)
    assert x.shape[1] == w.shape[1] * groups
    xp = _zero_pad(x, pairs)
    y = np.zeros((x.shape[0], w.shape[0]) + out)
    for cin, cout in _groups(x.shape[1], w.shape[0], groups):
        for tap, window in _taps(kernel, stride, dilation, out):
            patch = xp[(slice(None), cin) + window]
            y[:, cout] += np.einsum("ncdhw,oc->nodhw", patch, w[(cout, slice(None)) + tap])
    if b is not None:
        y += np.asarray(b, np.float64).reshape(1, -1, 1, 1, 1)
    return y


def conv3d_grad_input_ref(gy, x_shape, w, stride=1, padding=0, dilation=1, groups=1):
    """Scatter every output gradient back through each tap, then crop the padding."""
    gy = np.asarray(gy, np.float64)
    w = np.asarray(w, np.float64)
    pairs = padding if _is_pairs(padding) else padding_pairs(padding, w.shape[2:], dilation)
    stride, dilation, kernel, out = _geometry(x_shape, w.shape, stride, pairs, dilation)
    assert gy.shape[2:] == out
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(x_shape[2:], pairs))
    gxp = np.zeros(tuple(x_shape[:2]) + padded)
    for cin, cout in _groups(x_shape[1], w.shape[0], groups):
        for tap, window in _taps(kernel, stride, dilation, out):
            contribution = np.einsum(
                "nodhw,oc->ncdhw", gy[:, cout], w[(cout, slice(None)) + tap]
            )
            gxp[(slice(None), cin) + window] += contribution
    crop = tuple(slice(lo, lo + n) for n, (lo, _) in zip(x_shape[2:], pairs))
    return gxp[(slice(None), slice(None)) + crop]


def conv3d_grad_weight_ref(gy, x, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """gw[o, c, tap] = sum over batch and output positions of gy * input window."""
    gy = np.asarray(gy, np.float64)
    x = np.asarray(x, np.float64)
    pairs = padding if _is_pairs(padding) else padding_pairs(padding, w_shape[2:], dilation)
    stride, dilation, kernel, out = _geometry(x.shape, w_shape, stride, pairs, dilation)
    xp = _zero_pad(x, pairs)
    gw = np.zeros(tuple(w_shape))
    for cin, cout in _groups(x.shape[1], w_shape[0], groups):
        for tap, window in _taps(kernel, stride, dilation, out):
            patch = xp[(slice(None), cin) + window]
            gw[(cout, slice(None)) + tap] = np.einsum("nodhw,ncdhw->oc", gy[:, cout], patch)
    return gw


def conv3d_grad_bias_ref(gy) -> np.ndarray:
    return np.asarray(gy, np.float64).sum(axis=(0, 2, 3, 4))


def conv3d_grads_ref(gy, x, w, stride=1, padding=0, dilation=1, groups=1, bias=True):
    """(grad_input, grad_weight, grad_bias or None) for cotangent ``gy``."""
    gx = conv3d_grad_input_ref(gy, np.shape(x), w, stride, padding, dilation, groups)
    gw = conv3d_grad_weight_ref(gy, x, np.shape(w), stride, padding, dilation, groups)
    gb = conv3d_grad_bias_ref(gy) if bias else None
    return gx, gw, gb


def conv3d_naive(x, w, b=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """The definition, one scalar at a time: only for checking the oracle on tiny shapes."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    pairs = padding if _is_pairs(padding) else padding_pairs(padding, w.shape[2:], dilation)
    stride, dilation, kernel, out = _geometry(x.shape, w.shape, stride, pairs, dilation)
    n_batch, c_in = x.shape[:2]
    c_out, c_in_g = w.shape[:2]
    c_out_g = c_out // groups
    y = np.zeros((n_batch, c_out) + out)
    for n, o, z, r, c in product(range(n_batch), range(c_out), *(range(s) for s in out)):
        g = o // c_out_g
        total = 0.0 if b is None else float(b[o])
        for ci, kd, kh, kw in product(range(c_in_g), *(range(k) for k in kernel)):
            idx = []
            for pos, s, k, d, (lo, _), size in zip(
                (z, r, c), stride, (kd, kh, kw), dilation, pairs, x.shape[2:]
            ):
                idx.append(pos * s + k * d - lo)
            if all(0 <= i < size for i, size in zip(idx, x.shape[2:])):
                total += x[n, g * c_in_g + ci, idx[0], idx[1], idx[2]] * w[o, ci, kd, kh, kw]
        y[n, o, z, r, c] = total
    return y


def _is_pairs(padding) -> bool:
    return (
        isinstance(padding, tuple)
        and len(padding) == 3
        and all(isinstance(p, tuple) and len(p) == 2 for p in padding)
    )


# ---------------------------------------------------------------------------
# pad and its adjoint

_NP_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _torch_pad_to_pairs(ndim: int, pad) -> list[tuple[int, int]]:
    """PyTorch's flat pad tuple (last dim first) as np.pad's per-axis pairs."""
    assert len(pad) % 2 == 0 and len(pad) // 2 <= ndim
    pairs = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        pairs[ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return pairs


def pad_ref(x, pad, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    x = np.asarray(x, np.float64)
    pairs = _torch_pad_to_pairs(x.ndim, pad)
    if mode == "constant":
        return np.pad(x, pairs, mode="constant", constant_values=value)
    return np.pad(x, pairs, mode=_NP_MODE[mode])


def pad_source_index(size: int, lo: int, hi: int, mode: str) -> np.ndarray:
    """For each position of the padded axis, the input index it holds (-1: the fill value)."""
    positions = np.arange(-lo, size + hi)
    if mode == "constant":
        return np.where((positions >= 0) & (positions < size), positions, -1)
    if mode == "reflect":
        src = np.abs(positions)
        return np.where(src >= size, 2 * (size - 1) - src, src)
    if mode == "replicate":
        return np.clip(positions, 0, size - 1)
    if mode == "circular":
        return np.mod(positions, size)
    raise ValueError(mode)


def pad_grad_ref(gy, x_shape, pad, mode: str = "constant") -> np.ndarray:
    """The adjoint of ``pad_ref``: every padded element adds its gradient to its source."""
    g = np.asarray(gy, np.float64)
    pairs = _torch_pad_to_pairs(len(x_shape), pad)
    for axis, ((lo, hi), size) in enumerate(zip(pairs, x_shape)):
        if lo == 0 and hi == 0:
            continue
        src = pad_source_index(size, lo, hi, mode)
        # A (padded, size) selection matrix: row i has a 1 at src[i].
        select = np.zeros((len(src), size))
        rows = np.nonzero(src >= 0)[0]
        select[rows, src[rows]] = 1.0
        g = np.moveaxis(np.tensordot(np.moveaxis(g, axis, -1), select, axes=([-1], [0])), -1, axis)
    return g
