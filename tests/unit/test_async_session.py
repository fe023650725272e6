"""``AsyncSession``: the sync session proxied through greenlets, on aiosqlite.

The session's own behaviour is tested on the sync ``Session``; these tests pin what the
proxy adds: every public method has its counterpart, what may send SQL is awaited and
runs in a greenlet, transactions as async context managers, and streaming.
"""

from __future__ import annotations

import gc
import inspect
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Engine, QueuePool, create_engine, func, insert, select, text
from sqlalchemy.exc import ArgumentError, InvalidRequestError, NoResultFound
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from typed_session import (
    Mapped,
    Registry,
    Session,
    column,
    entity,
    inspect_entity,
    instance_state,
    relationship,
    selectinload,
)
from typed_session.asyncio import NOT_PROXIED, AsyncSession, AsyncSessionTransaction

reg = Registry()


@entity(reg, table="as_parents")
class Parent:
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str] = column()
    children: Mapped[list[Child]] = relationship(back_populates="parent", default_factory=list)


@entity(reg, table="as_children")
class Child:
    id: Mapped[int] = column(primary_key=True)
    label: Mapped[str] = column(default="")
    parent_id: Mapped[int | None] = column(foreign_key="as_parents.id", default=None)
    parent: Mapped[Parent | None] = relationship(back_populates="children", default=None)


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'async.db'}")
    async with eng.begin() as conn:
        await conn.run_sync(reg.metadata.create_all)
    try:
        yield eng
    finally:
        await eng.dispose()


def _checked_out(engine: AsyncEngine) -> int:
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


async def _seed(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session.add(Parent(id=1, name="p", children=[Child(id=1), Child(id=2)]))
        await session.commit()


# -- every method of Session has its counterpart -------------------------------------------

#: what may send SQL, and so is a coroutine on AsyncSession
AWAITED = frozenset(
    {
        "bulk_insert_mappings",
        "bulk_save_objects",
        "bulk_update_mappings",
        "close",
        "close_all",
        "commit",
        "delete",
        "delete_all",
        "execute",
        "flush",
        "get",
        "get_one",
        "invalidate",
        "merge",
        "merge_all",
        "prepare",
        "refresh",
        "rollback",
        "scalar",
        "scalars",
    }
)


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_every_public_name_of_session_has_an_async_counterpart_or_a_reason() -> None:
    missing = _public(Session) - _public(AsyncSession) - set(NOT_PROXIED)
    assert missing == set(), (
        f"Session's {sorted(missing)} have no AsyncSession counterpart: add one to "
        "typed_session/asyncio.py, or a reason to NOT_PROXIED"
    )


def test_the_reasons_are_for_names_session_has_and_asyncsession_lacks() -> None:
    assert set(NOT_PROXIED) <= _public(Session)
    assert not set(NOT_PROXIED) & _public(AsyncSession)
    assert all(len(reason) > 40 for reason in NOT_PROXIED.values())


def test_what_may_send_sql_is_awaited_and_nothing_else() -> None:
    for name in _public(Session) - set(NOT_PROXIED):
        attr = inspect.getattr_static(AsyncSession, name)
        fn = attr.__func__ if isinstance(attr, classmethod) else attr
        assert inspect.iscoroutinefunction(fn) == (name in AWAITED), name
    for name in ("stream", "stream_scalars", "run_sync"):
        assert inspect.iscoroutinefunction(getattr(AsyncSession, name)), name


def test_import_typed_session_loads_no_orm_module() -> None:
    # the async module imports sqlalchemy.ext.asyncio, whose package loads the ORM; the
    # package itself must not (typed_session.asyncio is imported only by its users)
    code = (
        "import sys, typed_session; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy.orm', "
        "'sqlalchemy.ext.asyncio', 'typed_session.asyncio'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- construction ------------------------------------------------------------------------


def test_a_sync_engine_is_refused_naming_session() -> None:
    sync = create_engine("sqlite://")
    with pytest.raises(ArgumentError, match=r"AsyncEngine.*use typed_session\.Session"):
        AsyncSession(sync)  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(ArgumentError, match="create_async_engine"):
        AsyncSession("sqlite://")  # type: ignore[arg-type]  # the point of the test
    sync.dispose()


@pytest.mark.asyncio
async def test_an_unknown_option_is_refused_as_by_session(engine: AsyncEngine) -> None:
    with pytest.raises(ArgumentError, match="autoflus"):
        AsyncSession(engine, autoflus=False)  # type: ignore[call-arg]  # the point


@pytest.mark.asyncio
async def test_the_sync_session_is_bound_to_the_sync_engine(engine: AsyncEngine) -> None:
    session = AsyncSession(engine, expire_on_commit=False)
    assert session.bind is engine
    assert session.sync_session.bind is engine.sync_engine
    assert session.sync_session.expire_on_commit is False
    assert isinstance(session.sync_session.bind, Engine)


@pytest.mark.asyncio
async def test_async_with_closes_the_session_and_returns_the_connection(
    engine: AsyncEngine,
) -> None:
    await _seed(engine)
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        assert session.in_transaction()
        assert _checked_out(engine) == 1
    assert parent not in session
    assert instance_state(parent).detached
    assert not session.in_transaction()
    assert _checked_out(engine) == 0


# -- the awaited methods -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_reading_methods(engine: AsyncEngine) -> None:
    await _seed(engine)
    async with AsyncSession(engine) as session:
        parent = await session.get(Parent, 1)
        assert parent is not None
        assert await session.get(Parent, 99) is None
        assert await session.get_one(Parent, 1) is parent
        with pytest.raises(NoResultFound, match="no Parent with primary key 99"):
            await session.get_one(Parent, 99)
        assert (await session.scalars(select(Parent))).all() == [parent]
        assert await session.scalar(select(Parent).where(Parent.id == 1)) is parent
        assert await session.scalar(select(func.count()).select_from(Child)) == 2
        rows = (await session.execute(select(Parent, Child.id).join(Parent.children))).all()
        assert [(r[0], r[1]) for r in rows] == [(parent, 1), (parent, 2)]
        plain = await session.execute(text("SELECT name FROM as_parents"))
        assert plain.scalars().all() == ["p"]


@pytest.mark.asyncio
async def test_writing_methods(engine: AsyncEngine) -> None:
    await _seed(engine)
    async with AsyncSession(engine) as session:
        child = Child(id=3, label="new")
        session.add(child)
        assert child in session.new
        await session.flush()
        assert instance_state(child).persistent
        session.add_all([Child(id=4), Child(id=5)])
        old = await session.get_one(Child, 1)
        await session.delete(old)
        await session.delete_all([await session.get_one(Child, 2)])
        await session.commit()
    async with AsyncSession(engine) as session:
        ids = (await session.scalars(select(Child.id).order_by(Child.id))).all()
        assert ids == [3, 4, 5]
        merged = await session.merge(Child(id=3, label="merged"))
        assert merged.label == "merged"
        assert session.is_modified(merged)
        both = await session.merge_all([Child(id=4, label="a"), Child(id=6, label="b")])
        assert [c.id for c in both] == [4, 6]
        await session.rollback()
        assert await session.scalar(select(Child.label).where(Child.id == 3)) == "new"


@pytest.mark.asyncio
async def test_refresh_and_expire(engine: AsyncEngine) -> None:
    await _seed(engine)
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        await session.execute(text("UPDATE as_parents SET name = 'changed'"))
        assert parent.name == "p"
        await session.refresh(parent, ["name"])
        assert parent.name == "changed"
        session.expire(parent)
        await session.refresh(parent, ["name", "children"])
        assert parent.name == "changed"
        assert [c.id for c in parent.children] == [1, 2]
        session.expire_all()
        await session.refresh(parent)
        assert parent.name == "changed"


@pytest.mark.asyncio
async def test_run_sync_hands_the_sync_session_and_may_load_lazily(engine: AsyncEngine) -> None:
    await _seed(engine)
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)

        def count_children(sync: Session, /, offset: int) -> int:
            assert sync is session.sync_session
            return len(parent.children) + offset  # a lazy load, in the greenlet

        assert await session.run_sync(count_children, 10) == 12


@pytest.mark.asyncio
async def test_expunge_and_the_views(engine: AsyncEngine) -> None:
    await _seed(engine)
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        assert parent in session
        assert list(session) == [parent]
        assert parent in session.identity_map.values()
        parent.name = "x"
        assert session.dirty == [parent]
        session.expunge(parent)
        assert parent not in session
        session.add(Child(id=9))
        session.expunge_all()
        assert session.new == []
        assert session.deleted == []


@pytest.mark.asyncio
async def test_no_autoflush_holds_back_the_flush(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session.add(Parent(id=1, name="p"))
        with session.no_autoflush as same:
            assert same is session
            assert await session.scalar(select(func.count()).select_from(Parent)) == 0
        assert await session.scalar(select(func.count()).select_from(Parent)) == 1


@pytest.mark.asyncio
async def test_events_fire_with_the_sync_session(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        seen: list[object] = []
        session.events.after_commit.listen(seen.append)
        session.add(Parent(id=1, name="p"))
        await session.commit()
        assert seen == [session.sync_session]


@pytest.mark.asyncio
async def test_close_all_closes_async_sessions(engine: AsyncEngine) -> None:
    await _seed(engine)
    session = AsyncSession(engine)
    parent = await session.get_one(Parent, 1)
    await AsyncSession.close_all()
    assert parent not in session
    assert _checked_out(engine) == 0


@pytest.mark.asyncio
async def test_invalidate_drops_the_connection(engine: AsyncEngine) -> None:
    await _seed(engine)
    session = AsyncSession(engine)
    await session.get_one(Parent, 1)
    await session.invalidate()
    assert _checked_out(engine) == 0
    assert not session.in_transaction()


@pytest.mark.asyncio
async def test_binds(engine: AsyncEngine, tmp_path: Path) -> None:
    other = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    session = AsyncSession(engine)
    session.bind_mapper(Child, other)
    session.bind_table(inspect_entity(Parent).table, other)
    assert session.get_bind(Child) is other.sync_engine
    assert session.get_bind(Parent) is other.sync_engine
    assert session.binds.resolve(Child, None) is other.sync_engine
    await session.close()
    await other.dispose()


@pytest.mark.asyncio
async def test_an_async_connection_bind_joins_its_transaction(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(conn)
        assert session.bind is conn
        session.add(Parent(id=1, name="p"))
        await session.commit()  # joins the outer transaction: does not commit it
        await session.close()
        await outer.rollback()
    async with AsyncSession(engine) as fresh:
        assert await fresh.get(Parent, 1) is None


@pytest.mark.asyncio
async def test_an_async_connection_not_started_is_refused(engine: AsyncEngine) -> None:
    conn = engine.connect()  # not entered: no connection yet
    with pytest.raises(InvalidRequestError, match=r"has not been started.*async with"):
        AsyncSession(conn)


# -- transactions ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_begin_commits_the_block_and_rolls_back_on_error(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        async with session.begin() as tx:
            assert isinstance(tx, AsyncSessionTransaction)
            assert tx.is_active
            assert session.get_transaction() is not None
            session.add(Parent(id=1, name="kept"))
        assert not session.in_transaction()

        async def fail_in_block() -> None:
            async with session.begin():
                session.add(Parent(id=2, name="lost"))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await fail_in_block()
        names = (await session.scalars(select(Parent.name))).all()
        assert names == ["kept"]


@pytest.mark.asyncio
async def test_begin_nested_rolls_back_only_the_savepoint(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session.add(Parent(id=1, name="outer"))
        async with session.begin_nested() as savepoint:
            assert savepoint.nested
            assert session.in_nested_transaction()
            nested = session.get_nested_transaction()
            assert nested is not None
            assert nested.sync_transaction is savepoint.sync_transaction
            session.add(Parent(id=2, name="inner"))
            await session.flush()
            await savepoint.rollback()
        await session.commit()
        assert (await session.scalars(select(Parent.id))).all() == [1]


@pytest.mark.asyncio
async def test_an_awaited_begin_is_ended_by_its_methods(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        tx = await session.begin()
        assert tx.sync_transaction is session.sync_session.transaction
        session.add(Parent(id=1, name="p"))
        await tx.commit()
        assert not tx.is_active
        tx = await session.begin()
        session.add(Parent(id=2, name="q"))
        await tx.rollback()
        assert (await session.scalars(select(Parent.id))).all() == [1]
        await session.commit()
        tx = await session.begin()
        await tx.close()
        assert not session.in_transaction()
        savepoint = await session.begin_nested()
        await savepoint.rollback()
        assert session.transaction is not None


@pytest.mark.asyncio
async def test_a_transaction_not_begun_says_how_to_begin_it(engine: AsyncEngine) -> None:
    session = AsyncSession(engine)
    tx = session.begin()
    assert not tx.is_active
    with pytest.raises(InvalidRequestError, match=r"async with session\.begin"):
        tx.sync_transaction  # noqa: B018  # the property raises
    await session.close()


# -- streaming -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_execute_refuses_to_stream_pointing_to_stream(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        with pytest.raises(InvalidRequestError, match=r"session\.stream"):
            await session.execute(select(Parent), execution_options={"yield_per": 10})
        with pytest.raises(InvalidRequestError, match=r"session\.stream"):
            await session.scalars(select(Parent).execution_options(stream_results=True))


@pytest.mark.asyncio
async def test_stream_yields_objects_through_the_identity_map(engine: AsyncEngine) -> None:
    await _seed(engine)
    async with AsyncSession(engine) as session:
        known = await session.get_one(Child, 1)
        result = await session.stream_scalars(
            select(Child).order_by(Child.id), execution_options={"yield_per": 1}
        )
        got = [c async for c in result]
        assert got[0] is known
        assert [c.id for c in got] == [1, 2]
        rows = await session.stream(select(Child, Child.label).order_by(Child.id))
        pairs = [(c, label) async for c, label in rows]
        assert pairs == [(got[0], ""), (got[1], "")]
        plain = await session.stream(text("SELECT id FROM as_children ORDER BY id"))
        assert [r[0] async for r in plain] == [1, 2]


@pytest.mark.asyncio
async def test_stream_runs_selectinload_per_batch(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session.add_all(
            [
                Parent(id=i, name=str(i), children=[Child(id=10 * i), Child(id=10 * i + 1)])
                for i in range(1, 6)
            ]
        )
        await session.commit()
        session.expunge_all()
        result = await session.stream_scalars(
            select(Parent).order_by(Parent.id).options(selectinload(Parent.children)),
            execution_options={"yield_per": 2},
        )
        sizes = [len(p.children) async for p in result]  # loaded: no lazy load refused
        assert sizes == [2] * 5


@pytest.mark.asyncio
async def test_stream_keeps_memory_flat(engine: AsyncEngine) -> None:
    total = 20_000
    async with engine.begin() as conn:
        await conn.execute(insert(Child), [{"id": i, "label": "x" * 50} for i in range(total)])

    async def peak(rows: int) -> int:
        async with AsyncSession(engine) as session:
            gc.collect()
            tracemalloc.start()
            try:
                result = await session.stream_scalars(
                    select(Child).where(Child.id < rows), execution_options={"yield_per": 200}
                )
                seen = 0
                async for child in result:
                    seen += child.id >= 0
                assert seen == rows
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    async def buffered(rows: int) -> int:
        async with AsyncSession(engine) as session:
            gc.collect()
            tracemalloc.start()
            try:
                result = await session.scalars(select(Child).where(Child.id < rows))
                assert len(result.all()) == rows
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    small, large = await peak(2_000), await peak(total)
    everything = await buffered(total)
    # ten times the rows, about the same peak: the identity map holds what was read
    # weakly and its dead entries are swept as it grows; loading them all costs far more
    assert large < 2.5 * small, (small, large)
    assert large < everything / 4, (large, everything)


def test_sync_session_yield_per_loads_in_batches(memory_engine: Engine) -> None:
    reg.metadata.create_all(memory_engine)
    with Session(memory_engine) as session:
        session.add_all([Parent(id=i, name=str(i), children=[Child(id=i)]) for i in range(1, 6)])
        session.commit()
        first = session.get_one(Parent, 1)
        result = session.execute(
            select(Parent).order_by(Parent.id).options(selectinload(Parent.children)),
            execution_options={"yield_per": 2},
        )
        got = list(result.scalars())
        assert got[0] is first
        assert [p.id for p in got] == [1, 2, 3, 4, 5]
        assert all("children" in p.__dict__ for p in got)
        rows = session.execute(
            select(Parent, Parent.name).order_by(Parent.id).execution_options(yield_per=3)
        ).all()
        assert [(p.id, name) for p, name in rows] == [(i, str(i)) for i in range(1, 6)]
