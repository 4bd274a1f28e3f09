"""PyTorch state_dicts in and out of lucid_mlx models.

lucid_mlx layers keep PyTorch's parameter names and layouts (``weight``,
``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``; Conv3d
weights (C_out, C_in/groups, KD, KH, KW)), so porting needs no transposes.
Two naming differences are bridged here:

* ``mlx.nn.Sequential`` keeps its children in a ``layers`` list: PyTorch's
  ``body.0.weight`` is MLX's ``body.layers.0.weight`` (``lucid_mlx.nn.Sequential``
  needs no such hop).
* A PyTorch module registered under two names (MONAI's DynUNet keeps its
  blocks both as ``input_block``/``downsamples``/... and inside
  ``skip_layers``) appears twice in its state_dict.  MLX would treat a module
  reachable under two paths as two independent sets of weights (updates and
  gradients split between them), so a lucid_mlx model registers it once (a
  second use inside a Sequential is a ``lucid_mlx.nn.Reuse`` of it) and
  declares the other names in a ``torch_aliases()`` method returning
  ``{alias prefix: canonical prefix}`` (PyTorch names, relative to the
  declaring module).  Loading accepts either name (both must agree when
  both are given); saving writes both, so PyTorch loads the file strictly.

Loading also takes the checkpoints people have (``lucid_mlx._checkpoint``):
``{"state_dict": ...}``-style wrappers and DataParallel's ``module.`` prefix
are removed, and the result says so.  A key mismatch is reported by group,
short enough to read (``lucid_mlx._torch_keys``).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Any, Mapping, NamedTuple, Union

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from ._checkpoint import read_state_dict
from ._torch_keys import KeyReport, compare_keys

__all__ = [
    "IncompatibleKeys",
    "KeyReport",
    "check_torch_state_dict",
    "load_torch_state_dict",
    "save_torch_state_dict",
    "to_torch_names",
    "torch_names",
    "torch_state_dict",
]

Source = Union[Mapping[str, Any], str, "os.PathLike[str]"]


class _Keys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class IncompatibleKeys(_Keys):
    """Keys that did not match, like PyTorch's ``_IncompatibleKeys``.

    Compares equal to the tuple ``(missing_keys, unexpected_keys)``.

    Attributes:
        missing_keys: PyTorch names the model has but the source lacks.
        unexpected_keys: names in the source that the model does not have.
        unwrapped: what was removed from the source before matching, e.g.
            ``("the wrapper checkpoint['state_dict']", "the prefix 'module.' (DataParallel/...)")``.
    """

    unwrapped: tuple[str, ...]

    def __new__(cls, missing_keys: list[str], unexpected_keys: list[str], unwrapped=()):
        self = super().__new__(cls, missing_keys, unexpected_keys)
        self.unwrapped = tuple(unwrapped)
        return self

    def __repr__(self) -> str:
        text = f"IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys}"
        return text + (f", unwrapped={self.unwrapped})" if self.unwrapped else ")")


# ---- names ------------------------------------------------------------------------

def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be an mlx.nn.Module, got {type(model).__name__}")


def _hopless(path: str, sequential: set[str]) -> str:
    """``path`` without the ``layers`` hop of every ``mlx.nn.Sequential`` on it."""
    parts = path.split(".") if path else []
    return ".".join(p for i, p in enumerate(parts)
                    if not (p == "layers" and ".".join(parts[:i]) in sequential))


def torch_names(model: nn.Module) -> dict[str, str]:
    """Map each MLX parameter path of ``model`` to its PyTorch name.

    Every array of ``model.parameters()`` (buffers such as ``running_mean``
    included) gets the name PyTorch's ``state_dict()`` and
    ``named_parameters()`` give it.  Alias names (see the module docstring)
    are not listed: a shared module's weights appear once, under the name
    the lucid_mlx model registers them by (``to_torch_names(...,
    aliases=True)`` lists both).

    Example:
        >>> torch_names(model)["body.layers.0.weight"]
        'body.0.weight'
    """
    _check_model(model)
    sequential = {name for name, m in model.named_modules() if isinstance(m, nn.Sequential)}
    return {path: _hopless(path, sequential) for path, _ in tree_flatten(model.parameters())}


def to_torch_names(model: nn.Module, tree: Any, aliases: bool = False) -> dict[str, Any]:
    """Flatten a tree shaped like ``model.parameters()`` to ``{PyTorch name: leaf}``.

    For gradients (``nn.value_and_grad``), ``trainable_parameters()``,
    optimizer state slices or any sub-tree of the parameters, so they can be
    compared with PyTorch's ``{name: p.grad for name, p in named_parameters()}``.

    Args:
        model: the lucid_mlx model the tree belongs to.
        tree: nested dicts/lists with the model's parameter paths.
        aliases: also list each leaf of a shared module under its alias
            names, so the result holds every name PyTorch could report
            whichever of them it registered first. Default: ``False``.

    Raises:
        ValueError: a leaf of ``tree`` is at a path ``model`` has no parameter at.

    Example:
        >>> loss, grads = nn.value_and_grad(model, loss_fn)(model, x)
        >>> to_torch_names(model, grads)["body.0.weight"].shape
        (8, 2, 3, 3, 3)
    """
    names = torch_names(model)
    others = _alias_names(model, list(names.values())) if aliases else {}
    out = {}
    for path, leaf in tree_flatten(tree):
        if path not in names:
            raise ValueError(f"`tree` has a leaf at {path!r}, which is not a parameter path of the model")
        for key in [names[path], *others.get(names[path], [])]:
            out[key] = leaf
    return out


def _aliases(model: nn.Module) -> list[tuple[str, str]]:
    """Every declared ``(alias prefix, canonical prefix)`` as full PyTorch names."""
    sequential = {name for name, m in model.named_modules() if isinstance(m, nn.Sequential)}
    pairs = []
    for path, module in model.named_modules():
        # A module held privately (a second use of a registered one) has no names of its own.
        if not hasattr(type(module), "torch_aliases") or any(p.startswith("_") for p in path.split(".")):
            continue
        declared = module.torch_aliases()
        if not isinstance(declared, Mapping):
            raise TypeError(f"{type(module).__name__}.torch_aliases() must return a mapping, "
                            f"got {type(declared).__name__}")
        prefix = _hopless(path, sequential)
        prefix = prefix + "." if prefix else ""
        pairs += [(prefix + alias, prefix + canonical) for alias, canonical in declared.items()]
    return pairs


def _alias_names(model: nn.Module, canonical: list[str]) -> dict[str, list[str]]:
    """For each canonical PyTorch name, the alias names that hold the same array."""
    out: dict[str, list[str]] = {name: [] for name in canonical}
    for alias, target in _aliases(model):
        for name in canonical:
            if name == target or name.startswith(target + "."):
                alias_name = alias + name[len(target):]
                if alias_name in out:
                    raise ValueError(f"alias {alias_name!r} is also a parameter name of the model")
                out[name].append(alias_name)
    return out


def _shared_modules(model: nn.Module) -> list[tuple[str, str]]:
    """Pairs of public paths reaching the same module (two weight sets in MLX)."""
    first: dict[int, str] = {}
    pairs = []
    for path, module in sorted(model.named_modules(), key=lambda item: item[0]):
        if any(part.startswith("_") for part in path.split(".")) or not module.parameters():
            continue
        seen = first.setdefault(id(module), path)
        if seen != path:
            pairs.append((seen, path))
    # Only the top of each shared sub-tree.
    return [(a, b) for a, b in pairs if not any(b.startswith(top + ".") for _, top in pairs)]


# ---- checking and loading ---------------------------------------------------------

def _compare(model: nn.Module, source: Source):
    """The key report, the read state_dict and the model's layout."""
    names = torch_names(model)
    aliases = _alias_names(model, list(names.values()))
    current = dict(tree_flatten(model.parameters()))
    shapes = {torch: tuple(current[path].shape) for path, torch in names.items()}
    accepted = set(shapes) | {a for group in aliases.values() for a in group}
    state, steps = read_state_dict(source, accepted)
    report = compare_keys(shapes, aliases, state, steps, _shared_modules(model))
    return report, state, (names, aliases, current)


def check_torch_state_dict(model: nn.Module, source: Source) -> KeyReport:
    """Compare a state_dict with ``model`` without loading it.

    For checking a hand-written port: the report lists missing, unexpected
    (each with the closest expected name) and shape-mismatched keys, alias
    names whose values disagree, and modules the MLX model registers under
    two names.  ``str(report)`` is the text a failed strict load prints;
    ``report.ok`` says whether a strict load would succeed.

    Args:
        model: the lucid_mlx model.
        source: as for :func:`load_torch_state_dict`.

    Example:
        >>> report = check_torch_state_dict(twin, torch_model.state_dict())
        >>> print(report)
    """
    _check_model(model)
    return _compare(model, source)[0]


def load_torch_state_dict(model: nn.Module, source: Source, strict: bool = True) -> IncompatibleKeys:
    """Load PyTorch weights into a lucid_mlx model, in place.

    Names are PyTorch's (``encoder.0.weight``, ``bn.running_var``); each
    value is cast to the dtype of the model's array it replaces, as
    PyTorch's ``copy_`` does.  Nothing is loaded unless every check passes.
    Training checkpoints are unwrapped first: the weights under
    ``state_dict``, ``model_state_dict``, ``model``, ``network_weights``,
    ``net`` or ``network`` (nested wrappers too), without the ``module.``
    prefix of DataParallel/DDP or torch.compile's ``_orig_mod.``.  A shared
    module's weights load from either of its names; when both are given
    they must be equal.

    Args:
        model: an ``mlx.nn.Module`` whose structure mirrors the PyTorch model.
        source: a state_dict or checkpoint (names to torch tensors, NumPy
            arrays or mx.arrays), a ``.safetensors`` file (read without torch)
            or a ``.pt``/``.pth``/``.bin`` file written by ``torch.save``
            (needs torch; read with ``weights_only=True``).
        strict: if ``True``, missing or unexpected keys raise. Default: ``True``.

    Returns:
        ``IncompatibleKeys(missing_keys, unexpected_keys)``, both empty after
        a strict load; its ``unwrapped`` attribute says what was removed
        from the source.

    Raises:
        ValueError: a shape differs or alias values disagree (whatever
            ``strict`` is), or, with ``strict=True``, keys are missing or
            unexpected.  The message lists the keys by group, each
            unexpected one with the closest expected name.
        TypeError: ``model`` or ``source`` has the wrong type.
        ImportError: a ``.pt`` file is given and torch is not installed.

    Example:
        >>> keys = load_torch_state_dict(twin, torch_model.state_dict())
        >>> twin.eval()
    """
    _check_model(model)
    report, state, (names, aliases, current) = _compare(model, source)
    if report.mismatched or report.conflicts or (strict and not report.ok):
        hint = " (pass strict=False to load the matching keys)" if report.missing or report.unexpected else ""
        raise ValueError(f"state_dict does not match the model{hint}:\n{report.describe(shared=False)}")
    if report.shared:
        warnings.warn(report.describe_shared(), stacklevel=2)
    updates = []
    for path, name in names.items():
        given = next((k for k in [name, *aliases[name]] if k in state), None)
        if given is not None:
            updates.append((path, state[given].astype(current[path].dtype)))
    model.update(tree_unflatten(updates))
    mx.eval(model.parameters())
    return IncompatibleKeys(report.missing, report.unexpected, report.unwrapped)


def torch_state_dict(model: nn.Module) -> dict[str, mx.array]:
    """The model's arrays under their PyTorch names (parameters and buffers).

    A shared module's arrays appear under every name PyTorch's
    ``state_dict()`` gives them (its canonical name and its aliases).
    """
    names = torch_names(model)
    aliases = _alias_names(model, list(names.values()))
    out = {}
    for path, value in tree_flatten(model.parameters()):
        for key in [names[path], *aliases[names[path]]]:
            out[key] = value
    return out


def save_torch_state_dict(model: nn.Module, path: Union[str, "os.PathLike[str]"]) -> None:
    """Write the model's weights as a ``.safetensors`` file PyTorch can load.

    Load it in PyTorch with
    ``model.load_state_dict(safetensors.torch.load_file(path))``.  The file
    is written beside the target and moved over it, so an interrupted save
    leaves any earlier file intact.

    Args:
        model: the lucid_mlx model.
        path: destination, ending in ``.safetensors`` (any case).

    Raises:
        ValueError: ``path`` does not end in ``.safetensors``, is a
            directory, or its folder does not exist.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).lower().endswith(".safetensors"):
        raise ValueError(f"`path` must be a file name ending in .safetensors, got {path!r}")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"`path` {path!r} is a directory; pass a file name ending in .safetensors")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"`path` {path!r}: folder {folder!r} does not exist")
    state = torch_state_dict(model)
    mx.eval(list(state.values()))
    # mx.save_safetensors appends ".safetensors" unless the name ends in it (lower case).
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".safetensors")
    os.close(fd)
    try:
        mx.save_safetensors(tmp, state)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
