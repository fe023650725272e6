"""Every private SQLAlchemy Core name typed_session touches, behind one small function each.

Core's public API covers almost all the package needs. The things it does not offer
publicly (eleven), and each is used here and nowhere else, with a contract test
(``tests/unit/test_core_contract.py``), so that a Core upgrade that changes one of them
breaks in one place and says which:

1. ``FromClause._annotate`` marks an entity's table so that ``select(User)`` can be told
   apart from ``select(users_table)``;
2. ``ClauseElement._annotations`` reads that mark back;
3. ``Select._raw_columns`` is where the mark survives (``column_descriptions`` drops it);
4. ``UpdateBase._returning`` is the same for ``insert/update/delete(...).returning(...)``
   (``returning_column_descriptions`` drops it too);
5. ``sqlalchemy.engine.result.SimpleResultMetaData`` (not exported) describes the columns
   of a result made of loaded objects;
6. ``IteratorResult(..., _source_supports_scalars=True)`` lets ``scalars()`` yield those
   objects as they are, without wrapping each in a one-element row;
7. ``sqlalchemy.sql.util.find_tables`` (an internal module) lists the tables a statement
   uses, for bind resolution;
8. ``Executable._with_options`` holds the options given to ``.options(...)`` (the
   relationship loader options are read back from it), and ``ExecutableOption``, the
   base class those options must have, leaves its ``_clone`` unannotated (typed here);
9. ``GenerativeSelect._limit_clause`` / ``_offset_clause`` say whether a SELECT has a
   LIMIT or OFFSET (a joined collection cannot be loaded under one);
10. ``sqlalchemy.util.concurrency`` (an internal module): ``greenlet_spawn`` runs sync code
    in a greenlet whose Core I/O awaits the asyncio driver, ``await_`` is that await, and
    ``in_greenlet`` tells whether the code runs in such a greenlet (``AsyncSession``);
11. ``GenerativeSelect._for_update_arg`` says whether a SELECT locks rows (``FOR UPDATE``),
    which a read replica cannot do.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, ParamSpec, Self, TypeVar

from sqlalchemy import FromClause, Select, UpdateBase
from sqlalchemy.engine import IteratorResult, Result
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.base import ExecutableOption
from sqlalchemy.sql.util import find_tables
from sqlalchemy.util import concurrency

__all__ = [
    "StatementOption",
    "annotate",
    "annotations_of",
    "await_",
    "greenlet_spawn",
    "has_limit",
    "in_greenlet",
    "locks_rows",
    "object_result",
    "raw_columns",
    "returning_columns",
    "statement_options",
    "tables_of",
]

_NO_ANNOTATIONS: Mapping[str, Any] = {}
_P = ParamSpec("_P")
_T = TypeVar("_T")


def annotate(clause: FromClause, values: Mapping[str, Any]) -> FromClause:
    """Return a copy of ``clause`` carrying ``values`` as Core annotations."""
    return clause._annotate(dict(values))


def annotations_of(element: object) -> Mapping[str, Any]:
    """The Core annotations of a clause element (empty for anything else)."""
    annotations: Mapping[str, Any] | None = getattr(element, "_annotations", None)
    return annotations or _NO_ANNOTATIONS


def raw_columns(statement: Select[Any]) -> Sequence[Any]:
    """What was passed to ``select(...)``, in order, annotations intact."""
    return statement._raw_columns


def returning_columns(statement: UpdateBase) -> Sequence[Any]:
    """What was passed to ``.returning(...)``, in order, annotations intact (empty if none)."""
    return statement._returning


def object_result(
    keys: Sequence[str], rows: Iterator[Any], *, bare_scalars: bool = False
) -> Result[Any]:
    """A Core ``Result`` over rows made in Python (tuples, or bare objects).

    Args:
        keys: the column names.
        rows: the rows; bare objects when ``bare_scalars`` is set.
        bare_scalars: the rows are single objects, not tuples: ``scalars()`` yields them
            as they are (the result then has exactly one column).
    """
    return IteratorResult(
        SimpleResultMetaData(list(keys)), rows, _source_supports_scalars=bare_scalars
    )


def tables_of(clause: object) -> list[Any]:
    """Every table a statement uses: FROMs, joins, and the target of INSERT/UPDATE/DELETE.

    ``sqlalchemy.sql.util.find_tables`` is an internal Core module's function.
    """
    if not isinstance(clause, ClauseElement):
        return []
    return list(find_tables(clause, include_crud=True, include_joins=True))


def statement_options(statement: object) -> Sequence[Any]:
    """The options a statement was given with ``.options(...)`` (empty for anything else)."""
    options: Sequence[Any] | None = getattr(statement, "_with_options", None)
    return options or ()


class StatementOption(ExecutableOption):
    """A base for options of ``.options(...)`` that Core carries and ignores (loader options).

    Subclasses keep a ``__dict__`` (no ``__slots__``): Core copies options through it.
    """

    def _clone(self, **kw: Any) -> Self:
        """A shallow copy (Core's, with the signature it lacks)."""
        clone: Self = super()._clone(**kw)  # type: ignore[no-untyped-call]  # Core's lacks types
        return clone


def has_limit(statement: Select[Any]) -> bool:
    """Whether a SELECT has a LIMIT or an OFFSET."""
    return statement._limit_clause is not None or statement._offset_clause is not None


async def greenlet_spawn(fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run sync ``fn`` in a new greenlet; Core I/O inside it awaits the asyncio driver.

    ``sqlalchemy.util.concurrency.greenlet_spawn``, typed from ``fn``'s signature.
    """
    # a partial: greenlet_spawn has a keyword of its own that kwargs must not reach
    return await concurrency.greenlet_spawn(functools.partial(fn, *args, **kwargs))


def await_(awaitable: Awaitable[_T]) -> _T:
    """Await ``awaitable`` from sync code running under ``greenlet_spawn``.

    Raises:
        sqlalchemy.exc.MissingGreenlet: outside ``greenlet_spawn`` (Core's own error).
    """
    return concurrency.await_(awaitable)


def in_greenlet() -> bool:
    """Whether the calling code runs under ``greenlet_spawn`` (so Core I/O can await)."""
    return concurrency.in_greenlet()


def locks_rows(statement: object) -> bool:
    """Whether a SELECT asks for row locks (``with_for_update()``)."""
    return isinstance(statement, Select) and statement._for_update_arg is not None
