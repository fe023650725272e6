"""``AsyncSession`` on every backend, through its asyncio driver.

aiosqlite, asyncpg (PostgreSQL) and asyncmy (MariaDB): the same scenarios as a user of
the sync session meets them, run under asyncio. The URL is the backend's sync URL with
the asyncio driver in its place; an unreachable server is skipped, and fails with
``CI=true`` (as ``backend_url`` does).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, InvalidRequestError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import enforce_sqlite_foreign_keys
from typed_session import (
    LazyLoadRefusedError,
    Mapped,
    Registry,
    column,
    entity,
    relationship,
    selectinload,
)
from typed_session.asyncio import AsyncSession, async_sessionmaker

#: the asyncio driver of each backend's dialect
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg", "mysql": "asyncmy"}

reg = Registry()


@entity(reg, table="aio_authors")
class Author:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str] = column(unique=True)
    books: Mapped[list[Book]] = relationship(
        back_populates="author", cascade="all, delete-orphan", default_factory=list
    )


@entity(reg, table="aio_books")
class Book:
    id: Mapped[int] = column(primary_key=True, init=False)
    title: Mapped[str] = column()
    author_id: Mapped[int | None] = column(foreign_key="aio_authors.id", default=None)
    author: Mapped[Author | None] = relationship(back_populates="books", default=None)


def async_url(url: str) -> str:
    """The URL of the same database through the backend's asyncio driver."""
    parsed = make_url(url)
    return parsed.set(
        drivername=f"{parsed.get_backend_name()}+{ASYNC_DRIVERS[parsed.get_backend_name()]}"
    ).render_as_string(hide_password=False)


@pytest_asyncio.fixture
async def engine(backend_url: str) -> AsyncIterator[AsyncEngine]:
    url = async_url(backend_url)
    eng = create_async_engine(url)
    if eng.dialect.name == "sqlite":
        event.listen(eng.sync_engine, "connect", enforce_sqlite_foreign_keys)
    try:
        async with eng.begin() as conn:
            await conn.run_sync(reg.metadata.drop_all)
            await conn.run_sync(reg.metadata.create_all)
    except Exception as err:  # the driver missing, or the server unreachable through it
        await eng.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"{url} is unreachable and CI=true requires it: {err!r}")
        pytest.skip(f"{url} unreachable: {err!r}")
    try:
        yield eng
    finally:
        async with eng.begin() as conn:
            await conn.run_sync(reg.metadata.drop_all)
        await eng.dispose()


def test_async_url_swaps_only_the_driver() -> None:
    assert async_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    assert (
        async_url("postgresql+psycopg://postgres@127.0.0.1:5432/test")
        == "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    assert (
        async_url("mysql+pymysql://root:pw@127.0.0.1:3306/test")
        == "mysql+asyncmy://root:pw@127.0.0.1:3306/test"
    )


@pytest.mark.asyncio
async def test_round_trip_with_generated_keys(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        author = Author(name="Le Guin", books=[Book(title="A"), Book(title="B")])
        session.add(author)
        await session.commit()
        await session.refresh(author, ["id", "books"])
        assert author.id > 0
        assert sorted(b.title for b in author.books) == ["A", "B"]
        book_ids = [b.id for b in author.books]
    async with AsyncSession(engine) as session:
        loaded = await session.get_one(Author, author.id)
        assert loaded is not author
        book = await session.get_one(Book, book_ids[0])
        assert book.author is loaded  # in the identity map: no SQL, not refused
        loaded.name = "Ursula K. Le Guin"
        await session.delete(book)
        await session.commit()
    async with AsyncSession(engine) as session:
        names = (await session.scalars(select(Author.name))).all()
        assert names == ["Ursula K. Le Guin"]
        assert await session.scalar(select(func.count()).select_from(Book)) == 1


@pytest.mark.asyncio
async def test_lazy_loads_are_refused_and_selectinload_loads(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session.add(Author(name="a", books=[Book(title="x")]))
        await session.commit()
    async with AsyncSession(engine) as session:
        author = (await session.scalars(select(Author))).one()
        with pytest.raises(LazyLoadRefusedError, match=r"selectinload\(Author\.books\)"):
            _ = author.books
        await session.commit()
        with pytest.raises(LazyLoadRefusedError, match=r"Author\.name .* is expired"):
            _ = author.name
        query = select(Author).options(selectinload(Author.books))
        (again,) = (await session.scalars(query)).all()
        assert again is author
        assert author.name == "a"
        assert [b.title for b in author.books] == ["x"]


@pytest.mark.asyncio
async def test_stream_reads_a_server_side_cursor_in_batches(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session.add_all([Author(name=f"n{i}", books=[Book(title=f"t{i}")]) for i in range(25)])
        await session.commit()
    async with AsyncSession(engine) as session:
        query = select(Author).order_by(Author.name).options(selectinload(Author.books))
        if engine.dialect.name == "mysql":
            # another query while the cursor is open would lose the rest of the stream
            with pytest.raises(InvalidRequestError, match="MySQL and MariaDB cannot"):
                await session.stream_scalars(query)
            query = select(Author).order_by(Author.name)
        result = await session.stream_scalars(query, execution_options={"yield_per": 7})
        # held: the identity map is weak, and the books loaded with them must still be
        # there for the query below (authors and books form cycles, which a collection
        # between the two queries would otherwise free)
        authors = [a async for a in result]
        names = [a.name for a in authors]
        assert sorted(names) == sorted(f"n{i}" for i in range(25))
        if engine.dialect.name != "mysql":
            titles = [a.books[0].title for a in (await session.scalars(select(Author))).all()]
            assert sorted(titles) == sorted(f"t{i}" for i in range(25))
        rows = await session.stream(select(Author.name).order_by(Author.name))
        partitions = [len(p) async for p in rows.partitions(10)]
        assert partitions == [10, 10, 5]


@pytest.mark.asyncio
async def test_a_savepoint_rolls_back_alone(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session.add(Author(name="outer"))
        async with session.begin_nested() as savepoint:
            session.add(Author(name="inner"))
            await session.flush()
            await savepoint.rollback()
        await session.commit()
        assert (await session.scalars(select(Author.name))).all() == ["outer"]


@pytest.mark.asyncio
async def test_a_failed_flush_needs_rollback_then_the_session_works(
    engine: AsyncEngine,
) -> None:
    async with AsyncSession(engine) as session:
        session.add(Author(name="same"))
        await session.commit()
        session.add(Author(name="same"))
        with pytest.raises(IntegrityError):
            await session.flush()
        with pytest.raises(PendingRollbackError):
            await session.execute(select(Author))
        await session.rollback()
        assert session.new == []
        assert (await session.scalars(select(Author.name))).all() == ["same"]


@pytest.mark.asyncio
async def test_refresh_with_for_update(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        author = Author(name="locked")
        session.add(author)
        await session.commit()
        await session.execute(text("UPDATE aio_authors SET name = 'changed'"))
        await session.refresh(author, with_for_update=True)
        assert author.name == "changed"


@pytest.mark.asyncio
async def test_sessions_run_concurrently_each_on_its_connection(engine: AsyncEngine) -> None:
    factory = async_sessionmaker(engine, expire_on_commit=False)

    async def work(i: int) -> int:
        async with factory.begin() as session:
            author = Author(name=f"c{i}", books=[Book(title=f"b{i}")])
            session.add(author)
            await session.flush()
            await asyncio.sleep(0)  # let the others run inside their transactions
            return author.id

    ids = await asyncio.gather(*(work(i) for i in range(5)))
    assert len(set(ids)) == 5
    async with factory() as session:
        assert await session.scalar(select(func.count()).select_from(Book)) == 5


@pytest.mark.asyncio
async def test_bulk_methods_through_the_async_session(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        await session.bulk_insert_mappings(Author, [{"name": "a"}, {"name": "b"}])
        await session.bulk_save_objects([Author(name="c")])
        ids = (await session.scalars(select(Author.id).order_by(Author.name))).all()
        await session.bulk_update_mappings(Author, [{"id": ids[0], "name": "a2"}])
        await session.commit()
        names = (await session.scalars(select(Author.name).order_by(Author.name))).all()
        assert names == ["a2", "b", "c"]
