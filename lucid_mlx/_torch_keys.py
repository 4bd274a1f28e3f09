"""How a state_dict's keys compare with a model's: the report behind strict loads.

Kept apart from the reading and writing in ``torch_io`` because the same
report serves a failed load, ``check_torch_state_dict`` and its text is
what a person porting a network reads, so it is worth keeping short: every
group is cut after ``_SHOWN`` entries, with a count of the rest.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Mapping

import mlx.core as mx

_SHOWN = 10


@dataclass
class KeyReport:
    """How a state_dict's keys compare with a model's PyTorch names.

    Attributes:
        missing: names of the model that the source lacks (sorted).
        unexpected: names in the source that the model does not have (sorted).
        mismatched: ``(name, source shape, model shape)`` of keys whose shapes differ.
        conflicts: ``(alias, name)`` pairs of one shared module whose values differ.
        shared: ``(path, other path)`` of modules the MLX model registers under
            two names, which MLX trains as two independent sets of weights.
        unwrapped: what was removed from the source before matching.
        expected: every name the model accepts (for the "did you mean" hints).
    """

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    shared: list[tuple[str, str]] = field(default_factory=list)
    unwrapped: tuple[str, ...] = ()
    expected: list[str] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """True when a strict load succeeds (shared modules only warn)."""
        return not (self.missing or self.unexpected or self.mismatched or self.conflicts)

    def suggestion(self, key: str) -> str | None:
        """The expected name closest to ``key``, preferring the missing ones."""
        for pool in (self.missing, self.expected):
            match = difflib.get_close_matches(key, pool, n=1, cutoff=0.5)
            if match:
                return match[0]
        return None

    def _unexpected_lines(self) -> list[str]:
        lines = []
        for key in self.unexpected[:_SHOWN]:
            near = self.suggestion(key)
            lines.append(f"{key} (did you mean {near}?)" if near else key)
        return lines

    def describe(self, shared: bool = True) -> str:
        """The report as indented lines, one group per heading."""
        groups = [
            ("missing keys", self.missing, self.missing[:_SHOWN]),
            ("unexpected keys", self.unexpected, self._unexpected_lines()),
            ("shape mismatch", self.mismatched,
             [f"{k}: source {s}, model {m}" for k, s, m in self.mismatched[:_SHOWN]]),
            ("shared-module names holding different values", self.conflicts,
             [f"{a} != {k}" for a, k in self.conflicts[:_SHOWN]]),
        ]
        out = []
        for title, items, shown in groups:
            if not items:
                continue
            more = [f"... and {len(items) - len(shown)} more"] if len(items) > len(shown) else []
            out.append(f"  {title} ({len(items)}): " + "\n    ".join(shown + more))
        if shared and self.shared:
            out.append("  " + self.describe_shared())
        if self.unwrapped:
            out.append(f"  (read after removing {', '.join(self.unwrapped)})")
        return "\n".join(out) if out else "  all keys match"

    def describe_shared(self) -> str:
        pairs = ", ".join(f"{a!r} and {b!r}" for a, b in self.shared[:_SHOWN])
        return (f"modules registered under two names ({len(self.shared)}): {pairs}; MLX treats them as "
                "independent weights (optimizer updates and gradients split between them). Register "
                "the module once, keep the other use in an attribute starting with '_' (inside a "
                "Sequential: lucid_mlx.nn.Reuse(module)), and declare the other name in a "
                "torch_aliases() method (see lucid_mlx.torch_io)")

    def __str__(self) -> str:
        return "state_dict compared with the model:\n" + self.describe()


def compare_keys(
    shapes: Mapping[str, tuple],
    aliases: Mapping[str, list[str]],
    state: Mapping[str, mx.array],
    unwrapped: list[str],
    shared: list[tuple[str, str]],
) -> KeyReport:
    """Compare ``state`` with a model's names and shapes.

    Args:
        shapes: canonical PyTorch name -> shape of the model's array.
        aliases: canonical name -> its other names (a shared module's).
        state: the source, already unwrapped.
        unwrapped: what was removed from the source.
        shared: modules registered twice in the MLX model.
    """
    report = KeyReport(shared=list(shared), unwrapped=tuple(unwrapped))
    for name, shape in shapes.items():
        group = [name, *aliases.get(name, [])]
        report.expected += group
        given = [k for k in group if k in state]
        if not given:
            report.missing += group
        for key in given:
            if tuple(state[key].shape) != shape:
                report.mismatched.append((key, tuple(state[key].shape), shape))
        if len(given) > 1 and all(tuple(state[k].shape) == shape for k in given):
            first = state[given[0]]
            report.conflicts += [(k, given[0]) for k in given[1:]
                                 if not mx.array_equal(state[k], first, equal_nan=True).item()]
    expected = set(report.expected)
    report.missing.sort()
    report.unexpected = sorted(k for k in state if k not in expected)
    return report
