"""Ending a rank loudly instead of letting the job hang.

Measured with MLX 0.32 (ring over loopback, and MPI): a rank that dies makes
its ring peers fail within about a second ("connection to a peer was
lost"), but a rank that stalls makes every other rank wait forever, and with
MPI a Python exception on one rank leaves the job hanging (still running
after 30 s, measured) unless the process ends without a normal shutdown.  MLX's collectives take no
timeout, so both remedies here act on the process: an exception hook that
ends it with ``os._exit``, and a watchdog thread that ends it when a block of
collectives overruns its deadline.  The watchdog works because ``mx.eval``
releases the GIL while it waits for a peer.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

_default_timeout: Optional[float] = None
_rank: Optional[int] = None
_size: Optional[int] = None
_hook_installed = False


def _check_timeout(seconds, name: str = "timeout") -> Optional[float]:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"`{name}` must be a number of seconds or None, got {seconds!r}")
    if not seconds > 0:
        raise ValueError(f"`{name}` must be > 0 seconds, got {seconds!r}")
    return float(seconds)


def set_default_timeout(seconds: Optional[float]) -> None:
    """The deadline :func:`deadline` uses when given none (set by ``init``)."""
    global _default_timeout
    _default_timeout = _check_timeout(seconds)


def set_identity(rank: Optional[int], size: Optional[int]) -> None:
    """Which rank this process is, for its last words (set by ``init``)."""
    global _rank, _size
    _rank, _size = rank, size


def _identity() -> str:
    return f"rank {'?' if _rank is None else _rank} of {'?' if _size is None else _size}"


def _end_process(message: str = "", *, stacks: bool = False) -> None:
    # Nothing here may raise: a closed stdout or stderr must not keep the process alive.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    if message:
        try:
            os.write(2, message.encode(errors="replace"))
        except OSError:
            pass
    if stacks:
        try:
            faulthandler.dump_traceback(file=2, all_threads=True)
        except Exception:
            pass
    os._exit(1)


def install_excepthook() -> None:
    """End the process with status 1 after printing an uncaught exception.

    The traceback is printed by the previous hook; ``os._exit`` then skips
    interpreter shutdown, where an MPI job would wait for its peers forever.
    """
    global _hook_installed
    if _hook_installed:
        return
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        try:
            sys.stderr.write(f"lucid_mlx.distributed: {_identity()} raised an uncaught "
                             f"exception; ending this rank (status 1) so that the job stops "
                             f"instead of waiting for it\n")
            previous(exc_type, exc, tb)
        finally:
            _end_process()

    sys.excepthook = hook
    _hook_installed = True


@contextmanager
def deadline(seconds: Optional[float] = None, what: str = "a collective operation", *,
             force: bool = False) -> Iterator[None]:
    """End the process if the ``with`` block takes longer than ``seconds``.

    Wrap the ``mx.eval`` of a training step (where its collectives run) so
    that a stalled or vanished peer ends the job with a message instead of
    a hang.  On expiry the watchdog prints which rank gave up and on what,
    dumps every thread's Python stack, and ends the process with status 1;
    the other ranks then lose their connection and fail too.

    Args:
        seconds (float, optional): The deadline; ``None`` uses the
            ``timeout`` given to :func:`lucid_mlx.distributed.init`, and
            without one the block runs unguarded. Default: ``None``.
        what (str): Named in the message. Default: ``"a collective operation"``.
        force (bool, keyword-only): Guard even in a job of one rank, where
            nothing can stall on a peer and the block otherwise runs
            unguarded (``init`` forces it while connecting, before the size
            is known). Default: ``False``.

    Example:
        >>> with deadline(60):
        ...     mx.eval(model.parameters(), optimizer.state)
    """
    seconds = _check_timeout(seconds, "seconds")
    if seconds is None:
        seconds = _default_timeout
    if seconds is None or (_size == 1 and not force):
        yield
        return

    def expire():
        _end_process(f"lucid_mlx.distributed: {_identity()}: {what} did not finish within "
                     f"{seconds:g} s; a peer has probably stalled or died. Ending this rank "
                     f"(status 1). Python stacks at that moment:\n", stacks=True)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
