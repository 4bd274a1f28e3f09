"""Input PyTorch refuses must be refused by lucid_mlx too, with an error of its own.

Each layer's test file lists such calls as ``Refusal``s: the lucid_mlx call,
the exception and message expected from it, and the same call in PyTorch
(run only when torch is installed) to show the refusal is PyTorch's rule,
not an invention.  ``refusal_tests(cases)`` makes the file's two tests::

    test_refused, test_refused_by_torch_too = refusal_tests(REFUSED)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

import pytest


@dataclass(frozen=True)
class Refusal:
    name: str
    call: Callable[[], object]
    error: type
    match: str
    torch_call: Optional[Callable[[object], object]] = None  # receives the torch module

    def __str__(self) -> str:
        return self.name


def assert_refused(case: Refusal) -> None:
    with pytest.raises(case.error, match=case.match) as info:
        case.call()
    message = str(info.value)
    assert not re.match(r"\s*\[\w+\]", message), f"MLX error text leaked: {message}"


def assert_torch_refuses(case: Refusal) -> None:
    torch = pytest.importorskip("torch")
    if case.torch_call is None:
        pytest.skip("no PyTorch counterpart")
    with pytest.raises((RuntimeError, ValueError, TypeError)):
        case.torch_call(torch)


def refusal_tests(cases: list[Refusal]):
    """The two parametrised tests over ``cases``, for a test module to bind."""

    @pytest.mark.parametrize("case", cases, ids=str)
    def test_refused(case):
        assert_refused(case)

    @pytest.mark.parametrize("case", cases, ids=str)
    def test_refused_by_torch_too(case):
        assert_torch_refuses(case)

    return test_refused, test_refused_by_torch_too
