"""``Sequential``: a chain of modules whose state_dict names are PyTorch's; ``Reuse``: a second use of one."""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator, Union

import mlx.core as mx
import mlx.nn as nn


def _check_position(name: str, position: int) -> None:
    # mlx.utils.tree_unflatten turns children "0", "1", ... into a list, and
    # Module.update then reaches them by position: a child named by an
    # integer must sit at that position, or weights would land on another child.
    if name.isdigit() and name != str(position):
        raise ValueError(f"a child named by an integer must be named by its position: {name!r} would be "
                         f"at position {position}")


class Sequential(nn.Module):
    r"""Applies its child modules in order, as ``torch.nn.Sequential``.

    Children are stored under their names ("0", "1", ... or the keys of an
    ``OrderedDict``), so a parameter is ``0.weight`` or ``conv.weight`` in
    :func:`lucid_mlx.torch_state_dict`, exactly PyTorch's key, where
    ``mlx.nn.Sequential`` would name it ``layers.0.weight``.

    Integer indices count the children in order, as in PyTorch; this is also
    how ``Module.update`` reaches children named "0", "1", ... when it is
    handed the lists that ``mlx.utils.tree_unflatten`` makes of them, so a
    child named by an integer must sit at that position (deleting a child
    from the middle of a positional Sequential is refused for that reason).

    Args:
        *args: Modules, named "0", "1", ...; or a single ``OrderedDict``
            (or ``dict``) of names to modules.

    Example:
        >>> from collections import OrderedDict
        >>> from lucid_mlx import nn
        >>> block = nn.Sequential(OrderedDict(conv=nn.Conv3d(1, 4, 3), act=nn.PReLU(4)))
        >>> sorted(lucid_mlx.torch_state_dict(block))
        ['act.weight', 'conv.bias', 'conv.weight']
        >>> block[0] is block.conv
        True
    """

    def __init__(self, *args: Union[nn.Module, "OrderedDict[str, nn.Module]"]):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], dict) and not isinstance(args[0], nn.Module):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def add_module(self, name: str, module: nn.Module) -> None:
        """Append ``module`` under ``name`` (replacing a child of that name in place)."""
        if not isinstance(name, str):
            raise TypeError(f"`name` must be a str, got {name!r} ({type(name).__name__})")
        if not name or "." in name:
            raise ValueError(f"`name` must be a non-empty string without '.', got {name!r}")
        if name.startswith("_"):
            # MLX skips "_"-prefixed keys in parameters(): the child would vanish from state_dicts.
            raise ValueError(f"`name` must not start with '_', got {name!r}")
        if not isinstance(module, nn.Module):
            raise TypeError(f"Sequential children must be mlx.nn.Modules, got {type(module).__name__} "
                            f"for {name!r}")
        if name in self or hasattr(type(self), name):
            if not isinstance(self.get(name), nn.Module):
                raise ValueError(f"`name` {name!r} is already an attribute of {type(self).__name__}")
        else:
            _check_position(name, len(self))
        self[name] = module

    def append(self, module: nn.Module) -> "Sequential":
        """Append ``module`` under the next integer name."""
        self.add_module(str(len(self)), module)
        return self

    def _names(self) -> list[str]:
        return [k for k, v in dict.items(self) if isinstance(v, nn.Module)]

    def _index(self, idx: int) -> str:
        names = self._names()
        if not -len(names) <= idx < len(names):
            raise IndexError(f"index {idx} is out of range for a Sequential of {len(names)} modules")
        return names[idx]

    def __getitem__(self, key):
        if isinstance(key, slice):
            # Integer names are renumbered from 0 (PyTorch keeps them), see _check_position.
            picked = self._names()[key]
            return Sequential(OrderedDict((str(i) if n.isdigit() else n, dict.__getitem__(self, n))
                                          for i, n in enumerate(picked)))
        if isinstance(key, int) and not isinstance(key, bool):
            key = self._index(key)
        return dict.__getitem__(self, key)

    def __setitem__(self, key, value):
        if isinstance(key, int) and not isinstance(key, bool):
            key = self._index(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key):
        if isinstance(key, int) and not isinstance(key, bool):
            key = self._index(key)
        for position, name in enumerate(n for n in self._names() if n != key):
            _check_position(name, position)
        dict.__delitem__(self, key)

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[nn.Module]:
        # PyTorch iterates over the modules; dict iteration (keys) stays
        # available as keys() for MLX's own tree walks.
        return iter([dict.__getitem__(self, n) for n in self._names()])

    def __call__(self, x: mx.array) -> mx.array:
        for module in self:
            x = module(x)
        return x

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for name in self._names():
            child = repr(dict.__getitem__(self, name)).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        extra = self._extra_repr()
        if len(lines) == 1:
            return f"{type(self).__name__}({extra})"
        if extra:
            lines.insert(1, f"  {extra}")
        return "\n".join(lines) + "\n)"


class Reuse(nn.Module):
    r"""A second use of a module that is registered elsewhere in the model.

    PyTorch lets one module sit under two names (MONAI's SegResNet has its
    activation both as ``act_mod`` and as ``conv_final[1]``); its state_dict
    then lists the weights under both, but the model trains one set.  An MLX
    model that registered the module twice would hold two entries in its
    parameter tree: gradients and optimizer updates would split between
    them and the last one written would win.  ``Reuse(module)`` calls
    ``module`` but keeps it in a private attribute, so its arrays belong to
    the one place the model registers it and the gradient sums over both
    uses.  The model declares the position's PyTorch name as an alias in a
    ``torch_aliases()`` method (see :mod:`lucid_mlx.torch_io`), so both
    names load and save.

    Args:
        module (Module): The module to call, registered elsewhere.

    Example:
        >>> class Net(mlx.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.act = nn.PReLU()
        ...         self.head = nn.Sequential(nn.Conv3d(2, 2, 1), nn.Reuse(self.act))
        ...     def torch_aliases(self):
        ...         return {"head.1": "act"}  # PyTorch's head.1.weight is act.weight
        ...     def __call__(self, x):
        ...         return self.head(self.act(x))
        >>> sorted(lucid_mlx.torch_state_dict(Net()))
        ['act.weight', 'head.0.bias', 'head.0.weight', 'head.1.weight']
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"`module` must be an mlx.nn.Module, got {type(module).__name__}")
        # "_"-prefixed: MLX's parameters() skips it, so the arrays are not listed twice.
        self._module = module

    @property
    def module(self) -> nn.Module:
        """The reused module."""
        return self._module

    def __call__(self, *args, **kwargs):
        return self._module(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Reuse({self._module!r})"
