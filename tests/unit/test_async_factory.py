"""``async_sessionmaker``: the options of ``sessionmaker``, validated the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import create_engine, select
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from typed_session import Mapped, Registry, SessionConfigError, column, entity
from typed_session.asyncio import AsyncSession, async_sessionmaker

reg = Registry()


@entity(reg, table="af_items")
class Item:
    id: Mapped[int] = column(primary_key=True)


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'factory.db'}")
    async with eng.begin() as conn:
        await conn.run_sync(reg.metadata.create_all)
    try:
        yield eng
    finally:
        await eng.dispose()


class MySession(AsyncSession[AsyncEngine]):
    made = 0

    def __init__(self, bind: AsyncEngine | None, **options: Any) -> None:
        super().__init__(bind, **options)
        MySession.made += 1


@pytest.mark.asyncio
async def test_a_call_makes_a_session_with_the_factorys_bind_and_options(
    engine: AsyncEngine,
) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False, info={"a": 1})
    session = factory()
    assert type(session) is AsyncSession
    assert session.bind is engine
    assert session.sync_session.expire_on_commit is False
    assert session.sync_session.info == {"a": 1}
    assert factory.class_ is AsyncSession
    assert factory.bind is engine
    assert factory.config.expire_on_commit is False
    await session.close()


@pytest.mark.asyncio
async def test_a_call_overrides_options_and_merges_info(engine: AsyncEngine) -> None:
    factory = async_sessionmaker(engine, info={"a": 1, "b": 2})
    session = factory(autoflush=False, info={"b": 3})
    assert session.sync_session.autoflush is False
    assert session.sync_session.info == {"a": 1, "b": 3}
    assert factory().sync_session.autoflush is True
    assert factory().sync_session.info == {"a": 1, "b": 2}


@pytest.mark.asyncio
async def test_a_call_may_give_another_bind(engine: AsyncEngine, tmp_path: Path) -> None:
    other = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    factory = async_sessionmaker(engine)
    assert factory(bind=other).bind is other
    assert factory().bind is engine
    await other.dispose()


def test_a_misspelt_option_is_named_with_a_suggestion() -> None:
    with pytest.raises(SessionConfigError, match=r"async_sessionmaker.*autoflus.*autoflush"):
        async_sessionmaker(None, autoflus=False)  # type: ignore[call-overload]  # the point


@pytest.mark.asyncio
async def test_a_call_validates_its_overrides(engine: AsyncEngine) -> None:
    factory = async_sessionmaker(engine)
    with pytest.raises(SessionConfigError, match=r"async_sessionmaker\.__call__.*expire_on"):
        factory(expire_on_comit=False)  # type: ignore[call-overload]  # the point
    with pytest.raises(SessionConfigError, match="autoflush"):
        factory(autoflush="yes")  # type: ignore[call-overload]  # the point


def test_a_sync_engine_is_refused_pointing_to_sessionmaker() -> None:
    sync = create_engine("sqlite://")
    with pytest.raises(ArgumentError, match=r"AsyncEngine.*typed_session\.sessionmaker"):
        async_sessionmaker(sync)  # type: ignore[call-overload]  # the point
    sync.dispose()


def test_class_must_be_an_async_session_class() -> None:
    with pytest.raises(ArgumentError, match="class_ must be AsyncSession"):
        async_sessionmaker(None, class_=dict)  # type: ignore[call-overload]  # the point


@pytest.mark.asyncio
async def test_class_is_made_for_every_session(engine: AsyncEngine) -> None:
    factory = async_sessionmaker(engine, class_=MySession)
    before = MySession.made
    session = factory()
    assert type(session) is MySession
    assert MySession.made == before + 1


@pytest.mark.asyncio
async def test_configure_changes_the_sessions_made_afterwards(engine: AsyncEngine) -> None:
    factory = async_sessionmaker(engine)
    first = factory()
    factory.configure(autoflush=False)
    assert factory().sync_session.autoflush is False
    assert first.sync_session.autoflush is True
    factory.configure(bind=None)
    assert factory().bind is None
    with pytest.raises(SessionConfigError):
        factory.configure(autoflush=3)  # type: ignore[arg-type]  # the point
    assert factory.config.autoflush is False


@pytest.mark.asyncio
async def test_the_factorys_events_fire_for_its_sessions(engine: AsyncEngine) -> None:
    factory = async_sessionmaker(engine)
    seen: list[object] = []
    factory.events.after_commit.listen(seen.append)
    async with factory() as session:
        session.add(Item(id=1))
        await session.commit()
    assert seen == [session.sync_session]


@pytest.mark.asyncio
async def test_begin_commits_and_closes(engine: AsyncEngine) -> None:
    factory = async_sessionmaker(engine)
    async with factory.begin() as session:
        session.add(Item(id=1))
        assert session.in_transaction()
    assert not session.in_transaction()
    assert len(list(session)) == 0
    async with factory() as check:
        assert (await check.scalars(select(Item.id))).all() == [1]


@pytest.mark.asyncio
async def test_begin_rolls_back_on_error(engine: AsyncEngine) -> None:
    factory = async_sessionmaker(engine)

    async def fail() -> None:
        async with factory.begin() as session:
            session.add(Item(id=2))
            raise KeyError("boom")

    with pytest.raises(KeyError):
        await fail()
    async with factory() as check:
        assert (await check.scalars(select(Item.id))).all() == []


def test_repr_names_class_bind_and_options() -> None:
    text = repr(async_sessionmaker(None, autoflush=False))
    assert text.startswith("async_sessionmaker(class_='AsyncSession', bind=None, ")
    assert "autoflush=False" in text
