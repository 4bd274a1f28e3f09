"""MONAI's name-based layer arguments (``act``, ``norm``, ``dropout``) resolved to MLX layers.

MONAI networks take their activation, normalisation and dropout as a name
(``"prelu"``, ``"INSTANCE"``; case does not matter), a ``(name, {kwargs})``
pair (``("group", {"num_groups": 8})``) or a layer class.  The functions here
accept exactly those forms and build a layer with PyTorch's semantics on
NCDHW input and PyTorch's parameter names, as MONAI's ``get_act_layer``,
``get_norm_layer`` and ``get_dropout_layer`` do.  A name MONAI knows but MLX
cannot reproduce exactly is refused with an error naming it.

Mappings worth knowing:

- ``syncbatch`` builds a :class:`~lucid_mlx.nn.BatchNorm3d`: on a single
  process PyTorch's ``SyncBatchNorm`` computes exactly that, and its
  state_dict keys are the same.  Statistics are not synchronised across
  processes.
- ``instance_nvfuser`` builds an :class:`~lucid_mlx.nn.InstanceNorm3d`, which
  MONAI itself falls back to when NVIDIA's apex is missing.
- Dropout with ``dropout_dim=1`` zeroes single elements (``mlx.nn.Dropout``);
  ``dropout_dim=2`` or ``3`` zeroes whole channels
  (:class:`~lucid_mlx.nn.Dropout3d`), which is what PyTorch's ``Dropout2d``
  also does on 5-D input.  Masks come from MLX's random state, so they
  differ from PyTorch's for the same seed.
- ``layer``, ``localresponse`` (norms) and ``alphadropout`` are refused.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Union

import mlx.nn as mnn

from ... import nn as lnn
from ..blocks.activation import GEGLU, MemoryEfficientSwish, Mish, Swish

__all__ = ["Act", "Dropout", "Norm", "get_act_layer", "get_dropout_layer", "get_norm_layer", "split_args"]

LayerArg = Union[str, tuple, Callable[..., mnn.Module]]


def _gelu(approximate: str = "none") -> mnn.Module:
    # PyTorch's "tanh" approximation is the formula MLX calls "precise".
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: `approximate` must be 'none' or 'tanh', got {approximate!r}")
    return mnn.GELU("none" if approximate == "none" else "precise")


# PyTorch's constructor signatures (including ignored `inplace` flags), so
# that MONAI-style kwargs are checked and pass through unchanged.
_ACTS: dict[str, Callable[..., mnn.Module]] = {
    "ELU": lambda alpha=1.0, inplace=False: mnn.ELU(alpha),
    "RELU": lambda inplace=False: mnn.ReLU(),
    "LEAKYRELU": lnn.LeakyReLU,
    "PRELU": lnn.PReLU,
    "RELU6": lambda inplace=False: mnn.ReLU6(),
    "SELU": lnn.SELU,
    "CELU": lambda alpha=1.0, inplace=False: mnn.CELU(alpha),
    "GELU": _gelu,
    "SIGMOID": mnn.Sigmoid,
    "TANH": mnn.Tanh,
    "SOFTMAX": lnn.Softmax,
    "LOGSOFTMAX": lnn.LogSoftmax,
    "SWISH": Swish,
    "MEMSWISH": MemoryEfficientSwish,
    "MISH": Mish,
    "GEGLU": GEGLU,
}

_NORMS: dict[str, Callable[..., mnn.Module]] = {
    "BATCH": lnn.BatchNorm3d,
    "INSTANCE": lnn.InstanceNorm3d,
    "INSTANCE_NVFUSER": lnn.InstanceNorm3d,
    "SYNCBATCH": lambda num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
    process_group=None, device=None, dtype=None: lnn.BatchNorm3d(
        num_features, eps, momentum, affine, track_running_stats, device, dtype),
    "GROUP": lnn.GroupNorm,
}
# Norms whose PyTorch class depends on the number of spatial dimensions.
_DIMENSIONAL = {"BATCH", "INSTANCE", "INSTANCE_NVFUSER", "SYNCBATCH"}
_REFUSED_NORMS = {
    "LAYER": "PyTorch's LayerNorm over trailing (D, H, W) shapes is not implemented",
    "LOCALRESPONSE": "local response normalisation is not implemented",
}


class _Names:
    """Attribute access to the names a factory knows, as MONAI's ``Act.PRELU`` (== ``"PRELU"``)."""

    def __init__(self, kind: str, names):
        self._kind, self._names = kind, tuple(names)

    def __getattr__(self, name: str) -> str:
        if name in self._names:
            return name
        raise AttributeError(f"{self._kind} has no member {name!r}; known: {', '.join(self._names)}")

    def __dir__(self):
        return list(self._names)


Act = _Names("Act", _ACTS)
Norm = _Names("Norm", list(_NORMS) + list(_REFUSED_NORMS))
Dropout = _Names("Dropout", ("DROPOUT", "ALPHADROPOUT"))


def split_args(args: LayerArg) -> tuple[Union[str, Callable], dict]:
    """Split a MONAI layer argument into ``(name or class, kwargs)``.

    Args:
        args: a name, or a pair ``(name or class, dict of keyword arguments)``.

    Example:
        >>> split_args(("prelu", {"init": 0.1}))
        ('prelu', {'init': 0.1})
    """
    if isinstance(args, str):
        return args, {}
    if (not isinstance(args, (tuple, list)) or len(args) != 2
            or not (isinstance(args[0], str) or callable(args[0])) or not isinstance(args[1], dict)):
        raise TypeError(
            "layer specifiers must be a name or a pair (name or layer class, dict of arguments), "
            f"got {args!r}"
        )
    return args[0], dict(args[1])


def _build(kind: str, name: str, ctor: Callable[..., Any], kwargs: dict) -> mnn.Module:
    """Call ``ctor(**kwargs)``, reporting unknown or missing arguments against the layer's name."""
    try:
        sig = inspect.signature(ctor)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        try:
            sig.bind(**kwargs)
        except TypeError as err:
            accepted = ", ".join(p for p in sig.parameters)
            raise TypeError(f"`{kind}` {name!r} got arguments {sorted(kwargs)}: {err}; it accepts: "
                            f"{accepted}") from None
    layer = ctor(**kwargs)
    if not isinstance(layer, mnn.Module):
        raise TypeError(f"`{kind}` {name!r} must build an mlx.nn.Module, got {type(layer).__name__}")
    return layer


def _lookup(kind: str, name, table: dict, refused: dict | None = None):
    if callable(name):
        return getattr(name, "__name__", repr(name)), name
    key = name.upper()
    if key in table:
        return name, table[key]
    if refused and key in refused:
        raise ValueError(f"`{kind}` {name!r} is not supported by lucid_mlx: {refused[key]}")
    raise ValueError(f"`{kind}` {name!r} is not a known name; use one of "
                     f"{', '.join(k.lower() for k in table)}")


def get_act_layer(name: LayerArg) -> mnn.Module:
    """An activation layer from MONAI's ``act`` argument.

    Args:
        name: ``"relu"``, ``"prelu"``, ... (any case), ``(name, {kwargs})``,
            a callable building an ``mlx.nn.Module``, or ``""`` for identity.

    Example:
        >>> get_act_layer(("prelu", {"num_parameters": 8, "init": 0.1}))
        PReLU(num_parameters=8)
    """
    if isinstance(name, str) and name == "":
        return mnn.Identity()
    act_name, kwargs = split_args(name)
    label, ctor = _lookup("act", act_name, _ACTS)
    return _build("act", label, ctor, kwargs)


def get_norm_layer(name: LayerArg, spatial_dims: int | None = 1, channels: int | None = 1) -> mnn.Module:
    """A normalisation layer from MONAI's ``norm`` argument.

    As in MONAI, ``channels`` fills the layer's ``num_features`` (batch,
    instance) or ``num_channels`` (group) unless the kwargs give it.

    Args:
        name: ``"batch"``, ``"instance"``, ``("group", {"num_groups": 4})``, ...,
            a callable, or ``""`` for identity.
        spatial_dims: Must be 3 for the batch and instance norms. Default: ``1``
            (MONAI's default; give 3).
        channels: Number of channels C. Default: ``1``.

    Example:
        >>> get_norm_layer(("instance", {"affine": True}), spatial_dims=3, channels=16)
    """
    if isinstance(name, str) and name == "":
        return mnn.Identity()
    norm_name, kwargs = split_args(name)
    label, ctor = _lookup("norm", norm_name, _NORMS, _REFUSED_NORMS)
    if isinstance(norm_name, str) and norm_name.upper() in _DIMENSIONAL and spatial_dims != 3:
        raise ValueError(f"`spatial_dims` must be 3 for norm {norm_name!r} (lucid_mlx is 3-D), "
                         f"got {spatial_dims!r}")
    try:
        params = inspect.signature(ctor).parameters
    except (TypeError, ValueError):
        params = {}
    for option in ("num_features", "num_channels"):
        if option in params and option not in kwargs:
            kwargs[option] = channels
    return _build("norm", label, ctor, kwargs)


def get_dropout_layer(name: Union[LayerArg, float], dropout_dim: int | None = 1) -> mnn.Module:
    """A dropout layer from MONAI's ``dropout`` argument.

    Args:
        name: a probability ``p``, ``("dropout", {"p": 0.2})``, a callable, or
            ``""`` for identity.
        dropout_dim: ``1`` drops single elements; ``2`` or ``3`` drop whole
            channels of NCDHW input. Default: ``1``.

    Example:
        >>> get_dropout_layer(0.1, dropout_dim=3)
        Dropout3d(p=0.1, inplace=False)
    """
    if isinstance(name, str) and name == "":
        return mnn.Identity()
    if isinstance(name, (int, float)) and not isinstance(name, bool):
        drop_name, kwargs = "dropout", {"p": float(name)}
    else:
        drop_name, kwargs = split_args(name)
    if callable(drop_name):
        return _build("dropout", getattr(drop_name, "__name__", repr(drop_name)), drop_name, kwargs)
    if drop_name.upper() == "ALPHADROPOUT":
        raise ValueError("`dropout` 'alphadropout' is not supported by lucid_mlx")
    if drop_name.upper() != "DROPOUT":
        raise ValueError(f"`dropout` {drop_name!r} is not a known name; use 'dropout'")
    if dropout_dim not in (1, 2, 3):
        raise ValueError(f"`dropout_dim` must be 1, 2 or 3, got {dropout_dim!r}")

    def dropout(p: float = 0.5, inplace: bool = False) -> mnn.Module:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"dropout probability `p` must be in [0, 1), got {p!r}")
        return mnn.Dropout(p) if dropout_dim == 1 else lnn.Dropout3d(p, inplace)

    return _build("dropout", drop_name, dropout, kwargs)
