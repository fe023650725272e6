"""The protocols for library authors at run time: who satisfies them, and a library using one.

Whether signatures fit is checked statically (``tests/typing/check_protocols.py``); here:
the sessions and their transactions pass ``isinstance`` against the ``runtime_checkable``
protocols, objects missing a member do not, the protocol names every member the issue
promises, and a library function written against ``SessionLike`` works on a session.
"""

from __future__ import annotations

import typing

import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.ext.asyncio import create_async_engine

import typed_session
from typed_session import (
    AsyncSessionLike,
    AsyncTransactionLike,
    Mapped,
    Registry,
    Session,
    SessionLike,
    TransactionLike,
    column,
    entity,
)
from typed_session import protocols as protocols_module
from typed_session.asyncio import AsyncSession

reg = Registry()


@entity(reg, table="proto_items")
class Item:
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str]


#: what the issue says a library needs from a session, plus the bind the protocol is
#: generic in
PROMISED = {
    "add",
    "add_all",
    "delete",
    "get",
    "get_one",
    "scalars",
    "execute",
    "flush",
    "begin_nested",
    "merge",
    "refresh",
    "expire",
    "expunge",
    "identity_map",
    "info",
    "events",
    "bind",
}


def _members(protocol: type[object]) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_")}


@pytest.fixture
def engine() -> typing.Iterator[Engine]:
    engine = create_engine("sqlite://")
    reg.create_all(engine)
    yield engine
    engine.dispose()


def rename_all(session: SessionLike[Engine], new_name: str) -> int:
    """A library function: renames in a SAVEPOINT, never commits the caller's transaction."""
    with session.begin_nested():
        items = list(session.scalars(select(Item)))
        for item in items:
            item.name = new_name
        session.flush()
    session.info["renamed"] = len(items)
    return len(items)


def test_the_protocols_name_every_promised_member() -> None:
    assert _members(SessionLike) == PROMISED
    assert _members(AsyncSessionLike) == PROMISED
    assert _members(TransactionLike) == {"is_active", "nested", "commit", "rollback", "close"}
    assert _members(AsyncTransactionLike) == _members(TransactionLike)


def test_the_stable_tier_is_exported_from_the_package() -> None:
    for name in protocols_module.__all__:
        assert getattr(typed_session, name) is getattr(protocols_module, name)
        assert name in typed_session.__all__


def test_a_session_and_its_savepoint_satisfy_the_protocols(engine: Engine) -> None:
    with Session(engine) as session:
        assert isinstance(session, SessionLike)
        savepoint = session.begin_nested()
        assert isinstance(savepoint, TransactionLike)
        assert not isinstance(session, TransactionLike)


def test_objects_missing_a_member_do_not(engine: Engine) -> None:
    assert not isinstance(engine, SessionLike)
    assert not isinstance(object(), SessionLike)
    assert not isinstance(object(), TransactionLike)


@pytest.mark.asyncio
async def test_an_async_session_and_its_savepoint_satisfy_the_async_protocols() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        async with AsyncSession(engine) as session:
            assert isinstance(session, AsyncSessionLike)
            assert isinstance(session.begin_nested(), AsyncTransactionLike)
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_an_async_session_shares_its_info_with_the_sync_session() -> None:
    session = AsyncSession(create_async_engine("sqlite+aiosqlite://"), info={"tenant": 1})
    assert session.info == {"tenant": 1}
    session.info["user"] = "ada"
    assert session.sync_session.info == {"tenant": 1, "user": "ada"}
    assert session.info is session.sync_session.info
    await session.close()


def test_a_library_written_against_the_protocol_works_on_a_session(engine: Engine) -> None:
    with Session(engine) as session:
        session.add_all([Item(id=1, name="a"), Item(id=2, name="b")])
        session.commit()
        assert rename_all(session, "z") == 2
        assert session.in_transaction()  # the caller's transaction is still open
        session.rollback()  # ... and the caller decides: the renames are gone
        assert [i.name for i in session.scalars(select(Item).order_by(Item.id))] == ["a", "b"]
        assert session.info["renamed"] == 2
