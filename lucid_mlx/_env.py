"""The one rule for lucid_mlx's environment variables.

A variable that is unset, empty or only white space means "not set": the
default applies.  Anything else must be a valid value, or the variable's
reader raises a ``ValueError`` naming the variable and the value.
"""

from __future__ import annotations

import os


def read(name: str) -> str | None:
    """The stripped value of ``name``, or None when it is unset or blank."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()
