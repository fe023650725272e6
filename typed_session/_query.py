"""``Query[T]``: the seed's ``session.query(User)``, kept as a typed builder over ``select(T)``.

The legacy form: new code writes ``session.scalars(select(User).where(...))``, which
this is a thin layer over. A ``Query`` is immutable (every method returns a new one) and
holds the parts of its statement; ``statement`` builds the ``select(T)``, and the
methods that return results run it through the session's own ``scalars()`` /
``scalar()`` / ``get()``, so that they autoflush and give objects through the identity
map exactly as those do. One entity class per query: several entities or columns are
``session.execute(select(User, Order.id))``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, Never, TypeVar, final

from sqlalchemy import ColumnExpressionArgument, Select, func, select
from sqlalchemy.exc import ArgumentError, InvalidRequestError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.base import ExecutableOption

from typed_session._mapping.mapper import Mapper, mapper_of
from typed_session._records import NoPublicConstructor

if TYPE_CHECKING:
    from typed_session._session import Session

__all__ = ["Query"]

_T = TypeVar("_T")

OrderByArgument = ColumnExpressionArgument[Any] | str
"""What ``order_by()`` takes: a column expression, or the name of a selected column."""


@final
class Query(Generic[_T], metaclass=NoPublicConstructor, obtained_by="call session.query(Entity)"):
    """The objects of one entity class, as ``session.query(User)`` selects them.

    Made by ``Session.query``. Every method that refines the query returns a new
    ``Query``; ``all()``, ``first()``, ``one()``, ``one_or_none()``, ``count()`` and
    iteration run it (after an autoflush), ``get()`` looks in the identity map first.

    Args:
        session: the session the query runs in.
        entity: the entity class whose objects it selects.

    Raises:
        ArgumentError: for more than one entity, or anything but an entity class (a
            column): select those with ``session.execute(select(...))``.
        UnmappedClassError: for a class that is not an entity.
    """

    __slots__ = (
        "_entity",
        "_limit",
        "_mapper",
        "_offset",
        "_options",
        "_order_by",
        "_session",
        "_where",
    )

    def __init__(self, session: Session, entity: type[_T], /, *more: Never) -> None:
        given: tuple[object, ...] = (entity, *more)  # as a caller without types may pass
        if len(given) > 1 or not isinstance(entity, type):
            shown = ", ".join(e.__name__ if isinstance(e, type) else str(e) for e in given)
            raise ArgumentError(
                f"query() takes one entity class, not {shown}: for several entities or "
                "columns, run session.execute(select(User, Order.id)) and read its rows"
            )
        self._session = session
        self._entity = entity
        self._mapper: Mapper[_T] = mapper_of(entity)
        self._where: tuple[ColumnExpressionArgument[bool], ...] = ()
        self._order_by: tuple[OrderByArgument, ...] = ()
        self._limit: int | None = None
        self._offset: int | None = None
        self._options: tuple[ExecutableOption, ...] = ()

    def __repr__(self) -> str:
        return f"<Query of {self._entity.__name__}: {self.statement}>"

    @property
    def session(self) -> Session:
        """The session the query runs in."""
        return self._session

    @property
    def statement(self) -> Select[_T]:
        """The Core ``select(T)`` this query runs: what ``session.scalars()`` would take."""
        stmt = select(self._entity)
        if self._where:
            stmt = stmt.where(*self._where)
        if self._order_by:
            stmt = stmt.order_by(*self._order_by)
        if self._limit is not None:
            stmt = stmt.limit(self._limit)
        if self._offset is not None:
            stmt = stmt.offset(self._offset)
        if self._options:
            stmt = stmt.options(*self._options)
        return stmt

    # -- refining: each returns a new Query ---------------------------------------------

    def filter(self, *criterion: ColumnExpressionArgument[bool]) -> Query[_T]:
        """Add WHERE criteria, joined by AND: ``query.filter(User.name == "ann")``."""
        new = copy.copy(self)
        new._where = (*self._where, *criterion)
        return new

    def filter_by(self, **values: object) -> Query[_T]:
        """Add ``attribute == value`` criteria by mapped attribute name: ``filter_by(name="ann")``.

        Raises:
            InvalidRequestError: if a name is not a mapped attribute of the entity.
        """
        columns = self._mapper.columns
        unknown = [key for key in values if key not in columns]
        if unknown:
            raise InvalidRequestError(
                f'Entity namespace for "{self._entity.__name__}" has no property '
                f"{', '.join(repr(k) for k in unknown)}: filter_by() takes the mapped "
                f"attributes of {self._entity.__name__} ({', '.join(self._mapper.column_keys)}); "
                "use filter() for any other condition"
            )
        return self.filter(*(columns[key].column == value for key, value in values.items()))

    def order_by(self, *clauses: OrderByArgument) -> Query[_T]:
        """Add ORDER BY terms after those already given: ``order_by(User.name.desc())``."""
        new = copy.copy(self)
        new._order_by = (*self._order_by, *clauses)
        return new

    def limit(self, limit: int | None) -> Query[_T]:
        """Return at most ``limit`` rows (``None``: no limit)."""
        new = copy.copy(self)
        new._limit = limit
        return new

    def offset(self, offset: int | None) -> Query[_T]:
        """Skip the first ``offset`` rows (``None``: none)."""
        new = copy.copy(self)
        new._offset = offset
        return new

    def options(self, *options: ExecutableOption) -> Query[_T]:
        """Add statement options, as ``select(T).options(...)`` takes them."""
        new = copy.copy(self)
        new._options = (*self._options, *options)
        return new

    # -- running: through the session (autoflush, identity map) -------------------------

    def all(self) -> list[_T]:
        """Every object the query selects, in order."""
        session = self._session
        return list(session.scalars(self.statement))

    def __iter__(self) -> Iterator[_T]:
        session = self._session
        return iter(session.scalars(self.statement))

    def first(self) -> _T | None:
        """The first object (the query is run with LIMIT 1), or ``None`` if there is none."""
        limit = 1 if self._limit is None else min(self._limit, 1)
        session = self._session
        return session.scalars(self.limit(limit).statement).first()

    def one(self) -> _T:
        """The one object the query selects.

        Raises:
            NoResultFound: if it selects none.
            MultipleResultsFound: if it selects more than one.
        """
        found = self.one_or_none()
        if found is None:
            raise NoResultFound(
                "No row was found when one was required: "
                f"{self._described()} selected none. Use one_or_none() or first() to "
                "receive None instead"
            )
        return found

    def one_or_none(self) -> _T | None:
        """The one object the query selects, or ``None`` if it selects none.

        Raises:
            MultipleResultsFound: if it selects more than one.
        """
        session = self._session
        result = session.scalars(self.statement)
        try:
            return result.one_or_none()
        except MultipleResultsFound:
            raise MultipleResultsFound(
                "Multiple rows were found when exactly one was required: "
                f"{self._described()} selected several. Narrow it with filter() or "
                "filter_by() (by primary key: get()), or take the first with first()"
            ) from None

    def count(self) -> int:
        """Count the rows the query selects, in SQL.

        The query's SELECT becomes a subquery, counted by ``SELECT count(*) FROM (...)``,
        so that a limit and an offset count as they select.
        """
        counted = select(func.count()).select_from(self.statement.subquery())
        session = self._session
        return session.scalars(counted).one()

    def get(self, ident: object) -> _T | None:
        """The object with primary key ``ident``, as ``session.get(T, ident)`` finds it.

        The identity map first (no SQL when the object is loaded), else a SELECT by key.

        Raises:
            InvalidRequestError: if the query has criteria, a limit or an offset, which a
                lookup by primary key would ignore; or if ``ident`` does not fit the key.
        """
        if self._where or self._limit is not None or self._offset is not None:
            raise InvalidRequestError(
                "Query.get() being called on a Query with existing criterion: get() looks "
                "an object up by primary key alone, and would ignore filter(), limit() and "
                f"offset(). Call it on session.query({self._entity.__name__}), or use "
                "one_or_none() with a filter on the key"
            )
        session = self._session
        return session.get(self._entity, ident)

    def _described(self) -> str:
        return f"the query of {self._entity.__name__}"
