"""A library written against the protocols, and the sessions and doubles it accepts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar, assert_type

from sqlalchemy import (
    Connection,
    Engine,
    Result,
    ScalarResult,
    create_engine,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

from typed_session import (
    AsyncSessionLike,
    AsyncTransactionLike,
    BindResolver,
    Hook,
    IdentityChooser,
    IdentityMap,
    QueryChooser,
    ReplicaSession,
    Session,
    SessionEvents,
    SessionLike,
    SessionTransaction,
    ShardChooser,
    ShardedSession,
    TransactionLike,
)
from typed_session._loading import ExecutionOptions, ForUpdate, Params
from typed_session.asyncio import AsyncSession, AsyncSessionTransaction
from typed_session.protocols import SessionLike as SessionLikeFromModule

from .check_entity import User

_O = TypeVar("_O")

# -- a library, written against the protocols ------------------------------------------------


def rename_all(session: SessionLike[Engine], new_name: str) -> list[User]:
    """What a library does with the caller's session: never commits it."""
    users = list(session.scalars(select(User)))
    with session.begin_nested() as savepoint:
        assert_type(savepoint, TransactionLike)
        for user in users:
            user.name = new_name
        session.flush()
    assert_type(session.get(User, 1), User | None)
    assert_type(session.get_one(User, 1), User)
    assert_type(session.execute(select(User, User.id)), Result[User, int])
    assert_type(session.scalars(select(User.name)), ScalarResult[str])
    assert_type(session.merge(User(name="x")), User)
    assert_type(session.bind, Engine | None)
    assert_type(session.identity_map, IdentityMap)
    assert_type(session.info, dict[Any, Any])
    session.events.before_commit.listen(lambda s: None)
    return users


def any_bind(session: SessionLike) -> Engine | Connection | None:
    return session.bind


async def rename_all_async(session: AsyncSessionLike[AsyncEngine], new_name: str) -> None:
    for user in await session.scalars(select(User)):
        user.name = new_name
    async with session.begin_nested() as savepoint:
        assert_type(savepoint, AsyncTransactionLike)
        await session.flush()
    assert_type(await session.get(User, 1), User | None)
    assert_type(await session.get_one(User, 1), User)
    assert_type(session.bind, AsyncEngine | None)


# -- the sessions satisfy them ---------------------------------------------------------------

engine = create_engine("sqlite://")
session = Session(engine)
rename_all(session, "x")
any_bind(session)
as_protocol: SessionLike[Engine] = session
same_protocol: SessionLikeFromModule[Engine] = session
transaction: TransactionLike = session.begin_nested()
concrete_transaction: SessionTransaction = session.begin_nested()
transaction = concrete_transaction

with engine.connect() as conn:
    on_connection = Session(conn)
    any_bind(on_connection)
    as_any: SessionLike = on_connection
    as_connection: SessionLike[Connection] = on_connection
    # a session on a Connection is not what a library asking for an Engine wants
    rename_all(on_connection, "x")  # type: ignore[arg-type]


def subclasses(sharded: ShardedSession, replicas: ReplicaSession) -> None:
    """The sharded and the replica sessions are sessions to a library, too."""
    rename_all(replicas, "x")  # a ReplicaSession is a Session[Engine]
    any_bind(sharded)
    rename_all(sharded, "x")  # type: ignore[arg-type]  # its bind may be a Connection


# -- a wrong object is rejected --------------------------------------------------------------

rename_all(engine, "x")  # type: ignore[arg-type]
rename_all(object(), "x")  # type: ignore[arg-type]
rename_all(session.begin_nested(), "x")  # type: ignore[arg-type]
not_a_transaction: TransactionLike = session  # type: ignore[assignment]


async def async_sessions() -> None:
    async_engine = create_async_engine("sqlite+aiosqlite://")
    async with AsyncSession(async_engine) as async_session:
        await rename_all_async(async_session, "x")
        as_async: AsyncSessionLike[AsyncEngine] = async_session
        async_transaction: AsyncTransactionLike = async_session.begin_nested()
        concrete: AsyncSessionTransaction = async_session.begin_nested()
        async_transaction = concrete
        # the sync and the async sessions are not each other's
        rename_all(async_session, "x")  # type: ignore[arg-type]
        await rename_all_async(session, "x")  # type: ignore[arg-type]
        del as_async, async_transaction
    async with async_engine.connect() as async_conn:
        await rename_all_async(AsyncSession(async_conn), "x")  # type: ignore[arg-type]
        only_connection: AsyncSessionLike[AsyncConnection] = AsyncSession(async_conn)
        del only_connection


# -- a hand-written test double satisfies SessionLike -------------------------------------------


class FakeTransaction:
    """A SAVEPOINT that records what happened to it."""

    def __init__(self) -> None:
        self.is_active = True
        self.nested = True
        self.ended: list[str] = []

    def commit(self) -> None:
        self.ended.append("commit")

    def rollback(self) -> None:
        self.ended.append("rollback")

    def close(self) -> None:
        self.ended.append("close")

    def __enter__(self) -> FakeTransaction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.commit()


class FakeSession:
    """A session double that keeps added objects in a list and runs no SQL."""

    def __init__(self) -> None:
        self.bind: Engine | None = None
        self.info: dict[Any, Any] = {}
        self.identity_map = IdentityMap()
        self.events = SessionEvents()
        self.added: list[object] = []

    def add(self, instance: object, /) -> None:
        self.added.append(instance)

    def add_all(self, instances: Iterable[object], /) -> None:
        self.added.extend(instances)

    def delete(self, instance: object, /) -> None:
        self.added.remove(instance)

    def expunge(self, instance: object, /) -> None:
        self.added.remove(instance)

    def expire(self, instance: object, attribute_names: Iterable[str] | None = None, /) -> None:
        pass

    def refresh(
        self,
        instance: object,
        attribute_names: Iterable[str] | None = None,
        with_for_update: ForUpdate = None,
        /,
    ) -> None:
        pass

    def merge(self, instance: _O, /, *, load: bool = True) -> _O:
        self.added.append(instance)
        return instance

    def get(
        self,
        entity: type[_O],
        ident: object,
        /,
        *,
        populate_existing: bool = False,
        with_for_update: ForUpdate = None,
    ) -> _O | None:
        return next((o for o in self.added if isinstance(o, entity)), None)

    def get_one(self, entity: type[_O], ident: object, /) -> _O:
        found = self.get(entity, ident)
        assert found is not None
        return found

    # one signature, returning Any, fits every overload of the protocol's execute/scalars
    def execute(
        self,
        statement: Executable,
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Any:
        raise NotImplementedError("the double runs no SQL")

    def scalars(
        self,
        statement: Executable,
        params: Params = None,
        /,
        *,
        execution_options: ExecutionOptions = None,
    ) -> Any:
        return iter(self.added)

    def flush(self) -> None:
        pass

    def begin_nested(self) -> FakeTransaction:
        return FakeTransaction()


double = FakeSession()
double_as_protocol: SessionLike[Engine] = double
rename_all(double, "x")


class IncompleteDouble:
    """A double without ``flush`` and ``begin_nested``: not a session."""

    def add(self, instance: object, /) -> None:
        pass


rename_all(IncompleteDouble(), "x")  # type: ignore[arg-type]

# -- the protocols users implement, re-exported ----------------------------------------------


def resolver(entity: type[Any] | None, clause: object | None, /) -> Engine | None:
    return None


def shard_of(entity: type[Any], instance: Any, /) -> str:
    return "a"


def shards_of_key(entity: type[Any], primary_key: tuple[object, ...], /) -> list[str]:
    return ["a"]


def shards_of_statement(statement: Executable, /) -> list[str]:
    return ["a"]


a_resolver: BindResolver = resolver
a_shard_chooser: ShardChooser = shard_of
an_identity_chooser: IdentityChooser = shards_of_key
a_query_chooser: QueryChooser = shards_of_statement
not_a_resolver: BindResolver = shard_of  # type: ignore[assignment]
hook: Hook[[Session]] = session.events.before_commit


def on_commit(session: Session, /) -> None:
    pass


def wrong_listener(session: Session, extra: int, /) -> None:
    pass


hook.listen(on_commit)
hook.listen(wrong_listener)  # type: ignore[arg-type]
