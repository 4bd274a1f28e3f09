"""A convolution whose derivatives of every order come from three raw computations.

The memory-bounded paths (depthwise sums, the Metal kernels, the workspace
splitter) compute values in steps and copy them out of their graphs, so
autodiff cannot see through them: each is an ``mx.custom_function`` with a
written-out vjp.  A vjp that is itself a plain computation would make every
second derivative zero.  Instead the three maps of a convolution with fixed
geometry are each a custom function, and their derivatives are written in
terms of one another, which closes the set under differentiation:

* ``y = F(x, w)``, the convolution;
* ``gx = Bx(g, w)``, its input gradient, the adjoint of ``F(., w)``:
  ``<Bx(g, w), c> = <g, F(c, w)>``;
* ``gw = Bw(x, g)``, its weight gradient, the adjoint of ``F(x, .)``:
  ``<Bw(x, g), c> = <g, F(x, c)>``.

All three are bilinear, so from those identities:

* vjp of F at cotangent g: ``(Bx(g, w), Bw(x, g))``; jvp: ``F(tx, w) + F(x, tw)``;
* vjp of Bx at cotangent c: ``(F(c, w), Bw(c, g))``;
* vjp of Bw at cotangent c: ``(Bx(g, c), F(x, c))``.

First-order training calls only F and one combined ``G(x, w, g) = (Bx, Bw)``
(a path computes both gradients in one pass); second derivatives call the
others, each again memory-bounded.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import mlx.core as mx


class RawConv(NamedTuple):
    """The raw computations of one convolution geometry (values only; no graph needed).

    ``forward(x, w)``, ``grad_input(g, w)`` (input-shaped), ``grad_weight(x, g)``
    (weight-shaped) and ``grads(x, w, g) -> (gx, gw)``, the two gradients in
    one pass for first-order training.
    """

    forward: Callable[[mx.array, mx.array], mx.array]
    grad_input: Callable[[mx.array, mx.array], mx.array]
    grad_weight: Callable[[mx.array, mx.array], mx.array]
    grads: Callable[[mx.array, mx.array, mx.array], tuple[mx.array, mx.array]]


def _one(cotangent) -> mx.array:
    return cotangent[0] if isinstance(cotangent, (list, tuple)) else cotangent


def _cut(*arrays: mx.array) -> list[mx.array]:
    """The inputs of a raw computation, with no path for transformations to follow.

    MLX 0.32's jvp walks the graph inside a custom function before using its
    custom jvp, and its convolution has no jvp ("[Primitive::jvp] Not
    implemented for Convolution"); the written-out derivatives below stand
    for everything inside.
    """
    return [mx.stop_gradient(a) for a in arrays]


def _given(a: mx.array | None, like: mx.array) -> mx.array:
    """A (co)tangent MLX left out for an input or output that does not take part: zeros."""
    return mx.zeros_like(like) if a is None else a


def _bilinear_jvp(f):
    def jvp(primals, tangents):
        (a, b), (ta, tb) = primals, tangents
        return f(_given(ta, a), b) + f(a, _given(tb, b))

    return jvp


def differentiable(raw: RawConv) -> Callable[[mx.array, mx.array], mx.array]:
    """``F`` of ``raw`` as a function with correct derivatives of every order."""

    @mx.custom_function
    def conv(x, w):
        return raw.forward(*_cut(x, w))

    @mx.custom_function
    def grads(x, w, g):
        return raw.grads(*_cut(x, w, g))

    @mx.custom_function
    def grad_input(g, w):
        return raw.grad_input(*_cut(g, w))

    @mx.custom_function
    def grad_weight(x, g):
        return raw.grad_weight(*_cut(x, g))

    @conv.vjp
    def conv_vjp(primals, cotangent, output):
        x, w = primals
        return grads(x, w, _one(cotangent))

    @grads.vjp
    def grads_vjp(primals, cotangents, outputs):
        x, w, g = primals
        cx, cw = _given(cotangents[0], x), _given(cotangents[1], w)
        return grad_input(g, cw), grad_weight(cx, g), conv(cx, w) + conv(x, cw)

    @grads.jvp
    def grads_jvp(primals, tangents):
        (x, w, g), (tx, tw, tg) = primals, tangents
        tx, tw, tg = _given(tx, x), _given(tw, w), _given(tg, g)
        return [grad_input(tg, w) + grad_input(g, tw), grad_weight(tx, g) + grad_weight(x, tg)]

    @grad_input.vjp
    def grad_input_vjp(primals, cotangent, output):
        g, w = primals
        c = _one(cotangent)
        return conv(c, w), grad_weight(c, g)

    @grad_weight.vjp
    def grad_weight_vjp(primals, cotangent, output):
        x, g = primals
        c = _one(cotangent)
        return grad_input(g, c), conv(x, c)

    # Each map is bilinear: its jvp is f(ta, b) + f(a, tb).
    for f in (conv, grad_input, grad_weight):
        f.jvp(_bilinear_jvp(f))

    return conv


def convolve(x: mx.array, w: mx.array, geometry: tuple, forward, grad_input, grad_weight,
             grads) -> mx.array:
    """``forward(x, w, *geometry)`` with derivatives of every order from a path's raw functions.

    The functions take a path's signatures: ``grad_input(g, w, x_shape,
    *geometry)``, ``grad_weight(x, g, w_shape, *geometry)`` and ``grads(x, w, g,
    *geometry)``.
    """
    x_shape, w_shape = x.shape, w.shape
    return differentiable(RawConv(
        forward=lambda x, w: forward(x, w, *geometry),
        grad_input=lambda g, w: grad_input(g, w, x_shape, *geometry),
        grad_weight=lambda x, g: grad_weight(x, g, w_shape, *geometry),
        grads=lambda x, w, g: grads(x, w, g, *geometry),
    ))(x, w)
