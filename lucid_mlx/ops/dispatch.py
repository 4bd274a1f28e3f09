"""The one place that chooses between the Metal kernels and the portable path.

For every conv3d call :func:`conv3d_plan` returns one :class:`ConvPlan`:
which path runs the forward, how its gradients are taken, and how the
workspace budget cuts the call.  Dense layers take MLX's own convolution
(:mod:`.dense`).  A grouped layer takes the Metal kernel when all of these
hold, else the portable (pure MLX) strategy for its shape -- shifted-slice
sums for depthwise layers (:mod:`.depthwise`), one MLX convolution per group
otherwise (:mod:`.per_group`); padding takes the pad3d kernel or
:mod:`.pad` under the same rules:

* the backend switch allows it (see :func:`backend`);
* Metal is available and the default stream is on the GPU;
* the configuration is supported (:func:`conv_support`, :func:`pad_support`):
  float32/float16/bfloat16, non-empty, and fewer than 2**31 elements in every
  array, because the kernels index with 32-bit ints;
* no kernel has failed before in this process.

Each kernel specialisation (dtype, kernel size or mode) is built and run
once on a tiny input the first time it is needed, and the result evaluated:
MLX compiles a custom kernel lazily at evaluation, so this is the only point
where a Metal compile error can be caught before the user's graph depends on
it.  A failure there logs one ``RuntimeWarning`` naming the kernel and the
error and sends every later call of the process to the portable path.

The backend switch is the ``LUCID_MLX_KERNELS`` environment variable, read on
every call, or the :func:`use_backend` context manager, which wins over it:

* ``auto`` (default): kernels where they apply, portable elsewhere;
* ``portable``: never a kernel;
* ``metal``: a kernel for every call, with errors raised instead of falling
  back -- for debugging and benchmarks.  Unsupported configurations and a
  machine without Metal raise ``RuntimeError``.

The rules above are the default choice.  :func:`conv3d_plan` lists every
correct candidate of each role of a call (:mod:`.candidates`: the kernel
where the rules allow it, the portable strategies that fit the weight's
shape, the pieces the workspace budget allows) with the default first, and
with autotuning on (:mod:`.autotune`) the measured fastest replaces it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import warnings
from typing import Callable, Iterator, NamedTuple

import mlx.core as mx

from .. import _env, workspace
from . import autotune, candidates, dense, depthwise, pad, per_group, plan
from .derivatives import convolve

ENV_VAR = "LUCID_MLX_KERNELS"
BACKENDS = ("auto", "metal", "portable")
INDEX_LIMIT = 2**31
KERNEL_DTYPES = (mx.float32, mx.float16, mx.bfloat16)

# Per thread (and per asyncio task): one thread's ``use_backend`` never
# changes what another thread runs.
_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("lucid_mlx_backend", default=None)
_built: set[tuple] = set()
_failure: str | None = None


def _switch() -> tuple[str, str]:
    """The backend switch in force and where it was set, for error messages."""
    override = _override.get()
    if override is not None:
        return override, f"use_backend({override!r})"
    value = _env.read(ENV_VAR)
    if value is None:
        return "auto", "the default backend"
    if value.lower() not in BACKENDS:
        raise ValueError(f"environment variable {ENV_VAR} must be one of {BACKENDS}, got {value!r}")
    return value.lower(), f"{ENV_VAR}={value}"


def backend() -> str:
    """The backend switch in force: ``use_backend``'s, else the env var's."""
    return _switch()[0]


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Force ``'auto'``, ``'metal'`` or ``'portable'`` inside a ``with`` block.

    The override holds for the calling thread (and asyncio task) only, and
    the previous switch is restored exactly on exit.
    """
    if name not in BACKENDS:
        raise ValueError(f"`name` must be one of {BACKENDS}, got {name!r}")
    token = _override.set(name)
    try:
        yield
    finally:
        _override.reset(token)


def metal_available() -> bool:
    """Whether MLX has a Metal device (tests replace this)."""
    return mx.metal.is_available()


def stream_on_gpu() -> bool:
    """Whether the default stream, where the ops would run, is on the GPU."""
    return mx.default_device().type == mx.DeviceType.gpu


def reset() -> None:
    """Forget built kernels and any failure (for tests)."""
    global _failure
    _built.clear()
    _failure = None


def _too_large(*shapes) -> bool:
    return any(math.prod(s) >= INDEX_LIMIT for s in shapes)


def conv_support(x: mx.array, w: mx.array, out_shape) -> str | None:
    """Why the grouped conv kernels cannot take this call, or None if they can."""
    if x.dtype not in KERNEL_DTYPES or w.dtype != x.dtype:
        return f"dtypes {x.dtype}/{w.dtype} (kernels take one of float32, float16, bfloat16)"
    if 0 in x.shape or 0 in out_shape:
        return "an empty input or output"
    if _too_large(x.shape, w.shape, out_shape):
        return f"an array of 2**31 elements or more (input {x.shape}, output {tuple(out_shape)})"
    return None


def pad_support(x: mx.array, pairs, mode: str) -> str | None:
    """Why the pad3d kernels cannot take this call, or None if they can."""
    if x.ndim != 5 or x.dtype not in KERNEL_DTYPES:
        return f"a {x.ndim}-D {x.dtype} input (kernels take 5-D float32, float16, bfloat16)"
    out = [n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pairs)]
    if 0 in x.shape or min(out) <= 0:
        return "an empty input or output"
    if _too_large(x.shape, (*x.shape[:2], *out)):
        return f"an array of 2**31 elements or more (input {x.shape})"
    for n, (lo, hi) in zip(x.shape[2:], pairs):
        if mode != "constant" and min(lo, hi) < 0:
            return f"negative {mode} padding {pairs}"
        if mode == "reflect" and max(lo, hi) >= n:
            return f"reflect padding {pairs} not below the size {n}"
        if mode == "circular" and max(lo, hi) > n:
            return f"circular padding {pairs} beyond the size {n}"
    return None


def _use_kernel(reason: str | None) -> bool:
    mode, source = _switch()
    if mode == "portable":
        return False
    if mode == "metal":
        if not (metal_available() and stream_on_gpu()):
            raise RuntimeError(f"{source} forces the kernels, but Metal is unavailable or the stream is not on the GPU")
        if reason is not None:
            raise RuntimeError(f"{source} forces the kernels, but they do not support {reason}")
        return True
    return _failure is None and reason is None and metal_available() and stream_on_gpu()


def _ensure_built(key: tuple, probes: dict[str, Callable[[], object]]) -> bool:
    """Build and run each probe once per ``key``; False after any failure."""
    global _failure
    if key in _built:
        return True
    for name, probe in probes.items():
        try:
            mx.eval(probe())
        except Exception as error:  # a Metal compile or launch error of any type
            if backend() == "metal":
                raise
            _failure = f"{name}: {type(error).__name__}: {error}"
            warnings.warn(
                f"lucid_mlx: Metal kernel '{name}' failed ({type(error).__name__}: {error}); "
                "using the portable path for the rest of this process",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
    _built.add(key)
    return True


def _conv_probes(dtype: mx.Dtype, kernel) -> dict[str, Callable[[], object]]:
    from ..kernels import conv

    # One output element with the same template values (T, KD, KH, KW): the
    # same Metal library as the real call, on the smallest input there is.
    x = mx.ones((1, 1, *kernel), dtype=dtype)
    w = mx.ones((1, 1, *kernel), dtype=dtype)
    gy = mx.ones((1, 1, 1, 1, 1), dtype=dtype)
    args = ((1, 1, 1), ((0, 0),) * 3, (1, 1, 1), 1)
    return {
        "grouped_conv3d": lambda: conv.conv_forward(x, w, *args),
        "grouped_conv3d_grad_input": lambda: conv.conv_grad_input(gy, w, x.shape, *args),
        "grouped_conv3d_grad_weight": lambda: conv.conv_grad_weight(gy, x, w.shape, *args),
    }


def _pad_probes(dtype: mx.Dtype, mode: str) -> dict[str, Callable[[], object]]:
    from ..kernels import pad as kpad

    x = mx.ones((1, 1, 2, 2, 2), dtype=dtype)
    pairs = ((1, 1),) * 3
    gy = mx.ones((1, 1, 4, 4, 4), dtype=dtype)
    return {
        f"pad3d_{mode}": lambda: kpad.pad3d_forward(x, pairs, mode),
        f"pad3d_grad_{mode}": lambda: kpad.pad3d_adjoint(gy, pairs, mode, x.shape),
    }


class ConvPath(NamedTuple):
    """One way to run a convolution: its forward, its gradients and its workspace.

    Every function takes the geometry ``(stride, pads, dilation, groups)``
    after its arrays.  ``forward(x, w)`` is differentiable to every order.
    ``grads(x, w, cot)`` returns the input and weight gradients without
    running the forward again where the path can; ``grad_input(cot, w,
    x_shape)`` and ``grad_weight(x, cot, w_shape)`` return one each (the
    splitter's pieces of second derivatives).  ``workspace(x_shape, w_shape,
    out_size, stride, dilation, backward, itemsize)`` is the bytes the path
    itself holds per sample, per output-depth plane and per input plane of a
    piece's halo.  ``grad_input_by_slabs`` (dense
    only) computes a stride-1 input gradient from a window of the cotangent,
    which lets the splitter cut it by input slabs.
    """

    name: str
    forward: Callable[..., mx.array]
    grads: Callable[..., tuple[mx.array, mx.array]]
    grad_input: Callable[..., mx.array]
    grad_weight: Callable[..., mx.array]
    workspace: Callable[..., int]
    grad_input_by_slabs: Callable[..., mx.array] | None = None


class ConvPlan(NamedTuple):
    """Everything decided about one convolution call.

    ``split`` is None when the call runs as one ``path.forward``;
    otherwise :mod:`.pieces` runs it piece by piece.  ``path`` gives the
    output and the gradients; when the forward and the backward chose
    different paths it is the two combined (:func:`.candidates.combined`).
    ``labels`` name the candidates chosen for the forward and the backward
    (:class:`.candidates.Candidate`), to say what ran.
    """

    path: ConvPath
    out_size: tuple[int, int, int]
    split: plan.Split | None
    labels: tuple[str, str] = ("", "")

    def describe(self, role: str | None = None) -> str:
        """What runs: one role's candidate, or both (one name when they agree)."""
        forward, backward = self.labels
        if role is not None:
            return forward if role == "forward" else backward
        return forward if forward == backward else f"forward: {forward}; backward: {backward}"


def _autodiff_path(name: str, conv: Callable[..., mx.array], workspace_fn: Callable[..., int],
                   grad_input_by_slabs: Callable[..., mx.array] | None = None) -> ConvPath:
    """A path whose first derivatives MLX's autodiff takes.

    Its forward still goes through :func:`.derivatives.convolve`, so only
    MLX's first-order vjp is ever used: MLX 0.32's convolution has no jvp,
    and its own second derivatives of a strided convolution are wrong or
    fail for 21 of 93 small configurations tried (wrong shapes, broadcast
    errors, values off by 100%; tests/ops/test_derivatives.py).  The price:
    custom functions cannot infer their output shapes under ``mx.compile(...,
    shapeless=True)``.
    """

    def grads(x, w, cot, *geometry):
        _, (gx, gw) = mx.vjp(lambda x, w: conv(x, w, *geometry), [x, w], [cot])
        return gx, gw

    def grad_input(cot, w, x_shape, *geometry):
        # The map is linear in x, so its vjp does not depend on x's values.
        x = mx.zeros(x_shape, dtype=w.dtype)
        return mx.vjp(lambda x: conv(x, w, *geometry), [x], [cot])[1][0]

    def grad_weight(x, cot, w_shape, *geometry):
        w = mx.zeros(w_shape, dtype=x.dtype)
        return mx.vjp(lambda w: conv(x, w, *geometry), [w], [cot])[1][0]

    def forward(x, w, *geometry):
        return convolve(x, w, geometry, conv, grad_input, grad_weight, grads)

    return ConvPath(name, forward, grads, grad_input, grad_weight, workspace_fn, grad_input_by_slabs)


DENSE = _autodiff_path("dense", dense.conv3d, plan.unfold_workspace, dense.grad_input)
PER_GROUP = _autodiff_path("per_group", per_group.conv3d, plan.unfold_workspace)
# The split path calls depthwise.grads directly: mx.vjp would first evaluate
# the (eagerly evaluated) forward again, 20% of a split forward+backward at
# 2x64x32^3.
DEPTHWISE = ConvPath("depthwise", depthwise.conv3d, depthwise.grads, depthwise.grad_input,
                     depthwise.grad_weight, depthwise.workspace)


@functools.cache
def _kernel_path() -> ConvPath:
    from ..kernels import conv

    return ConvPath("kernel", conv.grouped_conv3d, conv.grads, conv.grad_input, conv.grad_weight,
                    conv.workspace)


def portable_path(w_shape) -> ConvPath:
    """The pure-MLX strategy for a weight of this shape (the kernels' reference)."""
    groups_of_one = w_shape[1] == 1
    return DEPTHWISE if groups_of_one else PER_GROUP


def portable_conv3d(x: mx.array, w: mx.array, stride, pads, dilation, groups: int) -> mx.array:
    """Grouped conv3d (NCDHW, no bias) on the portable path, whatever the device."""
    return portable_path(w.shape).forward(x, w, stride, pads, dilation, groups)


def _conv_paths(x: mx.array, w: mx.array, out_shape, groups: int) -> list[ConvPath]:
    """The correct paths of a call, the default rule's first.

    A dense layer has one: MLX's own convolution, which no grouped strategy
    beats (they run it per group, or without its GEMM).
    """
    if groups == 1:
        return [DENSE]
    portable = [DEPTHWISE, PER_GROUP] if w.shape[1] == 1 else [PER_GROUP]
    if _use_kernel(conv_support(x, w, out_shape)):
        kernel = tuple(w.shape[2:])
        if _ensure_built(("conv", x.dtype, kernel), _conv_probes(x.dtype, kernel)):
            # ``metal`` forces the kernel: it is then the only candidate.
            return [_kernel_path()] if backend() == "metal" else [_kernel_path(), *portable]
    return portable


def _itemsize(x: mx.array) -> int:
    # MLX computes CPU convolutions in float32 whatever the input dtype.
    return x.dtype.size if stream_on_gpu() else 4


def _dtype_name(*arrays: mx.array) -> str:
    names = [str(a.dtype).rsplit(".", 1)[-1] for a in arrays]
    return names[0] if len(set(names)) == 1 else "/".join(names)


def _signature(x: mx.array, w: mx.array, call: candidates.Call, role: str,
               labels: list[str]) -> str:
    """The autotune key of one role of a call: everything its candidates' speed depends on."""
    def dims(values) -> str:
        return "x".join(str(v) for v in values)

    pads = ",".join(f"{lo}:{hi}" for lo, hi in call.pads)
    return (f"{'gpu' if stream_on_gpu() else 'cpu'} {_dtype_name(x, w)} x={dims(x.shape)} "
            f"w={dims(w.shape)} stride={dims(call.stride)} pads={pads} "
            f"dilation={dims(call.dilation)} groups={call.groups} {role}: {' | '.join(labels)}")


def _role_options(x: mx.array, w: mx.array, stride, pads, dilation, groups: int, every: bool):
    """(the call, {role: (candidates, labels)}) under the current switches and budget."""
    out = plan.output_size(x.shape[2:], w.shape[2:], stride, pads, dilation)
    call = candidates.Call(tuple(x.shape), tuple(w.shape), out, tuple(stride), tuple(pads),
                           tuple(dilation), groups)
    paths = _conv_paths(x, w, (x.shape[0], w.shape[0], *out), groups)
    limit, itemsize = workspace.get_workspace_limit(), _itemsize(x)
    options = {}
    for role in candidates.ROLES:
        found = candidates.for_role(paths, call, role, itemsize, limit, every)
        options[role] = (found, [c.label for c in found])
    return call, options


def conv3d_plan(x: mx.array, w: mx.array, stride, pads, dilation, groups: int) -> ConvPlan:
    """Choose the paths of one convolution and how the workspace budget cuts it.

    Every decision about a conv3d call is made here, once: for the forward
    and for the backward, the kernel or a portable strategy, whole or in
    pieces within the budget (the bytes one output plane costs depend on
    the path and the device) -- by the default rule, or by measurement when
    autotuning is on.
    """
    call, options = _role_options(x, w, stride, pads, dilation, groups, every=autotune.enabled())
    chosen = []
    for role, (found, labels) in options.items():
        chosen.append(autotune.choose(
            lambda role=role, labels=labels: _signature(x, w, call, role, labels), found, labels,
            candidates.trial(role, call, x.dtype, w.dtype)))
    return candidates.assemble(chosen[0], chosen[1], call)


def conv3d_candidates(x: mx.array, w: mx.array, stride, pads, dilation,
                      groups: int) -> dict[str, list[candidates.Candidate]]:
    """Every correct candidate of each role of this call, the default first."""
    _, options = _role_options(x, w, stride, pads, dilation, groups, every=True)
    return {role: found for role, (found, _) in options.items()}


def signatures(x: mx.array, w: mx.array, stride, pads, dilation, groups: int) -> dict[str, str]:
    """The autotune key of each role of this call (to look up what was measured)."""
    call, options = _role_options(x, w, stride, pads, dilation, groups, every=True)
    return {role: _signature(x, w, call, role, labels) for role, (_, labels) in options.items()}


def _bias_probes(dtype: mx.Dtype) -> dict[str, Callable[[], object]]:
    from ..kernels import conv

    return {"conv3d_grad_bias": lambda: conv.bias_grad(mx.ones((1, 1, 1, 1, 1), dtype=dtype))}


def add_bias(y: mx.array, bias: mx.array) -> mx.array:
    """``y + bias`` over the channels of NCDHW ``y``; on the kernel path its
    gradient w.r.t. ``bias`` is the ``conv3d_grad_bias`` kernel."""
    reason = conv_support(y, bias, y.shape)
    if _use_kernel(reason) and _ensure_built(("bias", y.dtype), _bias_probes(y.dtype)):
        from ..kernels import conv

        return conv.add_channel_bias(y, bias)
    return y + bias.reshape(1, -1, 1, 1, 1)


def pad3d(x: mx.array, pairs, mode: str, value: float = 0.0) -> mx.array:
    """Pad (D, H, W) of an NCDHW array on the kernel or portable path."""
    if _use_kernel(pad_support(x, pairs, mode)):
        if _ensure_built(("pad", x.dtype, mode), _pad_probes(x.dtype, mode)):
            from ..kernels import pad as kpad

            return kpad.pad3d(x, pairs, mode, value)
    return pad.pad3d(x, pairs, mode, value)
