"""Lazy I/O of an ``AsyncSession``'s objects: refused clearly outside a greenlet.

Every path on which reading or writing an attribute can load is tried outside a greenlet
(refused with ``LazyLoadRefusedError``, no SQL sent, never Core's ``MissingGreenlet``),
and each way out the message names is shown to work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event, select
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from typed_session import (
    LazyLoadRefusedError,
    Mapped,
    Registry,
    Session,
    column,
    entity,
    instance_state,
    relationship,
    selectinload,
)
from typed_session.asyncio import AsyncAttrs, AsyncSession

reg = Registry()


@entity(reg, table="al_parents")
class Parent(AsyncAttrs):
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str] = column()
    children: Mapped[list[Child]] = relationship(
        back_populates="parent", cascade="all, delete-orphan", default_factory=list
    )


@entity(reg, table="al_children")
class Child(AsyncAttrs):
    id: Mapped[int] = column(primary_key=True)
    parent_id: Mapped[int | None] = column(foreign_key="al_parents.id", default=None)
    parent: Mapped[Parent | None] = relationship(back_populates="children", default=None)


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'lazy.db'}")
    async with eng.begin() as conn:
        await conn.run_sync(reg.metadata.create_all)
    async with AsyncSession(eng) as session:
        session.add(Parent(id=1, name="p", children=[Child(id=1), Child(id=2)]))
        await session.commit()
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine.sync_engine, "before_cursor_execute", record)


def _refused(err: pytest.ExceptionInfo[LazyLoadRefusedError], obj: object, attr: str) -> str:
    message = str(err.value)
    assert not isinstance(err.value, MissingGreenlet)
    assert err.value.instance is obj
    assert err.value.attribute == attr
    assert f"{type(obj).__name__}.{attr} of <{type(obj).__name__} at 0x" in message
    assert f"await session.refresh(obj, [{attr!r}])" in message
    assert f"await obj.awaitable_attrs.{attr}" in message
    assert "session.run_sync(fn)" in message
    return message


# -- each path that can load, refused outside a greenlet ---------------------------------


@pytest.mark.asyncio
async def test_an_attribute_expired_by_commit(engine: AsyncEngine, statements: list[str]) -> None:
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        await session.commit()
        statements.clear()
        with pytest.raises(LazyLoadRefusedError) as err:
            _ = parent.name
        assert "expire_on_commit=False" in _refused(err, parent, "name")
        assert "is expired" in str(err.value)
        assert statements == []
        await session.refresh(parent, ["name"])  # the session is still usable
        assert parent.name == "p"


@pytest.mark.asyncio
async def test_an_attribute_expired_by_expire(engine: AsyncEngine, statements: list[str]) -> None:
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        session.expire(parent, ["name"])
        statements.clear()
        with pytest.raises(LazyLoadRefusedError) as err:
            _ = parent.name
        _refused(err, parent, "name")
        assert statements == []
        assert parent.id == 1  # what is loaded reads as usual


@pytest.mark.asyncio
async def test_an_unloaded_collection(engine: AsyncEngine, statements: list[str]) -> None:
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        statements.clear()
        with pytest.raises(LazyLoadRefusedError) as err:
            _ = parent.children
        message = _refused(err, parent, "children")
        assert "select(Parent).options(selectinload(Parent.children))" in message
        assert "is not loaded" in message
        assert statements == []


@pytest.mark.asyncio
async def test_an_unloaded_many_to_one_not_in_the_identity_map(
    engine: AsyncEngine, statements: list[str]
) -> None:
    async with AsyncSession(engine) as session:
        child = await session.get_one(Child, 1)
        statements.clear()
        with pytest.raises(LazyLoadRefusedError) as err:
            _ = child.parent
        assert "selectinload(Child.parent)" in _refused(err, child, "parent")
        assert statements == []


@pytest.mark.asyncio
async def test_a_many_to_one_in_the_identity_map_needs_no_sql_and_is_served(
    engine: AsyncEngine, statements: list[str]
) -> None:
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        child = await session.get_one(Child, 1)
        statements.clear()
        assert child.parent is parent
        assert statements == []


@pytest.mark.asyncio
async def test_a_relationship_of_an_expired_object(
    engine: AsyncEngine, statements: list[str]
) -> None:
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        child = await session.get_one(Child, 1)
        session.expire(child)
        statements.clear()
        with pytest.raises(LazyLoadRefusedError) as err:
            _ = child.parent  # its foreign key must be loaded first
        _refused(err, child, "parent")
        assert statements == []
        assert parent.id == 1


@pytest.mark.asyncio
async def test_replacing_an_unloaded_collection(engine: AsyncEngine, statements: list[str]) -> None:
    # the old members are loaded to be released: the assignment would send SQL
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        statements.clear()
        with pytest.raises(LazyLoadRefusedError) as err:
            parent.children = [Child(id=3)]
        _refused(err, parent, "children")
        assert statements == []


@pytest.mark.asyncio
async def test_changing_an_expired_primary_key(engine: AsyncEngine, statements: list[str]) -> None:
    # the old key is loaded first, so that the UPDATE can find the row
    async with AsyncSession(engine) as session:
        child = await session.get_one(Child, 2)
        session.expire(child)
        statements.clear()
        with pytest.raises(LazyLoadRefusedError) as err:
            child.id = 20
        _refused(err, child, "id")
        assert statements == []


# -- the ways out --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_selectinload_loads_with_the_query(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        parents = await session.scalars(select(Parent).options(selectinload(Parent.children)))
        (parent,) = parents.all()
        assert [c.id for c in parent.children] == [1, 2]
        assert all(c.parent is parent for c in parent.children)


@pytest.mark.asyncio
async def test_refresh_loads_attributes_and_relationships(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        await session.commit()
        await session.refresh(parent, ["name", "children"])
        assert parent.name == "p"
        assert len(parent.children) == 2


@pytest.mark.asyncio
async def test_expire_on_commit_false_keeps_values(engine: AsyncEngine) -> None:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        parent = await session.get_one(Parent, 1)
        parent.name = "q"
        await session.commit()
        assert parent.name == "q"


@pytest.mark.asyncio
async def test_awaitable_attrs_load_in_a_greenlet(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        await session.commit()
        assert await parent.awaitable_attrs.name == "p"
        children = await parent.awaitable_attrs.children
        assert [c.id for c in children] == [1, 2]
        assert await children[0].awaitable_attrs.parent is parent
        assert parent.children is children  # stored: a plain read from now on


@pytest.mark.asyncio
async def test_run_sync_loads_in_a_greenlet(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        await session.commit()

        def read(_: Session) -> tuple[str, int]:
            return parent.name, len(parent.children)

        assert await session.run_sync(read) == ("p", 2)


# -- the session's own loads run in its greenlet: never refused ------------------------------


@pytest.mark.asyncio
async def test_a_flush_loads_expired_keys_it_needs(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        child = await session.get_one(Child, 2)
        await session.commit()  # expired, key included
        await session.delete(child)  # the DELETE needs its key: loaded in the greenlet
        await session.commit()
        assert await session.get(Child, 2) is None


@pytest.mark.asyncio
async def test_the_delete_cascade_loads_unloaded_children(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        await session.delete(parent)  # cascade="all, delete-orphan": children load
        await session.commit()
        assert (await session.scalars(select(Child))).all() == []


@pytest.mark.asyncio
async def test_merge_and_get_of_an_expired_object_load(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        parent = await session.get_one(Parent, 1)
        await session.commit()
        assert await session.get(Parent, 1) is parent  # fully expired: selected again
        assert parent.name == "p"
        merged = await session.merge(Child(id=1, parent_id=1))
        assert merged.parent is parent


def test_a_sync_session_still_loads_lazily(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    eng = create_engine(f"sqlite:///{tmp_path / 'sync.db'}")
    reg.metadata.create_all(eng)
    with Session(eng) as session:
        session.add(Parent(id=1, name="p", children=[Child(id=1)]))
        session.commit()
        parent = session.get_one(Parent, 1)
        session.expire(parent)
        assert parent.name == "p"
        assert len(parent.children) == 1
        assert instance_state(parent).persistent
    eng.dispose()
