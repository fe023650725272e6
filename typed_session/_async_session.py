"""``AsyncSession[AsyncBindT]``: the session for asyncio applications, over Core's ``AsyncEngine``.

No second copy of the session: an ``AsyncSession`` holds a sync ``Session`` (its
``sync_session``) bound to the async engine's ``sync_engine`` (or an ``AsyncConnection``'s
``sync_connection``), and runs each method that may send SQL in a greenlet
(``greenlet_spawn``), where Core's asyncio drivers await the database: the session's
logic, identity map, unit of work and transactions are the sync session's, unchanged.
Methods that never send SQL (``add``, ``expunge``, ``expire``...) are called directly.

What asyncio code cannot do is load on attribute access: there is no ``await`` in
``user.name``. So the sync session's owner gets an I/O guard: an expired attribute or an
unloaded relationship read outside a greenlet raises ``LazyLoadRefusedError``, naming
the attribute, the object and the ways out, before Core is reached.

This module imports ``sqlalchemy.ext.asyncio``, whose package loads SQLAlchemy's ORM
modules too (none is used here); ``import typed_session`` alone stays free of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Final,
    Generic,
    ParamSpec,
    TypeVar,
    final,
    overload,
)

from sqlalchemy.engine import Connection, CursorResult, Engine, Result, ScalarResult
from sqlalchemy.exc import ArgumentError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncResult, AsyncScalarResult
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import TypedReturnsRows
from typing_extensions import TypeVar as TypeVarDefault
from typing_extensions import TypeVarTuple, Unpack

from typed_session._binds import BindMap
from typed_session._config import SessionOptions
from typed_session._core import greenlet_spawn, in_greenlet
from typed_session._events import SessionEvents
from typed_session._identity import IdentityMap
from typed_session._loaders import eager_options
from typed_session._loading import (
    ExecutionOptions,
    ForUpdate,
    Params,
    entity_columns,
    yield_per_of,
)
from typed_session._records import NoPublicConstructor, internal_constructor
from typed_session._session import Session, close_all_sessions
from typed_session._state import InstanceState
from typed_session._transaction import SessionTransaction
from typed_session.exc import LazyLoadRefusedError

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

__all__ = [
    "NOT_PROXIED",
    "STREAM_YIELD_PER",
    "AsyncAttrs",
    "AsyncBindT",
    "AsyncSession",
    "AsyncSessionTransaction",
    "AwaitableAttrs",
]

AsyncBindT = TypeVarDefault(
    "AsyncBindT",
    bound=AsyncEngine | AsyncConnection,
    default=AsyncEngine | AsyncConnection,
    covariant=True,
)
"""The bind an ``AsyncSession`` was made with (covariant: ``bind`` is read-only)."""

_O = TypeVar("_O")
_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")
_P = ParamSpec("_P")

#: the rows a stream() loads at a time unless its yield_per says otherwise
STREAM_YIELD_PER: Final = 1000

#: public names of ``Session`` that ``AsyncSession`` leaves out, and why (a test checks
#: that every other public name of ``Session`` has its counterpart here)
NOT_PROXIED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "connection": (
            "a sync Connection cannot be used in asyncio code; run statements with "
            "await session.execute(...), or use it inside await session.run_sync(fn)"
        ),
        "query": (
            "the legacy Query runs its SQL when read, which asyncio code cannot await; "
            "use await session.scalars(select(Entity)...)"
        ),
    }
)


def _refuse_outside_greenlet(
    state: InstanceState[Any],
    attribute: str,
    relationship: bool,  # noqa: FBT001  # the IOGuard's positional signature
) -> LazyLoadRefusedError | None:
    """The I/O guard of an ``AsyncSession``: an implicit load sends SQL only in a greenlet."""
    if in_greenlet():
        return None
    return LazyLoadRefusedError(state.obj(), attribute, relationship=relationship)


def _sync_bind(bind: AsyncEngine | AsyncConnection) -> Engine | Connection:
    if isinstance(bind, AsyncEngine):
        return bind.sync_engine
    connection = bind.sync_connection
    if connection is None:
        raise InvalidRequestError(
            f"{bind!r} has not been started, so it has no connection to run on: enter it "
            "first (async with engine.connect() as conn:) and give the session conn"
        )
    return connection


class AsyncSession(Generic[AsyncBindT]):
    """A ``Session`` for asyncio code: await what may send SQL; the rest as the sync session.

    Args:
        bind: an ``AsyncEngine`` (``create_async_engine(url)``) or a started
            ``AsyncConnection``; its sync side (``sync_engine`` / ``sync_connection``)
            is the bind of ``sync_session``.
        **options: the options of ``Session`` (``autoflush``, ``expire_on_commit``,
            ``binds`` of sync binds such as ``async_engine.sync_engine``...).

    Raises:
        ArgumentError: for a bind that is not an ``AsyncEngine`` or ``AsyncConnection``.
        SessionConfigError: for an unknown option or a value of the wrong type.
    """

    def __init__(self, bind: AsyncBindT | None = None, **options: Unpack[SessionOptions]) -> None:
        given: object = bind
        if given is not None and not isinstance(given, AsyncEngine | AsyncConnection):
            hint = (
                "for a sync Engine or Connection use typed_session.Session"
                if isinstance(given, Engine | Connection)
                else "make one with sqlalchemy.ext.asyncio.create_async_engine(url)"
            )
            raise ArgumentError(
                f"AsyncSession() bind must be an AsyncEngine or an AsyncConnection, not "
                f"{given!r}; {hint}"
            )
        self._bind: AsyncBindT | None = bind
        sync = Session(None if bind is None else _sync_bind(bind), **options)
        sync._owner.io_guard = _refuse_outside_greenlet
        #: the sync session every call runs through (in a greenlet where it may send SQL)
        self.sync_session: Session[Engine | Connection] = sync

    def __repr__(self) -> str:
        return f"<AsyncSession {self.sync_session.hash_key} bind={self._bind!r}>"

    @property
    def bind(self) -> AsyncBindT | None:
        """The ``AsyncEngine`` or ``AsyncConnection`` the session was made with."""
        return self._bind

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def run_sync(
        self,
        fn: Callable[Concatenate[Session[Engine | Connection], _P], _T],
        /,
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """Call ``fn(sync_session, *args, **kwargs)`` in a greenlet, where it may load lazily.

        For sync-only code, and for reading what asyncio code may not load implicitly:
        ``await session.run_sync(lambda _: user.addresses)``.
        """
        return await greenlet_spawn(fn, self.sync_session, *args, **kwargs)

    # -- what never sends SQL: the sync session's, as it is ---------------------------

    def add(self, instance: object) -> None:
        """Place an object in the session (``Session.add``)."""
        self.sync_session.add(instance)

    def add_all(self, instances: Iterable[object]) -> None:
        """Add each object (``Session.add_all``)."""
        self.sync_session.add_all(instances)

    def expunge(self, instance: object) -> None:
        """Remove an object from the session (``Session.expunge``)."""
        self.sync_session.expunge(instance)

    def enable_relationship_loading(self, instance: object) -> None:
        """Let an object without a row load relationships here (awaitable_attrs, run_sync)."""
        self.sync_session.enable_relationship_loading(instance)

    def expunge_all(self) -> None:
        """Remove every object from the session (``Session.expunge_all``)."""
        self.sync_session.expunge_all()

    def expire(self, instance: object, attribute_names: Iterable[str] | None = None) -> None:
        """Discard loaded values of an object (``Session.expire``).

        Reading them again needs ``await session.refresh(obj, [...])`` in asyncio code.
        """
        self.sync_session.expire(instance, attribute_names)

    def expire_all(self) -> None:
        """Expire every persistent object of the session (``Session.expire_all``)."""
        self.sync_session.expire_all()

    def is_modified(self, instance: object, include_collections: bool = True) -> bool:  # noqa: FBT001, FBT002
        """Whether the object has changes a flush would write (``Session.is_modified``)."""
        return self.sync_session.is_modified(instance, include_collections)

    def in_transaction(self) -> bool:
        """Whether a transaction is in progress."""
        return self.sync_session.in_transaction()

    def in_nested_transaction(self) -> bool:
        """Whether a SAVEPOINT is in progress."""
        return self.sync_session.in_nested_transaction()

    @property
    def is_active(self) -> bool:
        """Whether the session's transaction (if any) can still be used."""
        return self.sync_session.is_active

    @property
    def transaction(self) -> AsyncSessionTransaction | None:
        """The transaction in progress, if any (the innermost one)."""
        return self.get_transaction()

    def get_transaction(self) -> AsyncSessionTransaction | None:
        """The root transaction in progress, if any."""
        tx = self.sync_session.get_transaction()
        return None if tx is None else _new_async_session_transaction(self, tx.nested, tx)

    def get_nested_transaction(self) -> AsyncSessionTransaction | None:
        """The innermost SAVEPOINT in progress, if any."""
        tx = self.sync_session.get_nested_transaction()
        return None if tx is None else _new_async_session_transaction(self, tx.nested, tx)

    @property
    def new(self) -> list[object]:
        """The pending objects (``Session.new``)."""
        return self.sync_session.new

    @property
    def dirty(self) -> list[object]:
        """The persistent objects with changes (``Session.dirty``)."""
        return self.sync_session.dirty

    @property
    def deleted(self) -> list[object]:
        """The objects marked for deletion (``Session.deleted``)."""
        return self.sync_session.deleted

    @property
    def identity_map(self) -> IdentityMap:
        """The identity map of the sync session."""
        return self.sync_session.identity_map

    def __contains__(self, instance: object) -> bool:
        return instance in self.sync_session

    def __iter__(self) -> Iterator[object]:
        return iter(self.sync_session)

    @property
    def info(self) -> dict[Any, Any]:
        """The sync session's ``info``: a dictionary of the application's own."""
        return self.sync_session.info

    @property
    def events(self) -> SessionEvents:
        """The event hooks; listeners run in the greenlet and receive the sync session."""
        return self.sync_session.events

    @property
    @contextmanager
    def no_autoflush(self) -> Iterator[Self]:
        """A block in which queries do not autoflush: ``with session.no_autoflush:``."""
        with self.sync_session.no_autoflush:
            yield self

    @property
    def binds(self) -> BindMap:
        """The sync session's bind map (sync binds)."""
        return self.sync_session.binds

    def bind_mapper(self, entity: type[Any], bind: AsyncEngine | AsyncConnection) -> None:
        """Send the statements of ``entity`` to ``bind``."""
        self.sync_session.bind_mapper(entity, _sync_bind(bind))

    def bind_table(self, table: Any, bind: AsyncEngine | AsyncConnection) -> None:
        """Send the statements that use ``table`` to ``bind``."""
        self.sync_session.bind_table(table, _sync_bind(bind))

    def get_bind(
        self, entity: type[Any] | None = None, clause: object | None = None
    ) -> Engine | Connection:
        """The sync bind statements of an entity or a statement run on (``Session.get_bind``)."""
        return self.sync_session.get_bind(entity, clause)

    # -- transactions -------------------------------------------------------------------

    def begin(self) -> AsyncSessionTransaction:
        """The transaction, to begin with ``async with session.begin():`` (or ``await``)."""
        return _new_async_session_transaction(self)

    def begin_nested(self) -> AsyncSessionTransaction:
        """A SAVEPOINT, to begin with ``async with session.begin_nested():`` (or ``await``)."""
        return _new_async_session_transaction(self, nested=True)

    async def commit(self) -> None:
        """Flush, then commit the whole transaction (``Session.commit``)."""
        await greenlet_spawn(self.sync_session.commit)

    async def rollback(self) -> None:
        """Roll back the whole transaction (``Session.rollback``)."""
        await greenlet_spawn(self.sync_session.rollback)

    async def prepare(self) -> None:
        """PREPARE the transaction of a two-phase session (``Session.prepare``)."""
        await greenlet_spawn(self.sync_session.prepare)

    async def flush(self) -> None:
        """Write pending changes (``Session.flush``)."""
        await greenlet_spawn(self.sync_session.flush)

    async def close(self) -> None:
        """Expunge every object and release the connections (``Session.close``)."""
        await greenlet_spawn(self.sync_session.close)

    async def invalidate(self) -> None:
        """Close, invalidating the connections (``Session.invalidate``)."""
        await greenlet_spawn(self.sync_session.invalidate)

    @classmethod
    async def close_all(cls) -> None:
        """Close every session in memory, sync and async (``close_all_sessions()``)."""
        await greenlet_spawn(close_all_sessions)

    # -- objects that may need SQL ------------------------------------------------------

    async def delete(self, instance: object) -> None:
        """Mark an object for deletion; the delete cascade may load relationships."""
        await greenlet_spawn(self.sync_session.delete, instance)

    async def delete_all(self, instances: Iterable[object]) -> None:
        """``delete`` each object."""
        await greenlet_spawn(self.sync_session.delete_all, instances)

    async def bulk_save_objects(
        self,
        objects: Iterable[object],
        *,
        return_defaults: bool = False,
        update_changed_only: bool = True,
        preserve_order: bool = True,
    ) -> None:
        """Insert or update objects without the unit of work (``Session.bulk_save_objects``)."""
        await greenlet_spawn(
            functools.partial(
                self.sync_session.bulk_save_objects,
                objects,
                return_defaults=return_defaults,
                update_changed_only=update_changed_only,
                preserve_order=preserve_order,
            )
        )

    async def bulk_insert_mappings(
        self,
        entity: type[_O],
        mappings: Iterable[Mapping[str, Any]],
        *,
        return_defaults: bool = False,
        render_nulls: bool = False,
    ) -> None:
        """Insert rows from mappings (``Session.bulk_insert_mappings``)."""
        await greenlet_spawn(
            functools.partial(
                self.sync_session.bulk_insert_mappings,
                entity,
                mappings,
                return_defaults=return_defaults,
                render_nulls=render_nulls,
            )
        )

    async def bulk_update_mappings(
        self, entity: type[_O], mappings: Iterable[Mapping[str, Any]]
    ) -> None:
        """Update rows by primary key from mappings (``Session.bulk_update_mappings``)."""
        await greenlet_spawn(self.sync_session.bulk_update_mappings, entity, mappings)

    async def merge(self, instance: _O, *, load: bool = True) -> _O:
        """Copy an object's state into this session's object (``Session.merge``)."""
        return await greenlet_spawn(self.sync_session.merge, instance, load=load)

    async def merge_all(self, instances: Iterable[_O], *, load: bool = True) -> list[_O]:
        """``merge`` each object (``Session.merge_all``)."""
        return await greenlet_spawn(self.sync_session.merge_all, instances, load=load)

    async def refresh(
        self,
        instance: object,
        attribute_names: Iterable[str] | None = None,
        with_for_update: ForUpdate = None,
    ) -> None:
        """Reload attributes of a persistent object; named relationships load too."""
        await greenlet_spawn(self.sync_session.refresh, instance, attribute_names, with_for_update)

    # -- reading ------------------------------------------------------------------------

    async def get(
        self,
        entity: type[_O],
        ident: object,
        /,
        *,
        populate_existing: bool = False,
        with_for_update: ForUpdate = None,
    ) -> _O | None:
        """The object of ``entity`` with primary key ``ident``, or ``None`` (``Session.get``)."""
        return await greenlet_spawn(
            self.sync_session.get,
            entity,
            ident,
            populate_existing=populate_existing,
            with_for_update=with_for_update,
        )

    async def get_one(self, entity: type[_O], ident: object, /) -> _O:
        """Like ``get``, but raise ``NoResultFound`` instead of returning ``None``."""
        return await greenlet_spawn(self.sync_session.get_one, entity, ident)

    @overload
    async def execute(
        self,
        statement: TypedReturnsRows[*_Ts],
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Result[*_Ts]: ...

    @overload
    async def execute(
        self,
        statement: UpdateBase,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> CursorResult[*tuple[Any, ...]]: ...

    @overload
    async def execute(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Result[*tuple[Any, ...]]: ...

    async def execute(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Result[*tuple[Any, ...]]:
        """Run a statement after an autoflush; every row is loaded before it returns.

        Raises:
            InvalidRequestError: for ``yield_per`` / ``stream_results``: use ``stream()``.
        """
        options = {**statement.get_execution_options(), **(execution_options or {})}
        if options.get("stream_results") or options.get("yield_per") is not None:
            raise InvalidRequestError(
                "AsyncSession.execute() loads every row before it returns, so it cannot "
                "stream (yield_per / stream_results given): use await session.stream(...) "
                "or await session.stream_scalars(...) for a result read as it arrives"
            )
        return await greenlet_spawn(
            self.sync_session.execute, statement, params, execution_options=execution_options
        )

    @overload
    async def scalars(
        self,
        statement: TypedReturnsRows[_T],
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> ScalarResult[_T]: ...

    @overload
    async def scalars(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> ScalarResult[Any]: ...

    async def scalars(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> ScalarResult[Any]:
        """Run a statement and return the first column of each row (``select(User)``: users)."""
        result = await self.execute(statement, params, execution_options=execution_options)
        return result.scalars()

    @overload
    async def scalar(
        self,
        statement: TypedReturnsRows[_T],
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> _T | None: ...

    @overload
    async def scalar(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Any: ...

    async def scalar(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Any:
        """Run a statement and return the first column of its first row, or ``None``."""
        result = await self.execute(statement, params, execution_options=execution_options)
        return result.scalar()

    @overload
    async def stream(
        self,
        statement: TypedReturnsRows[*_Ts],
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> AsyncResult[*_Ts]: ...

    @overload
    async def stream(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> AsyncResult[*tuple[Any, ...]]: ...

    async def stream(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> AsyncResult[*tuple[Any, ...]]:
        """Run a statement with a server-side cursor; its rows are read as they are awaited.

        Objects are loaded ``yield_per`` rows at a time (1000 unless the statement or
        ``execution_options`` say otherwise), each batch through the identity map and
        its relationship loaders; objects the reader drops can be collected, so memory
        stays flat however many rows there are. ``async for row in result:``.
        """
        options = dict(execution_options or {})
        if yield_per_of(statement, options) is None:
            options["yield_per"] = STREAM_YIELD_PER
        self._refuse_eager_loads_mid_stream(statement)
        result = await greenlet_spawn(
            self.sync_session.execute, statement, params, execution_options=options
        )
        return AsyncResult(result)

    def _refuse_eager_loads_mid_stream(self, statement: Executable) -> None:
        """On MySQL / MariaDB a streamed result must be read to its end before another query.

        A relationship loaded per batch (``selectinload``, ``lazy="selectin"``) would
        send its query while the server-side cursor is open, discarding the rest of it.

        Raises:
            InvalidRequestError: for such a statement on MySQL or MariaDB.
        """
        if self.sync_session.get_bind(clause=statement).dialect.name not in ("mysql", "mariadb"):
            return
        found = entity_columns(statement)
        mappers = [] if found is None else [b.mapper for b in found[0]]
        selectin = [
            f"{m.class_.__name__}.{r.key}"
            for m in mappers
            for r in m.relationships.values()
            if r.lazy == "selectin"
        ]
        if eager_options(statement) or selectin:
            raise InvalidRequestError(
                "MySQL and MariaDB cannot send the query of a relationship loader "
                f"(selectinload(), or lazy='selectin' of {selectin or 'none'}) while a "
                "streamed result is still open on the connection: the rest of the stream "
                "would be lost. Stream the rows without loader options and load the "
                "relationships afterwards, or read them with await session.scalars(...)"
            )

    @overload
    async def stream_scalars(
        self,
        statement: TypedReturnsRows[_T],
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> AsyncScalarResult[_T]: ...

    @overload
    async def stream_scalars(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> AsyncScalarResult[Any]: ...

    async def stream_scalars(
        self,
        statement: Executable,
        params: Params = None,
        *,
        execution_options: ExecutionOptions = None,
    ) -> AsyncScalarResult[Any]:
        """``stream()``, yielding the first column of each row: ``async for user in ...``."""
        result = await self.stream(statement, params, execution_options=execution_options)
        return result.scalars()


@final
class AsyncSessionTransaction(
    metaclass=NoPublicConstructor, obtained_by="call session.begin() or session.begin_nested()"
):
    """A transaction of an ``AsyncSession``: ``async with session.begin():`` or ``await``.

    Begun when entered or awaited; the block commits it when it ends normally and rolls
    it back on an error, as ``with session.begin():`` does for the sync session.
    """

    __slots__ = ("_sync", "nested", "session")

    def __init__(
        self,
        session: AsyncSession[Any],
        nested: bool = False,  # noqa: FBT001, FBT002
        sync_transaction: SessionTransaction | None = None,
    ) -> None:
        #: the session whose transaction this is
        self.session: AsyncSession[Any] = session
        #: whether it is a SAVEPOINT
        self.nested: bool = nested
        self._sync = sync_transaction

    def __repr__(self) -> str:
        return f"<AsyncSessionTransaction of {self.session!r} {self._sync!r}>"

    @property
    def sync_transaction(self) -> SessionTransaction:
        """The sync session's transaction this one proxies.

        Raises:
            InvalidRequestError: before it was begun (entered or awaited).
        """
        tx = self._sync
        if tx is None:
            raise InvalidRequestError(
                "this AsyncSessionTransaction has not begun: use it as "
                "`async with session.begin():`, or `tx = await session.begin()`"
            )
        return tx

    @property
    def is_active(self) -> bool:
        """Whether the transaction has begun and can still be used."""
        return self._sync is not None and self._sync.is_active

    async def start(self) -> Self:
        """Begin the transaction (a SAVEPOINT flushes first); return this object."""
        sync = self.session.sync_session
        if self.nested:
            self._sync = await greenlet_spawn(sync.begin_nested)
        else:
            self._sync = sync.begin()  # no SQL: connections are procured on first use
        return self

    def __await__(self) -> Generator[Any, None, Self]:
        return self.start().__await__()

    async def __aenter__(self) -> Self:
        await self.start()
        self.sync_transaction.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await greenlet_spawn(self.sync_transaction.__exit__, exc_type, exc, tb)

    async def commit(self) -> None:
        """Commit (a SAVEPOINT: release) the transaction."""
        await greenlet_spawn(self.sync_transaction.commit)

    async def rollback(self) -> None:
        """Roll the transaction back (a SAVEPOINT: to the SAVEPOINT)."""
        await greenlet_spawn(self.sync_transaction.rollback)

    async def close(self) -> None:
        """Close the transaction, rolling back what it has not committed."""
        await greenlet_spawn(self.sync_transaction.close)


_new_async_session_transaction = internal_constructor(AsyncSessionTransaction)


class AsyncAttrs:
    """A mixin for entity classes: ``await obj.awaitable_attrs.children`` loads lazily.

    Each attribute read through ``awaitable_attrs`` runs in a greenlet, where an
    expired attribute or an unloaded relationship of an ``AsyncSession``'s object loads.
    """

    __slots__ = ()

    @property
    def awaitable_attrs(self) -> AwaitableAttrs:
        """The object's attributes as awaitables: ``await obj.awaitable_attrs.name``."""
        return _new_awaitable_attrs(self)


@final
class AwaitableAttrs(metaclass=NoPublicConstructor, obtained_by="read obj.awaitable_attrs"):
    """``obj.awaitable_attrs``: ``await`` one attribute, loaded in a greenlet if need be."""

    __slots__ = ("_instance",)

    def __init__(self, instance: object) -> None:
        self._instance = instance

    def __getattr__(self, name: str) -> Any:
        return greenlet_spawn(getattr, self._instance, name)


_new_awaitable_attrs = internal_constructor(AwaitableAttrs)
