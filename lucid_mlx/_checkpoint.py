"""Reading the checkpoints people have into ``{name: mx.array}``.

A state_dict may come as a mapping of torch tensors, NumPy arrays or
mx.arrays, as a ``.safetensors`` file (read by MLX, so bfloat16 survives and
torch is not needed) or as a ``torch.save`` file; and it may sit inside a
training checkpoint (``{"state_dict": ..., "epoch": ...}``) with the
``module.`` prefix of DataParallel.  :func:`read_state_dict` removes those
layers and says which it removed.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import mlx.core as mx
import numpy as np

_TORCH_SUFFIXES = (".pt", ".pth", ".bin")
# Keys under which training scripts store the weights (PyTorch Lightning and most
# scripts: state_dict; MONAI bundles: model; MONAI tutorials: net/network; nnU-Net v2:
# network_weights), in the order they are tried.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "network_weights", "net", "network")
# Prefixes of wrapped modules: DataParallel / DistributedDataParallel, torch.compile.
_WRAPPER_PREFIXES = {"module.": "DataParallel/DistributedDataParallel", "_orig_mod.": "torch.compile"}


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


def _unwrap(source: Mapping, model_names: set[str]) -> tuple[Mapping, list[str]]:
    """Strip checkpoint wrappers and wrapper prefixes, saying what was removed."""
    steps: list[str] = []
    inner = "checkpoint"
    while (key := next((k for k in _WRAPPER_KEYS if isinstance(source.get(k), Mapping)), None)):
        inner += f"[{key!r}]"
        source = source[key]
    if inner != "checkpoint":
        steps.append(f"the wrapper {inner}")
    for prefix, origin in _WRAPPER_PREFIXES.items():
        keys = [str(k) for k in source]
        if keys and all(k.startswith(prefix) for k in keys) and not any(
                n.startswith(prefix) for n in model_names):
            source = {str(k)[len(prefix):]: v for k, v in source.items()}
            steps.append(f"the prefix {prefix!r} ({origin})")
    return source, steps


def _load_file(path: str) -> Mapping:
    if os.path.isdir(path):
        raise ValueError(f"`source` {path!r} is a directory; pass a .safetensors, .pt, .pth or .bin file")
    if not os.path.isfile(path):
        raise ValueError(f"`source` file {path!r} does not exist")
    lower = path.lower()
    if lower.endswith(".safetensors"):
        # MLX infers the format from the suffix and knows only the lower-case one.
        return mx.load(path, format="safetensors")
    if lower.endswith(_TORCH_SUFFIXES):
        try:
            import torch
        except ImportError as err:
            raise ImportError(
                f"reading {path!r} needs PyTorch (`pip install torch==2.13.0`, the version the tests use); "
                "or save the state_dict as .safetensors, which loads without it"
            ) from err
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle's errors name the blocked class, not the cure
            raise ValueError(
                f"{path!r} could not be read with torch.load(weights_only=True) ({err}); a checkpoint "
                "holding arbitrary Python objects is not unpickled here: load it yourself if you "
                "trust it and pass the state_dict"
            ) from err
        if not isinstance(loaded, Mapping):
            raise TypeError(f"{path!r} holds a {type(loaded).__name__}, expected a state_dict")
        return loaded
    raise ValueError(f"`source` file {path!r} must end in .safetensors, .pt, .pth or .bin")


def read_state_dict(source, model_names: set[str]) -> tuple[dict[str, mx.array], list[str]]:
    """Read a state_dict, checkpoint mapping or file into ``{name: mx.array}``.

    Args:
        source: a mapping or a path (see ``lucid_mlx.load_torch_state_dict``).
        model_names: every name the model accepts; a wrapper prefix such as
            ``module.`` is kept when the model's own names start with it.

    Returns:
        The state_dict and the list of what was removed to reach it.
    """
    if isinstance(source, (str, os.PathLike)):
        source = _load_file(os.fspath(source))
    elif not isinstance(source, Mapping):
        raise TypeError(
            f"`source` must be a state_dict mapping or a path to a .safetensors/.pt/.pth file, "
            f"got {type(source).__name__}"
        )
    state, steps = _unwrap(source, model_names)
    nested = [str(k) for k, v in state.items() if isinstance(v, (Mapping, int, float, str, type(None)))]
    if nested:
        raise TypeError(
            f"`source` is not a state_dict: entries {nested[:5]} are not tensors, and none of "
            f"{list(_WRAPPER_KEYS)} holds the weights; pass the state_dict itself (e.g. checkpoint[...])"
        )
    return {str(k): _to_mx(v, str(k)) for k, v in state.items()}, steps
