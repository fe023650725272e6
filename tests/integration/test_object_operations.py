"""refresh / get options, is_modified and identity_key as in the seed (issue 15, items 2-3)."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, String, select, update
from sqlalchemy.exc import InvalidRequestError

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_insert, lifecycle, recreate_tables, sql_for
from typed_session import (
    IdentityKey,
    Mapped,
    ObjectState,
    Registry,
    Session,
    column,
    entity,
    identity_key,
)

reg = Registry()


@entity(reg, table="oo_users")
class User:
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str] = column(String(50))
    score: Mapped[int] = column(default=0)


@entity(reg, table="oo_lines")
class Line:
    order_id: Mapped[int] = column(primary_key=True, autoincrement=False)
    line_no: Mapped[int] = column(primary_key=True, autoincrement=False)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


@pytest.fixture
def ann(engine: Engine, sessions: SessionFactory) -> tuple[Session[Engine], User]:
    db_insert(engine, User, [{"id": 1, "name": "ann", "score": 1}])
    session = sessions()
    return session, session.get_one(User, 1)


def for_update_sent(engine: Engine, capture: SQLCapture) -> bool:
    return any("FOR UPDATE" in s for s in sql_for(capture, "SELECT", User))


def test_refresh_of_some_attributes(ann: tuple[Session[Engine], User]) -> None:
    session, user = ann
    session.execute(update(User).values(name="anne", score=9))
    user.name = "mine"

    session.refresh(user, ["name"])

    assert user.name == "anne"  # reloaded, the unflushed change discarded
    assert user.__dict__["score"] == 1  # not named: kept as it was loaded
    with pytest.raises(AttributeError, match="no mapped attribute"):
        session.refresh(user, ["nickname"])


def test_refresh_with_for_update(
    engine: Engine, ann: tuple[Session[Engine], User], capture: SQLCapture
) -> None:
    session, user = ann
    capture.clear()
    session.refresh(user, with_for_update=True)
    assert for_update_sent(engine, capture) is (engine.dialect.name != "sqlite")
    assert user.name == "ann"


def test_get_populate_existing_replaces_the_values_of_the_object_in_the_session(
    ann: tuple[Session[Engine], User], capture: SQLCapture
) -> None:
    session, user = ann
    session.execute(update(User).values(name="anne"))
    user.score = 5  # unflushed: dropped by populate_existing
    capture.clear()

    with session.no_autoflush:
        again = session.get(User, 1, populate_existing=True)

    assert again is user
    assert (user.name, user.score) == ("anne", 1)
    assert len(sql_for(capture, "SELECT", User)) == 1
    assert not session.is_modified(user)


def test_get_with_for_update_selects_even_what_the_session_holds(
    engine: Engine, ann: tuple[Session[Engine], User], capture: SQLCapture
) -> None:
    session, user = ann
    capture.clear()
    assert session.get(User, 1, with_for_update={"nowait": False}) is user
    assert len(sql_for(capture, "SELECT", User)) == 1
    assert for_update_sent(engine, capture) is (engine.dialect.name != "sqlite")


def test_get_populate_existing_of_a_vanished_row(ann: tuple[Session[Engine], User]) -> None:
    session, user = ann
    session.execute(update(User).values(id=2))
    assert session.get(User, 1, populate_existing=True) is None
    assert lifecycle(user) is ObjectState.DELETED


def test_is_modified_counts_net_changes(ann: tuple[Session[Engine], User]) -> None:
    session, user = ann
    assert not session.is_modified(user)
    user.name = "ann"  # the value it has: no net change
    assert not session.is_modified(user)
    assert user in session.dirty  # dirty is optimistic, as in SQLAlchemy
    user.name = "bob"
    assert session.is_modified(user)
    pending = User(id=7, name="new")
    session.add(pending)
    assert session.is_modified(pending)


def test_identity_key_in_the_seeds_three_forms(ann: tuple[Session[Engine], User]) -> None:
    session, user = ann
    assert identity_key(User, 1) == IdentityKey(User, (1,))
    assert identity_key(User, 1, identity_token="shard1") == IdentityKey(User, (1,), "shard1")
    assert identity_key(Line, {"order_id": 3, "line_no": 2}) == IdentityKey(Line, (3, 2))
    assert identity_key(instance=user) == IdentityKey(User, (1,))
    assert identity_key(instance=Line(order_id=5, line_no=1)) == IdentityKey(Line, (5, 1))
    row = session.execute(select(User.name, User.id)).one()
    assert identity_key(User, row=row) == IdentityKey(User, (1,))
    with pytest.raises(InvalidRequestError, match="has no complete primary key"):
        identity_key(instance=User.__new__(User))
    with pytest.raises(InvalidRequestError, match=r"^identity_key\(\) takes"):
        identity_key(User)  # type: ignore[call-overload]  # no ident, no row
