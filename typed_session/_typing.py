"""Aliases shared by the internal modules, so that each says what a value is, not ``object``.

The identity map keys each mapper's rows by the bare primary-key value (a tuple only for a
composite key): building an ``IdentityKey`` per lookup would cost ~30x more
(``../shared/bench/FLOORS.md``). ``Identity`` names that internal value.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from typing import Final, TypeAlias, final

__all__ = ["MISSING", "Identity", "IdentityToken", "Missing"]

Identity: TypeAlias = Hashable
"""The internal identity of a row: the bare key value, or a tuple of values (composite)."""

IdentityToken: TypeAlias = Hashable
"""Which shard or database a row lives in; ``None`` when there is only one."""


@final
class Missing(enum.Enum):
    """The sentinel for "no value", distinct from ``None`` (a legitimate column value)."""

    MISSING = enum.auto()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = Missing.MISSING
