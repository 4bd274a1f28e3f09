"""Independent NumPy references for the 3-D toolkit layers, written for clarity.

Each reference loops over output elements the way the definition reads (no
separability, no gathers: the opposite of how lucid_mlx computes them) and
returns its vector-Jacobian product alongside, so tests can compare
gradients too.  Inputs are float64 (N, C, D, H, W).
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def _out_len(n, k, s, p, d, ceil_mode):
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _boxes(sizes, k, s, p, d, ceil_mode):
    """Yield (output position, list of input positions inside the window)."""
    outs = [_out_len(n, *a, ceil_mode) for n, a in zip(sizes, zip(k, s, p, d))]
    for o in itertools.product(*map(range, outs)):
        axes = []
        for i, n, ki, si, pi, di in zip(o, sizes, k, s, p, d):
            axes.append([i * si - pi + j * di for j in range(ki)])
        yield o, outs, axes


def _scatter_to_indices(shape, idx):
    """The vjp of a max pool: each output's gradient goes to the flat (D, H, W) index it chose."""
    n, c = shape[:2]

    def vjp(g):
        dx = np.zeros(shape)
        flat = dx.reshape(n, c, -1)
        for b in range(n):
            for ch in range(c):
                np.add.at(flat[b, ch], idx[b, ch].ravel(), g[b, ch].ravel())
        return dx

    return vjp


def max_pool3d(x, k, s, p, d, ceil_mode):
    """Returns (y, flat indices, vjp(g) -> dx); the first maximum in (d, h, w) order wins."""
    n, c, *sizes = x.shape
    windows = list(_boxes(sizes, k, s, p, d, ceil_mode))
    outs = windows[0][1]
    y = np.empty((n, c, *outs))
    idx = np.empty((n, c, *outs), np.int64)
    for b in range(n):
        for ch in range(c):
            for o, _, axes in windows:
                best, where = -np.inf, None
                for pos in itertools.product(*axes):
                    if all(0 <= q < m for q, m in zip(pos, sizes)):
                        v = x[b, ch, pos[0], pos[1], pos[2]]
                        if v > best or where is None:
                            best, where = v, pos
                y[(b, ch, *o)] = best
                idx[(b, ch, *o)] = (where[0] * sizes[1] + where[1]) * sizes[2] + where[2]

    return y, idx, _scatter_to_indices(x.shape, idx)


def avg_pool3d(x, k, s, p, ceil_mode, count_include_pad, divisor_override):
    """Returns (y, vjp); PyTorch's divisor rule spelled out per window."""
    n, c, *sizes = x.shape
    windows = list(_boxes(sizes, k, s, p, (1, 1, 1), ceil_mode))
    outs = windows[0][1]
    plan = []
    for o, _, axes in windows:
        inside = [pos for pos in itertools.product(*axes)
                  if all(0 <= q < m for q, m in zip(pos, sizes))]
        if divisor_override is not None:
            div = divisor_override
        elif count_include_pad:
            # Window clipped to the padded extent [-p, n + p): the ceil_mode
            # overhang beyond the right padding is not counted.
            div = math.prod(min(a[0] + ki, m + pi) - a[0]
                            for a, ki, m, pi in zip(axes, k, sizes, p))
        else:
            div = len(inside)
        plan.append((o, inside, div))
    y = np.zeros((n, c, *outs))
    for o, inside, div in plan:
        for pos in inside:
            y[(slice(None), slice(None), *o)] += x[(slice(None), slice(None), *pos)]
        y[(slice(None), slice(None), *o)] /= div

    def vjp(g):
        dx = np.zeros(x.shape)
        for o, inside, div in plan:
            for pos in inside:
                dx[(slice(None), slice(None), *pos)] += g[(slice(None), slice(None), *o)] / div
        return dx

    return y, vjp


def _adaptive_axes(sizes, outs):
    for o in itertools.product(*map(range, outs)):
        yield o, [range(math.floor(i * m / q), math.ceil((i + 1) * m / q))
                  for i, m, q in zip(o, sizes, outs)]


def adaptive_avg_pool3d(x, outs):
    n, c, *sizes = x.shape
    plan = [(o, list(itertools.product(*axes))) for o, axes in _adaptive_axes(sizes, outs)]
    y = np.zeros((n, c, *outs))
    for o, box in plan:
        y[(slice(None), slice(None), *o)] = np.mean([x[:, :, a, b, e] for a, b, e in box], axis=0)

    def vjp(g):
        dx = np.zeros(x.shape)
        for o, box in plan:
            for a, b, e in box:
                dx[:, :, a, b, e] += g[(slice(None), slice(None), *o)] / len(box)
        return dx

    return y, vjp


def adaptive_max_pool3d(x, outs):
    n, c, *sizes = x.shape
    y = np.empty((n, c, *outs))
    idx = np.empty((n, c, *outs), np.int64)
    for o, axes in _adaptive_axes(sizes, outs):
        for b in range(n):
            for ch in range(c):
                box = list(itertools.product(*axes))
                vals = [x[b, ch, a, h, w] for a, h, w in box]
                j = int(np.argmax(vals))  # first maximum
                a, h, w = box[j]
                y[(b, ch, *o)] = vals[j]
                idx[(b, ch, *o)] = (a * sizes[1] + h) * sizes[2] + w

    return y, idx, _scatter_to_indices(x.shape, idx)


# ------------------------------------------------------------------ normalisation

def normalise(x, axes, eps, weight=None, bias=None, channel_axis=1):
    """Standardise over ``axes`` (biased variance), then scale and shift per channel.

    Returns (y, batch mean, unbiased batch variance, vjp(g) -> (dx, dweight, dbias)).
    The input gradient is the textbook one: with x_hat the standardised input
    and h = g * weight, dx = (h - mean(h) - x_hat * mean(h * x_hat)) / sqrt(var + eps).
    """
    count = np.prod([x.shape[a] for a in axes])
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv
    shape = [1] * x.ndim
    shape[channel_axis] = x.shape[channel_axis]
    w = np.ones(shape) if weight is None else np.reshape(weight, shape)
    b = np.zeros(shape) if bias is None else np.reshape(bias, shape)
    y = x_hat * w + b
    others = tuple(a for a in range(x.ndim) if a != channel_axis)

    def vjp(g):
        h = g * w
        dx = (h - h.mean(axis=axes, keepdims=True)
              - x_hat * (h * x_hat).mean(axis=axes, keepdims=True)) * inv
        return dx, (g * x_hat).sum(axis=others), g.sum(axis=others)

    return y, mean, var * count / (count - 1), vjp


def batch_norm(x, eps, weight=None, bias=None):
    return normalise(x, (0, 2, 3, 4), eps, weight, bias)


def instance_norm(x, eps, weight=None, bias=None):
    return normalise(x, tuple(range(2, x.ndim)), eps, weight, bias)


def group_norm(x, groups, eps, weight=None, bias=None):
    n, c = x.shape[:2]
    grouped = x.reshape(n, groups, c // groups, -1)
    y, _, _, vjp_g = normalise(grouped, (2, 3), eps)
    shape = (1, c) + (1,) * (x.ndim - 2)
    w = np.ones(shape) if weight is None else np.reshape(weight, shape)
    b = np.zeros(shape) if bias is None else np.reshape(bias, shape)
    x_hat = y.reshape(x.shape)
    others = tuple(a for a in range(x.ndim) if a != 1)

    def vjp(g):
        dx = vjp_g((g * w).reshape(grouped.shape))[0].reshape(x.shape)
        return dx, (g * x_hat).sum(axis=others), g.sum(axis=others)

    return x_hat * w + b, vjp


# ------------------------------------------------------------------ interpolation

def _source_positions(n_in, n_out, scale_factor, mode, align_corners):
    """For each output index: list of (input index, weight), from PyTorch's docs.

    Scales are float32 like PyTorch's kernels (1/scale_factor when given, else
    in/out), so floor() rounds the same way.
    """
    s = np.float32(1.0 / scale_factor) if scale_factor else np.float32(n_in) / np.float32(n_out)
    result = []
    for i in range(n_out):
        if mode == "nearest":
            result.append([(min(int(np.floor(np.float32(i) * s)), n_in - 1), 1.0)])
        elif mode == "nearest-exact":
            result.append([(min(int(np.floor(np.float32((i + 0.5) * s))), n_in - 1), 1.0)])
        elif n_in == n_out:  # linear: PyTorch copies an axis that keeps its size
            result.append([(i, 1.0)])
        else:
            if align_corners:
                src = np.float32(i) * (np.float32(n_in - 1) / np.float32(n_out - 1)) if n_out > 1 else 0.0
            else:
                src = max(float(s * np.float32(i + 0.5) - np.float32(0.5)), 0.0)
            lo = min(int(np.floor(src)), n_in - 1)
            hi = min(lo + 1, n_in - 1)
            frac = min(max(src - lo, 0.0), 1.0)
            result.append([(lo, 1.0 - frac), (hi, frac)])
    return result


def interpolate(x, out, scale_factors, mode, align_corners=False):
    """Resize (N, C, *spatial) input; scale_factors is a list (None entries: use in/out).

    Returns (y, vjp). Each output voxel is the product-weighted sum over the
    corners of its source cell (2^d corners for linear, 1 for nearest).
    """
    spatial = x.shape[2:]
    per_axis = [_source_positions(n, o, s, mode.replace("bi", "").replace("tri", ""), align_corners)
                for n, o, s in zip(spatial, out, scale_factors)]
    plan = []
    for o in itertools.product(*map(range, out)):
        corners = []
        for choice in itertools.product(*[per_axis[a][o[a]] for a in range(len(out))]):
            corners.append((tuple(c[0] for c in choice), math.prod(c[1] for c in choice)))
        plan.append((o, corners))
    y = np.zeros((*x.shape[:2], *out))
    for o, corners in plan:
        for pos, w in corners:
            y[(slice(None), slice(None), *o)] += w * x[(slice(None), slice(None), *pos)]

    def vjp(g):
        dx = np.zeros(x.shape)
        for o, corners in plan:
            for pos, w in corners:
                dx[(slice(None), slice(None), *pos)] += w * g[(slice(None), slice(None), *o)]
        return dx

    return y, vjp


# ------------------------------------------------------------------ transposed convolution

def conv_transpose3d(x, w, bias, stride, padding, output_padding, groups, dilation):
    """Scatter definition: input voxel i adds x[i] * w[k] to output i*s - p + k*d.

    x (N, C_in, D, H, W), w (C_in, C_out/groups, KD, KH, KW). Returns
    (y, vjp(g) -> (dx, dw, dbias)).
    """
    n, c_in = x.shape[:2]
    c_out_g, ks = w.shape[1], w.shape[2:]
    c_in_g = c_in // groups
    sizes = [(m - 1) * s - 2 * p + d * (k - 1) + op + 1
             for m, k, s, p, op, d in zip(x.shape[2:], ks, stride, padding, output_padding, dilation)]
    taps = []  # (input position, kernel offset, output position)
    for i in itertools.product(*map(range, x.shape[2:])):
        for k in itertools.product(*map(range, ks)):
            o = tuple(ii * s - p + kk * d for ii, kk, s, p, d in zip(i, k, stride, padding, dilation))
            if all(0 <= oo < m for oo, m in zip(o, sizes)):
                taps.append((i, k, o))
    y = np.zeros((n, c_out_g * groups, *sizes))
    for g in range(groups):
        cin = slice(g * c_in_g, (g + 1) * c_in_g)
        cout = slice(g * c_out_g, (g + 1) * c_out_g)
        for i, k, o in taps:
            # (N, C_in_g) @ (C_in_g, C_out_g)
            y[(slice(None), cout, *o)] += x[(slice(None), cin, *i)] @ w[(cin, slice(None), *k)]
    if bias is not None:
        y += np.reshape(bias, (1, -1, 1, 1, 1))

    def vjp(gy):
        dx, dw = np.zeros(x.shape), np.zeros(w.shape)
        for g in range(groups):
            cin = slice(g * c_in_g, (g + 1) * c_in_g)
            cout = slice(g * c_out_g, (g + 1) * c_out_g)
            for i, k, o in taps:
                go = gy[(slice(None), cout, *o)]
                dx[(slice(None), cin, *i)] += go @ w[(cin, slice(None), *k)].T
                dw[(cin, slice(None), *k)] += x[(slice(None), cin, *i)].T @ go
        return dx, dw, gy.sum(axis=(0, 2, 3, 4))

    return y, vjp
