"""Measured dispatch: time the correct candidates of a call once and keep the fastest.

Off by default.  The switch is, from strongest to weakest: the
:func:`autotuning` context manager (per thread and asyncio task, like
``use_backend``), :func:`set_autotune`, the ``LUCID_MLX_AUTOTUNE``
environment variable (``1``/``true``/``on``/``yes`` or
``0``/``false``/``off``/``no``; blank means unset, as for every lucid_mlx
variable), and the default, off.

With autotuning on, the first time :mod:`.dispatch` meets a signature (a
string naming device, dtype, shapes, geometry, role and the candidates) it
runs each candidate :data:`WARMUP` times untimed and :data:`REPEATS` times
timed (once only if that run is :data:`SLOWER` times the best median so
far), each run evaluated with ``mx.eval``, and remembers the candidate with
the smallest median for the rest of the process.  Candidates run on fresh
inputs (:func:`.candidates.trial`), so the caller's result is always the
chosen candidate's own computation.  A candidate that raises while timed is
left out, with a warning.  If ``mx.eval`` is refused (MLX refuses it for
arrays traced by ``mx.compile`` or ``mx.vmap``; MLX 0.32 allows it for the
fresh inputs, so this is a safeguard) the default candidate is used and
nothing is remembered, so a later call outside the transformation tunes.

Choices saved with :func:`save_cache` (or ``python -m lucid_mlx.autotune``)
are read back by later processes when autotuning is on
(:mod:`.autotune_cache`).  With autotuning off, neither the table nor the
file is consulted: the default rule decides alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import statistics
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence, TypeVar

import mlx.core as mx

from .. import _env
from . import autotune_cache

ENV_VAR = "LUCID_MLX_AUTOTUNE"
WARMUP = 1
REPEATS = 3
# A candidate whose first timed run takes more than this many times the
# best median so far is not run again: on the CPU here most of a first
# call's cost was such candidates (per-group pieces at 5-18x the depthwise
# sums' time), and a repeat cannot make up a factor of 2.
SLOWER = 2.0
_TRUE = ("1", "true", "on", "yes")
_FALSE = ("0", "false", "off", "no")

# Tests replace the clock.
clock: Callable[[], float] = time.perf_counter

_override: contextvars.ContextVar[bool | None] = contextvars.ContextVar("lucid_mlx_autotune", default=None)
_setting: bool | None = None
_table: dict[str, "Measurement"] = {}
_stored: dict[str, "Measurement"] | None = None
# One signature is timed at a time: candidates timed by two threads at once
# would slow each other down and skew the choice.
_lock = threading.RLock()

C = TypeVar("C")


class Measurement(NamedTuple):
    """What autotuning found for one signature.

    ``seconds`` maps every candidate's label to its median time, or None
    for a candidate that failed; ``source`` is ``'measured'`` or
    ``'cache'``.
    """

    winner: str
    seconds: dict[str, float | None]
    source: str = "measured"


def _from_env() -> bool:
    text = _env.read(ENV_VAR)
    if text is None:
        return False
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(f"environment variable {ENV_VAR} must be one of {_TRUE + _FALSE}, got {text!r}")


def enabled() -> bool:
    """Whether autotuning is on (see the module docstring for the order)."""
    override = _override.get()
    if override is not None:
        return override
    if _setting is not None:
        return _setting
    return _from_env()


def _check(flag, name: str) -> None:
    if not isinstance(flag, bool):
        raise TypeError(f"`{name}` must be a bool, got {flag!r} ({type(flag).__name__})")


def set_autotune(enabled: bool | None) -> None:
    """Switch autotuning on or off for the process; ``None`` defers to ``LUCID_MLX_AUTOTUNE`` again.

    Raises:
        TypeError: ``enabled`` is not a bool or None.
    """
    global _setting
    if enabled is not None:
        _check(enabled, "enabled")
    _setting = enabled


def get_autotune() -> bool:
    """Whether autotuning is on for the calling thread."""
    return enabled()


@contextlib.contextmanager
def autotuning(enabled: bool = True) -> Iterator[None]:
    """Switch autotuning on (or off) inside a ``with`` block, for the calling thread only."""
    _check(enabled, "enabled")
    token = _override.set(enabled)
    try:
        yield
    finally:
        _override.reset(token)


def measurements() -> dict[str, Measurement]:
    """Every signature decided in this process, measured or read from the cache."""
    return dict(_table)


def remember(key: str, winner: str, seconds: dict[str, float | None] | None = None,
             source: str = "measured") -> None:
    """Record ``winner`` for ``key`` as if it had been measured (tests, the cache)."""
    _table[key] = Measurement(winner, dict(seconds or {winner: None}), source)


def reset(read_cache: bool = True) -> None:
    """Forget every choice of this process (for tests, and to measure afresh).

    Args:
        read_cache: Whether later lookups may read the cache file; False
            makes every new signature be measured.
    """
    global _stored
    _table.clear()
    _stored = None if read_cache else {}


def save_cache(path: str | Path | None = None) -> Path:
    """Write this process's choices to the cache file, merged with what it holds.

    Args:
        path: The file. Default: ``autotune.json`` in the user cache
            directory (see :mod:`lucid_mlx.ops.autotune_cache`).

    Returns:
        The path written.
    """
    entries = {key: {"winner": m.winner, "seconds": m.seconds} for key, m in _table.items()}
    return autotune_cache.save(entries, path)


def _cached(key: str) -> Measurement | None:
    global _stored
    if _stored is None:
        _stored = {k: Measurement(e["winner"], e["seconds"], "cache")
                   for k, e in autotune_cache.load().items()}
    return _stored.get(key)


class _Untimeable(Exception):
    """mx.eval was refused: a transformation traces the call."""


def _evaluate(result: object) -> None:
    try:
        mx.eval(result)
    except ValueError as error:
        # The message MLX 0.32 gives for eval under compile or vmap tracing.
        if "transformations" in str(error):
            raise _Untimeable from error
        raise


def _median(run: Callable[[], object], best: float | None) -> float:
    """Median of REPEATS timed runs after WARMUP untimed ones; one timed run
    when it already takes more than SLOWER times the ``best`` median so far."""
    for _ in range(WARMUP):
        _evaluate(run())
    times: list[float] = []
    for _ in range(REPEATS):
        start = clock()
        _evaluate(run())
        times.append(clock() - start)
        if best is not None and times[0] > SLOWER * best:
            break
    return statistics.median(times)


def _measure(options: Sequence[C], labels: list[str],
             step: Callable[[C], Callable[[], object]]) -> Measurement | None:
    """Time every option; None when timing is impossible here or every option failed."""
    seconds: dict[str, float | None] = {}
    for option, label in zip(options, labels):
        timed = [t for t in seconds.values() if t is not None]
        try:
            seconds[label] = _median(step(option), min(timed) if timed else None)
        except _Untimeable:
            return None
        except Exception as error:  # noqa: BLE001 - a failing candidate is a result, not a crash
            warnings.warn(f"lucid_mlx autotune: candidate '{label}' failed while timed "
                          f"({type(error).__name__}: {error}); it is not chosen",
                          RuntimeWarning, stacklevel=5)
            seconds[label] = None
    timed = {label: t for label, t in seconds.items() if t is not None}
    if not timed:
        return None
    return Measurement(min(timed, key=timed.__getitem__), seconds)


def choose(key: Callable[[], str], options: Sequence[C], labels: Sequence[str],
           step: Callable[[C], Callable[[], object]]) -> C:
    """The option to run: the default (``options[0]``) unless autotuning says otherwise.

    Args:
        key: Makes the signature string (only called when autotuning is on).
        options: The correct candidates, the default rule's choice first.
        labels: Their stable names, as the table and the cache store them.
        step: For one option, a function running it once (for timing).
    """
    if len(options) == 1 or not enabled():
        return options[0]
    signature = key()
    found = _table.get(signature)
    if found is None:
        with _lock:  # another thread may have measured it meanwhile
            found = _table.get(signature) or _cached(signature)
            if found is None:
                found = _measure(options, list(labels), step)
                if found is None:
                    return options[0]
            _table[signature] = found
    return options[list(labels).index(found.winner)] if found.winner in labels else options[0]
