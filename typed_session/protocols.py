"""The stable tier for library authors: what a library may ask of a session.

A library that works with the caller's session (a repository layer, a test helper, an
audit log) should be written against these protocols, not against ``Session``: any
session of typed_session satisfies them, so does a test double written by hand, and they
change only with a major version.

* ``SessionLike[BindT]``: what a library needs from a ``Session``: adding, deleting and
  reading objects, running statements, flushing, SAVEPOINTs, ``merge`` / ``refresh`` /
  ``expire`` / ``expunge``, the identity map, ``info`` and the event hooks. It leaves
  ``commit()`` and ``rollback()`` out on purpose: the transaction is the caller's.
* ``AsyncSessionLike[AsyncBindT]``: the same for an ``AsyncSession``; what may send SQL is
  awaited.
* ``TransactionLike`` / ``AsyncTransactionLike``: what ``begin_nested()`` returns.
* Re-exported from their modules, the protocols a user implements: ``BindResolver``
  (chooses a bind), ``ShardChooser``, ``IdentityChooser`` and ``QueryChooser`` (choose
  shards), and ``Hook``, the typed event hook every ``events`` attribute is made of.

Each protocol is ``runtime_checkable``, so ``isinstance(obj, SessionLike)`` tells whether
an object has every member (not whether their signatures fit: that is the type
checker's job).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload, runtime_checkable

from sqlalchemy.engine import Connection, CursorResult, Engine, Result, ScalarResult
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import TypedReturnsRows
from typing_extensions import TypeVar as TypeVarDefault
from typing_extensions import TypeVarTuple

from typed_session._binds import BindResolver as BindResolver
from typed_session._events import Hook as Hook
from typed_session._events import SessionEvents
from typed_session._identity import IdentityMap
from typed_session._loading import ExecutionOptions, ForUpdate, Params
from typed_session._sharding import IdentityChooser as IdentityChooser
from typed_session._sharding import QueryChooser as QueryChooser
from typed_session._sharding import ShardChooser as ShardChooser

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    # not at run time: sqlalchemy.ext.asyncio loads SQLAlchemy's ORM modules, and
    # ``import typed_session`` stays free of them (see typed_session.asyncio)
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "AsyncSessionLike",
    "AsyncTransactionLike",
    "BindResolver",
    "Hook",
    "IdentityChooser",
    "QueryChooser",
    "SessionLike",
    "ShardChooser",
    "TransactionLike",
]

#: the bind of a ``SessionLike``: covariant (``bind`` is read-only), defaulting to either
BindT_co = TypeVarDefault(
    "BindT_co", bound=Engine | Connection, default=Engine | Connection, covariant=True
)
#: the bind of an ``AsyncSessionLike``, as ``BindT_co`` for the async engine and connection
AsyncBindT_co = TypeVarDefault(
    "AsyncBindT_co",
    bound="AsyncEngine | AsyncConnection",
    default="AsyncEngine | AsyncConnection",
    covariant=True,
)
_O = TypeVar("_O")
_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


@runtime_checkable
class TransactionLike(Protocol):
    """A transaction or SAVEPOINT of a session: ``with session.begin_nested():``.

    The block commits (releases) it when it ends normally and rolls it back on an error.
    """

    @property
    def is_active(self) -> bool:
        """Whether the transaction can still be used."""
        ...

    @property
    def nested(self) -> bool:
        """Whether it is a SAVEPOINT."""
        ...

    def commit(self) -> None:
        """Commit the transaction (a SAVEPOINT: release it)."""
        ...

    def rollback(self) -> None:
        """Roll the transaction back (a SAVEPOINT: to the SAVEPOINT)."""
        ...

    def close(self) -> None:
        """End the transaction, rolling back what it has not committed."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> None: ...


@runtime_checkable
class AsyncTransactionLike(Protocol):
    """A transaction or SAVEPOINT of an async session: ``async with session.begin_nested():``."""

    @property
    def is_active(self) -> bool:
        """Whether the transaction has begun and can still be used."""
        ...

    @property
    def nested(self) -> bool:
        """Whether it is a SAVEPOINT."""
        ...

    async def commit(self) -> None:
        """Commit the transaction (a SAVEPOINT: release it)."""
        ...

    async def rollback(self) -> None:
        """Roll the transaction back (a SAVEPOINT: to the SAVEPOINT)."""
        ...

    async def close(self) -> None:
        """End the transaction, rolling back what it has not committed."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> None: ...


@runtime_checkable
class SessionLike(Protocol[BindT_co]):
    """What a library needs from a session; ``Session[BindT]`` satisfies it.

    ``SessionLike[Engine]`` accepts a session made with an ``Engine``; a bare
    ``SessionLike`` accepts any. ``execute`` and ``scalars`` are typed from the
    statement as the session's are. Listeners registered through ``events`` receive the
    ``Session`` itself as their first argument.
    """

    @property
    def bind(self) -> BindT_co | None:
        """The ``Engine`` or ``Connection`` the session was made with, if any."""
        ...

    @property
    def info(self) -> dict[Any, Any]:
        """A dictionary of the application's own, kept with the session."""
        ...

    @property
    def identity_map(self) -> IdentityMap:
        """The persistent objects of the session, by identity key."""
        ...

    @property
    def events(self) -> SessionEvents:
        """The session's typed event hooks: ``session.events.before_flush.listen(fn)``."""
        ...

    def add(self, instance: object, /) -> None:
        """Make an object pending (or attach a detached one); inserted at the next flush."""
        ...

    def add_all(self, instances: Iterable[object], /) -> None:
        """``add`` each object."""
        ...

    def delete(self, instance: object, /) -> None:
        """Mark a persistent object for deletion at the next flush."""
        ...

    def expunge(self, instance: object, /) -> None:
        """Remove an object from the session."""
        ...

    def expire(self, instance: object, attribute_names: Iterable[str] | None = None, /) -> None:
        """Discard loaded values of an object so that the next read reloads them."""
        ...

    def refresh(
        self,
        instance: object,
        attribute_names: Iterable[str] | None = None,
        with_for_update: ForUpdate = None,
        /,
    ) -> None:
        """Reload attributes of a persistent object from the database."""
        ...

    def merge(self, instance: _O, /, *, load: bool = True) -> _O:
        """Copy an object's state into the session's object of the same identity."""
        ...

    def get(
        self,
        entity: type[_O],
        ident: object,
        /,
        *,
        populate_existing: bool = False,
        with_for_update: ForUpdate = None,
    ) -> _O | None:
        """The object of ``entity`` with primary key ``ident``, or ``None``."""
        ...

    def get_one(self, entity: type[_O], ident: object, /) -> _O:
        """Like ``get``, but raise ``NoResultFound`` instead of returning ``None``."""
        ...

    @overload
    def execute(
        self,
        statement: TypedReturnsRows[*_Ts],
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Result[*_Ts]: ...

    @overload
    def execute(
        self,
        statement: UpdateBase,
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> CursorResult[*tuple[Any, ...]]: ...

    @overload
    def execute(
        self,
        statement: Executable,
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Result[*tuple[Any, ...]]: ...

    def execute(
        self,
        statement: Executable,
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Result[*tuple[Any, ...]]:
        """Run a Core statement in the session's transaction, after an autoflush."""
        ...

    @overload
    def scalars(
        self,
        statement: TypedReturnsRows[_T],
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> ScalarResult[_T]: ...

    @overload
    def scalars(
        self,
        statement: Executable,
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> ScalarResult[Any]: ...

    def scalars(
        self,
        statement: Executable,
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> ScalarResult[Any]:
        """Run a statement and yield the first column of each row."""
        ...

    def flush(self) -> None:
        """Write pending changes to the database, in dependency order."""
        ...

    def begin_nested(self) -> TransactionLike:
        """Begin a SAVEPOINT; use it as a context manager."""
        ...


@runtime_checkable
class AsyncSessionLike(Protocol[AsyncBindT_co]):
    """``SessionLike`` for asyncio code; ``AsyncSession[AsyncBindT]`` satisfies it.

    What may send SQL is a coroutine; ``add``, ``expire`` and ``expunge`` are not.
    """

    @property
    def bind(self) -> AsyncBindT_co | None:
        """The ``AsyncEngine`` or ``AsyncConnection`` the session was made with, if any."""
        ...

    @property
    def info(self) -> dict[Any, Any]:
        """A dictionary of the application's own, kept with the session."""
        ...

    @property
    def identity_map(self) -> IdentityMap:
        """The persistent objects of the session, by identity key."""
        ...

    @property
    def events(self) -> SessionEvents:
        """The typed event hooks; listeners receive the sync ``Session``."""
        ...

    def add(self, instance: object, /) -> None:
        """Make an object pending (or attach a detached one); inserted at the next flush."""
        ...

    def add_all(self, instances: Iterable[object], /) -> None:
        """``add`` each object."""
        ...

    async def delete(self, instance: object, /) -> None:
        """Mark a persistent object for deletion at the next flush."""
        ...

    def expunge(self, instance: object, /) -> None:
        """Remove an object from the session."""
        ...

    def expire(self, instance: object, attribute_names: Iterable[str] | None = None, /) -> None:
        """Discard loaded values of an object; read them with ``refresh`` afterwards."""
        ...

    async def refresh(
        self,
        instance: object,
        attribute_names: Iterable[str] | None = None,
        with_for_update: ForUpdate = None,
        /,
    ) -> None:
        """Reload attributes of a persistent object from the database."""
        ...

    async def merge(self, instance: _O, /, *, load: bool = True) -> _O:
        """Copy an object's state into the session's object of the same identity."""
        ...

    async def get(
        self,
        entity: type[_O],
        ident: object,
        /,
        *,
        populate_existing: bool = False,
        with_for_update: ForUpdate = None,
    ) -> _O | None:
        """The object of ``entity`` with primary key ``ident``, or ``None``."""
        ...

    async def get_one(self, entity: type[_O], ident: object, /) -> _O:
        """Like ``get``, but raise ``NoResultFound`` instead of returning ``None``."""
        ...

    @overload
    async def execute(
        self,
        statement: TypedReturnsRows[*_Ts],
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Result[*_Ts]: ...

    @overload
    async def execute(
        self,
        statement: UpdateBase,
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> CursorResult[*tuple[Any, ...]]: ...

    @overload
    async def execute(
        self,
        statement: Executable,
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Result[*tuple[Any, ...]]: ...

    async def execute(
        self,
        statement: Executable,
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Result[*tuple[Any, ...]]:
        """Run a Core statement in the session's transaction, after an autoflush."""
        ...

    @overload
    async def scalars(
        self,
        statement: TypedReturnsRows[_T],
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> ScalarResult[_T]: ...

    @overload
    async def scalars(
        self,
        statement: Executable,
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> ScalarResult[Any]: ...

    async def scalars(
        self,
        statement: Executable,
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> ScalarResult[Any]:
        """Run a statement and yield the first column of each row."""
        ...

    async def flush(self) -> None:
        """Write pending changes to the database, in dependency order."""
        ...

    def begin_nested(self) -> AsyncTransactionLike:
        """A SAVEPOINT, begun by ``async with``."""
        ...
