"""The shape arithmetic of one conv3d: output size, workspace cost and pieces.

Nothing here touches an array: every function takes shapes and byte counts
and returns integers, so the decisions of :mod:`.dispatch` can be read and
tested on their own.  What a strategy costs per output plane is the
strategy's own statement (its ``workspace`` function); this module adds the
part every strategy shares and sizes the pieces.

A piece is a chunk of the batch times a slab of output depth.  It reads the
input planes under its slab (its halo included) and gets its own depth
padding, so every piece is an ordinary, smaller convolution and the pieces
together give exactly the unsplit output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .._args import Pairs, Triple


def output_size(size: Triple, kernel: Triple, stride: Triple, pads: Pairs, dilation: Triple) -> Triple:
    """PyTorch's convolution output size for each of (D, H, W)."""
    return tuple(
        (n + lo + hi - d * (k - 1) - 1) // s + 1
        for n, k, s, (lo, hi), d in zip(size, kernel, stride, pads, dilation)
    )  # type: ignore[return-value]


def unfold_workspace(x_shape, w_shape, out_size: Triple, stride: Triple, dilation: Triple,
                     backward: bool, itemsize: int) -> tuple[int, int]:
    """Bytes a GEMM-based convolution unfolds per sample and output-depth plane (and per halo plane: none).

    The forward and the weight gradient hold KD*KH*KW*C_in values per output
    voxel, the input gradient KD*KH*KW*C_out per input voxel.  A backward
    piece holds both at once: 15 planes of the 1x32x64^3 layer measured 219
    MiB forward and 460 MiB backward.
    """
    c_in, h, w = x_shape[1], x_shape[3], x_shape[4]
    c_out, _, kd, kh, kw = w_shape
    taps = kd * kh * kw
    forward = taps * c_in * out_size[1] * out_size[2]
    elements = forward + taps * c_out * h * w * stride[0] if backward else forward
    return itemsize * elements, 0


class Pieces(NamedTuple):
    """Samples per batch chunk and planes per depth slab."""

    samples: int
    planes: int


class Split(NamedTuple):
    """How a call that exceeds the budget is cut.

    ``input_slabs`` is set when the input gradient is taken by input-depth
    slabs (a stride-1 dense convolution): its pieces count input planes.
    """

    forward: Pieces
    backward: Pieces
    input_slabs: Pieces | None


class Slab(NamedTuple):
    """Output planes [d0, d1) read input planes [a, b) with depth padding (pad_lo, pad_hi)."""

    d0: int
    d1: int
    a: int
    b: int
    pad_lo: int
    pad_hi: int


def _shared_workspace(x_shape, w_shape, out_size: Triple, stride: Triple) -> tuple[int, int]:
    """Elements every strategy holds per sample-plane, and per input plane of halo.

    The padded input copy under a plane and the output and cotangent slabs.
    """
    c_in, h, w = x_shape[1], x_shape[3], x_shape[4]
    per_plane = 2 * c_in * h * w * stride[0] + 3 * w_shape[0] * out_size[1] * out_size[2]
    return per_plane, 2 * c_in * h * w


def fit(x_shape, w_shape, out_size: Triple, stride: Triple, dilation: Triple,
        own: tuple[int, int], itemsize: int, limit: int | None, backward: bool = False) -> Pieces:
    """(samples per chunk, output planes per slab) within the budget ``limit``.

    ``own`` is what the strategy itself holds per sample: bytes per output
    plane, and bytes per input plane of a piece's halo.  A split call also holds its assembled results beside the pieces
    (the output, and in the backward the input gradient in float32 and its
    concatenation), so that much of the budget is set aside before sizing
    the pieces.
    """
    n, out_d = x_shape[0], out_size[0]
    if limit is None or n == 0 or out_d == 0:
        return Pieces(max(n, 1), max(out_d, 1))
    shared, in_plane = _shared_workspace(x_shape, w_shape, out_size, stride)
    per_plane = own[0] + itemsize * shared
    halo = (itemsize * in_plane + own[1]) * (w_shape[2] - 1) * dilation[0]

    def cost(samples: int, planes: int) -> int:
        return samples * (planes * per_plane + halo)

    if cost(n, out_d) <= limit:
        return Pieces(n, out_d)
    # The forward's pieces stay alive beside their concatenation while a
    # vjp is traced.
    assembly = itemsize * n * w_shape[0] * out_d * out_size[1] * out_size[2]
    if backward:
        assembly += 2 * itemsize * n * x_shape[1] * x_shape[2] * x_shape[3] * x_shape[4]
    limit = max(0, limit - assembly)
    if cost(1, out_d) <= limit:
        return Pieces(max(1, limit // cost(1, out_d)), out_d)
    planes = (limit - halo) // per_plane if limit > halo else 0
    return Pieces(1, max(1, min(out_d, planes)))


def covers(pieces: Pieces, n: int, out_d: int) -> bool:
    """Whether ``pieces`` is the whole call (no split)."""
    return pieces.samples >= n and pieces.planes >= out_d


def transposed_pads(w_shape, pads: Pairs, dilation: Triple) -> Pairs:
    """Padding of the cotangent whose flipped-kernel convolution is the input gradient."""
    reach = [d * (k - 1) for k, d in zip(w_shape[2:], dilation)]
    return tuple((r - lo, r - hi) for r, (lo, hi) in zip(reach, pads))  # type: ignore[return-value]


def chunks(n: int, samples: int) -> list[tuple[int, int]]:
    """Batch ranges [n0, n1) of at most ``samples`` samples."""
    return [(n0, min(n, n0 + samples)) for n0 in range(0, n, samples)]


def slabs(out_d: int, planes: int, depth: int, k: int, s: int, lo: int, dil: int) -> list[Slab]:
    """Depth slabs of at most ``planes`` output planes over an input of ``depth`` planes.

    Output planes whose windows see only padding, before and after the
    input, come as one slab each (``b <= a``), whatever their number: with
    ``padding=(2**20, 0, 0)`` that is two slabs, not two million.
    """
    reach = (k - 1) * dil
    first = min(out_d, max(0, -((reach - lo) // s)))  # first window reaching input plane 0
    last = max(first, min(out_d, (depth - 1 + lo) // s + 1))  # past the last window starting in it
    result = [Slab(0, first, 0, 0, 0, 0)] if first > 0 else []
    for d0 in range(first, last, planes):
        d1 = min(last, d0 + planes)
        start = d0 * s - lo
        stop = (d1 - 1) * s - lo + (k - 1) * dil + 1
        a, b = max(start, 0), min(stop, depth)
        result.append(Slab(d0, d1, a, b, a - start, stop - b))
    if last < out_d:
        result.append(Slab(last, out_d, depth, depth, 0, 0))
    return result
