"""The autotuning choices kept between processes: one JSON file per user.

Where: ``$LUCID_MLX_CACHE_DIR/autotune.json`` when that variable is set
(blank means unset), else ``$XDG_CACHE_HOME/lucid_mlx/autotune.json``,
else ``~/.cache/lucid_mlx/autotune.json``.

The file holds a header -- format, device name, MLX version, lucid_mlx
version -- and one entry per signature: the winner's label and every
candidate's median seconds.  A choice is only as good as the device and
the code it was measured with, so a file whose header differs from this
process's ("foreign"), or that cannot be read as such a file ("corrupt"),
is ignored with one ``RuntimeWarning`` per process, and the next
:func:`save` replaces it.  Writes go to a temporary file in the same
directory, then ``os.replace``: a reader sees the old file or the new one,
never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import mlx.core as mx

from .. import _env

ENV_VAR = "LUCID_MLX_CACHE_DIR"
FILE_NAME = "autotune.json"
FORMAT = 1

_warned: set[str] = set()


def directory() -> Path:
    """The cache directory (see the module docstring); not created here."""
    chosen = _env.read(ENV_VAR)
    if chosen is not None:
        return Path(chosen).expanduser()
    xdg = _env.read("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg is not None else Path.home() / ".cache"
    return base / "lucid_mlx"


def default_path() -> Path:
    return directory() / FILE_NAME


def device_name() -> str:
    """The machine's name as MLX reports it: the Metal GPU's if there is one, else the CPU's."""
    device = mx.gpu if mx.metal.is_available() else mx.cpu
    info = mx.device_info(device) if hasattr(mx, "device_info") else mx.metal.device_info()
    name = info.get("device_name") or "unknown device"
    arch = info.get("architecture")
    return f"{name} ({arch})" if arch else str(name)


def header() -> dict:
    """What a cache file must match to be used by this process."""
    import lucid_mlx

    return {"format": FORMAT, "device": device_name(), "mlx": mx.__version__,
            "lucid_mlx": lucid_mlx.__version__}


def _valid_entry(entry) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("winner"), str):
        return False
    seconds = entry.get("seconds")
    return isinstance(seconds, dict) and all(
        isinstance(k, str) and (v is None or isinstance(v, (int, float))) for k, v in seconds.items())


def _read(path: Path) -> tuple[dict[str, dict], str | None]:
    """(entries, why the file is ignored or None); a missing file is no problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except OSError as error:
        return {}, f"cannot be read ({error})"
    try:
        data = json.loads(text)
    except ValueError as error:
        return {}, f"is not valid JSON ({error})"
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        return {}, "is not an autotune cache (no 'entries' object)"
    want = header()
    got = {k: data.get(k) for k in want}
    if got != want:
        return {}, f"was written for {got}, not this process's {want}"
    entries = data["entries"]
    if not all(isinstance(k, str) and _valid_entry(e) for k, e in entries.items()):
        return {}, "has malformed entries"
    return entries, None


def load(path: str | Path | None = None) -> dict[str, dict]:
    """The entries of the cache file, or {} (with one warning) if it is foreign or corrupt."""
    path = Path(path) if path is not None else default_path()
    entries, problem = _read(path)
    if problem is not None and str(path) not in _warned:
        _warned.add(str(path))
        warnings.warn(f"lucid_mlx: ignoring the autotune cache {path}: it {problem}",
                      RuntimeWarning, stacklevel=2)
    return entries


def save(entries: dict[str, dict], path: str | Path | None = None) -> Path:
    """Merge ``entries`` into the cache file (a foreign or corrupt one is replaced) atomically."""
    path = Path(path) if path is not None else default_path()
    merged = {**_read(path)[0], **entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**header(), "entries": dict(sorted(merged.items()))}, indent=1)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return path

