"""An ``AsyncSession`` as a user drives it: what each await gives, typed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, assert_type

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Result,
    Row,
    ScalarResult,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncResult,
    AsyncScalarResult,
    create_async_engine,
)

from typed_session import Session
from typed_session.asyncio import (
    AsyncSession,
    AsyncSessionTransaction,
    async_sessionmaker,
)

from .check_entity import User


async def construction() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    assert_type(engine, AsyncEngine)
    assert_type(AsyncSession(engine), AsyncSession[AsyncEngine])
    assert_type(AsyncSession(engine, expire_on_commit=False), AsyncSession[AsyncEngine])
    async with engine.connect() as conn:
        assert_type(AsyncSession(conn), AsyncSession[AsyncConnection])
    async with AsyncSession(engine) as session:
        assert_type(session, AsyncSession[AsyncEngine])
        assert_type(session.bind, AsyncEngine | None)
        assert_type(session.sync_session, Session[Engine | Connection])


async def reading(session: AsyncSession[AsyncEngine]) -> None:
    assert_type(await session.get(User, 1), User | None)
    assert_type(await session.get_one(User, 1), User)
    assert_type(await session.scalars(select(User)), ScalarResult[User])
    for user in await session.scalars(select(User)):
        assert_type(user, User)
    assert_type((await session.scalars(select(User))).all(), Sequence[User])
    assert_type(await session.scalar(select(User.name)), str | None)
    assert_type(await session.execute(select(User, User.id)), Result[User, int])
    assert_type(await session.execute(insert(User)), CursorResult[*tuple[Any, ...]])
    assert_type(await session.execute(text("select 1")), Result[*tuple[Any, ...]])
    assert_type(await session.merge(User(name="x")), User)
    assert_type(await session.merge_all([User(name="x")]), list[User])


async def streaming(session: AsyncSession[AsyncEngine]) -> None:
    assert_type(await session.stream_scalars(select(User)), AsyncScalarResult[User])
    async for user in await session.stream_scalars(select(User)):
        assert_type(user, User)
    rows = await session.stream(select(User, User.name))
    assert_type(rows, AsyncResult[User, str])
    async for row in rows:
        assert_type(row, Row[User, str])


async def writing(session: AsyncSession[AsyncEngine], user: User) -> None:
    assert_type(session.add(user), None)
    assert_type(await session.flush(), None)
    assert_type(await session.delete(user), None)
    assert_type(await session.refresh(user, ["name"]), None)
    assert_type(await session.commit(), None)
    assert_type(await session.rollback(), None)
    session.delete(user)  # type: ignore[unused-coroutine]  # delete is awaited
    await session.get(User, 1, populate_existing="yes")  # type: ignore[arg-type]


async def transactions(session: AsyncSession[AsyncEngine]) -> None:
    async with session.begin() as tx:
        assert_type(tx, AsyncSessionTransaction)
    assert_type(await session.begin_nested(), AsyncSessionTransaction)
    assert_type(session.get_transaction(), AsyncSessionTransaction | None)


async def run_sync(session: AsyncSession[AsyncEngine], user: User) -> None:
    def count(sync: Session[Any], /, offset: int) -> int:
        return len(sync.new) + offset

    assert_type(await session.run_sync(count, 1), int)
    assert_type(await session.run_sync(lambda _: user.name), str)
    await session.run_sync(count, "1")  # type: ignore[arg-type]


async def factories(engine: AsyncEngine) -> AsyncIterator[AsyncSession[AsyncEngine]]:
    factory = async_sessionmaker(engine, expire_on_commit=False)
    assert_type(factory, async_sessionmaker[AsyncSession[AsyncEngine]])
    assert_type(factory(), AsyncSession[AsyncEngine])
    async with factory.begin() as session:
        assert_type(session, AsyncSession[AsyncEngine])
    async with factory() as session:
        yield session
    async_sessionmaker(engine, autoflus=False)  # type: ignore[call-overload]
