"""PyTorch state_dicts in and out of lucid_mlx models.

lucid_mlx layers keep PyTorch's parameter names and layouts (``weight``,
``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``; Conv3d
weights (C_out, C_in/groups, KD, KH, KW)), so porting needs no transposes.
The one naming difference is ``mlx.nn.Sequential``, which keeps its children
in a ``layers`` list: PyTorch's ``body.0.weight`` is MLX's
``body.layers.0.weight``.  Everything else (attribute names, ``ModuleList``
indices, nesting) already matches when the twin model mirrors the PyTorch
one.

Only ``.pt``/``.pth`` files need torch.  ``.safetensors`` files are read with
``mx.load`` rather than ``safetensors.numpy`` because NumPy has no bfloat16
and half-precision checkpoints are common; MLX reads every safetensors dtype.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, NamedTuple, Union

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

__all__ = ["IncompatibleKeys", "load_torch_state_dict", "save_torch_state_dict", "torch_state_dict"]

Source = Union[Mapping[str, Any], str, "os.PathLike[str]"]

_TORCH_SUFFIXES = (".pt", ".pth", ".bin")


class IncompatibleKeys(NamedTuple):
    """Keys that did not match, like PyTorch's ``_IncompatibleKeys``.

    Attributes:
        missing_keys: PyTorch names the model has but the source lacks.
        unexpected_keys: names in the source that the model does not have.
    """

    missing_keys: list[str]
    unexpected_keys: list[str]


def _torch_names(model: nn.Module) -> dict[str, str]:
    """Map each MLX parameter path of ``model`` to its PyTorch name."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be an mlx.nn.Module, got {type(model).__name__}")
    sequential = {name for name, m in model.named_modules() if isinstance(m, nn.Sequential)}
    names = {}
    for path, _ in tree_flatten(model.parameters()):
        parts = path.split(".")
        # Drop the `layers` hop of every Sequential on the path.
        kept = [p for i, p in enumerate(parts)
                if not (p == "layers" and ".".join(parts[:i]) in sequential)]
        names[path] = ".".join(kept)
    return names


def _to_mx(value: Any, key: str) -> mx.array:
    """One state_dict entry (torch tensor, NumPy array or mx.array) as an mx.array."""
    if isinstance(value, mx.array):
        return value
    if isinstance(value, np.ndarray):
        return mx.array(value)
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor, without importing torch
        tensor = value.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            # NumPy cannot hold bfloat16: widen exactly, then narrow in MLX.
            return mx.array(tensor.float().numpy()).astype(mx.bfloat16)
        return mx.array(tensor.numpy())
    raise TypeError(
        f"state_dict entry {key!r} must be a torch.Tensor, numpy.ndarray or mlx.core.array, "
        f"got {type(value).__name__}"
    )


def _read(source: Source) -> dict[str, mx.array]:
    """Read a state_dict mapping or file into ``{name: mx.array}``."""
    if isinstance(source, Mapping):
        return {str(k): _to_mx(v, str(k)) for k, v in source.items()}
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"`source` must be a state_dict mapping or a path to a .safetensors/.pt/.pth file, "
            f"got {type(source).__name__}"
        )
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise ValueError(f"`source` file {path!r} does not exist")
    lower = path.lower()
    if lower.endswith(".safetensors"):
        return dict(mx.load(path))
    if lower.endswith(_TORCH_SUFFIXES):
        try:
            import torch
        except ImportError as err:
            raise ImportError(
                f"reading {path!r} needs PyTorch (`pip install torch==2.13.0`, the version the tests use); "
                "or save the state_dict as .safetensors, which loads without it"
            ) from err
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(loaded, Mapping):
            raise TypeError(f"{path!r} holds a {type(loaded).__name__}, expected a state_dict")
        bad = [k for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise TypeError(
                f"{path!r} is not a flat state_dict: entries {bad[:5]} are not tensors; "
                "if it is a training checkpoint, pass e.g. checkpoint['state_dict'] instead"
            )
        return _read(loaded)
    raise ValueError(
        f"`source` file {path!r} must end in .safetensors, .pt, .pth or .bin"
    )


def load_torch_state_dict(model: nn.Module, source: Source, strict: bool = True) -> IncompatibleKeys:
    """Load PyTorch weights into a lucid_mlx model, in place.

    Names are PyTorch's (``encoder.0.weight``, ``bn.running_var``); each
    value is cast to the dtype of the model's array it replaces, as
    PyTorch's ``copy_`` does.  Nothing is loaded unless every check passes.

    Args:
        model: an ``mlx.nn.Module`` whose structure mirrors the PyTorch model.
        source: a state_dict (names to torch tensors, NumPy arrays or
            mx.arrays), a ``.safetensors`` file (read without torch) or a
            ``.pt``/``.pth``/``.bin`` file written by ``torch.save`` (needs torch).
        strict: if ``True``, missing or unexpected keys raise. Default: ``True``.

    Returns:
        ``IncompatibleKeys(missing_keys, unexpected_keys)``, both empty after
        a strict load.

    Raises:
        ValueError: a shape differs (whatever ``strict`` is), or, with
            ``strict=True``, keys are missing or unexpected.
        TypeError: ``model`` or ``source`` has the wrong type.
        ImportError: a ``.pt`` file is given and torch is not installed.

    Example:
        >>> keys = load_torch_state_dict(twin, torch_model.state_dict())
        >>> twin.eval()
    """
    names = _torch_names(model)
    current = dict(tree_flatten(model.parameters()))
    state = _read(source)
    by_torch = {t: m for m, t in names.items()}

    missing = sorted(t for t in by_torch if t not in state)
    unexpected = sorted(k for k in state if k not in by_torch)
    mismatched = [
        f"{k}: source {tuple(v.shape)}, model {tuple(current[by_torch[k]].shape)}"
        for k, v in state.items()
        if k in by_torch and tuple(v.shape) != tuple(current[by_torch[k]].shape)
    ]
    if mismatched:
        raise ValueError("shape mismatch loading state_dict:\n  " + "\n  ".join(mismatched))
    if strict and (missing or unexpected):
        lines = []
        if missing:
            lines.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            lines.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        raise ValueError(
            "state_dict does not match the model (pass strict=False to load the matching keys):\n  "
            + "\n  ".join(lines)
        )

    updates = [(by_torch[k], v.astype(current[by_torch[k]].dtype))
               for k, v in state.items() if k in by_torch]
    model.update(tree_unflatten(updates))
    mx.eval(model.parameters())
    return IncompatibleKeys(missing, unexpected)


def torch_state_dict(model: nn.Module) -> dict[str, mx.array]:
    """The model's arrays under their PyTorch names (parameters and buffers)."""
    names = _torch_names(model)
    return {names[path]: value for path, value in tree_flatten(model.parameters())}


def save_torch_state_dict(model: nn.Module, path: Union[str, "os.PathLike[str]"]) -> None:
    """Write the model's weights as a ``.safetensors`` file PyTorch can load.

    Load it in PyTorch with
    ``model.load_state_dict(safetensors.torch.load_file(path))``.

    Args:
        model: the lucid_mlx model.
        path: destination, ending in ``.safetensors``.

    Raises:
        ValueError: ``path`` does not end in ``.safetensors``.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).lower().endswith(".safetensors"):
        raise ValueError(f"`path` must be a file name ending in .safetensors, got {path!r}")
    state = torch_state_dict(model)
    mx.eval(list(state.values()))
    mx.save_safetensors(os.fspath(path), state)
