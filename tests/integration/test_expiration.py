"""Expiry: commit expires by default; expire(), refresh(); detached objects cannot load."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import InvalidRequestError

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import (
    db_insert,
    db_rows,
    lifecycle,
    recreate_tables,
    sql_for,
    table_of,
)
from typed_session import (
    DetachedInstanceError,
    Mapped,
    ObjectDeletedError,
    ObjectState,
    ObjectStateError,
    Registry,
    Session,
    column,
    entity,
    instance_state,
)

reg = Registry()


@entity(reg, table="ex_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    email: Mapped[str | None] = column(default=None)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def rename_behind_the_session(engine: Engine, user_id: int, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(table_of(User)).values(name=name).where(User.id == user_id))


def committed_user(session: Session[Engine]) -> User:
    user = User(name="ann", email="ann@example.com")
    session.add(user)
    session.commit()
    return user


def test_commit_expires_objects_by_default(session: Session[Engine], capture: SQLCapture) -> None:
    user = committed_user(session)
    capture.clear()

    assert user.name == "ann"

    assert len(sql_for(capture, "SELECT", User)) == 1


def test_commit_reload_sees_changes_made_by_other_transactions(
    engine: Engine, session: Session[Engine]
) -> None:
    user = User(name="ann")
    session.add(user)
    session.flush()
    user_id = user.id  # read before the commit expires it
    session.commit()
    rename_behind_the_session(engine, user_id, "anne")

    assert user.name == "anne"


def test_expire_on_commit_false_keeps_values_readable_after_commit(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions(expire_on_commit=False)
    user = committed_user(session)
    capture.clear()

    assert (user.name, user.email) == ("ann", "ann@example.com")
    assert user.id > 0
    assert capture.statements == []


def test_expire_on_commit_false_keeps_values_readable_after_close(
    sessions: SessionFactory,
) -> None:
    session = sessions(expire_on_commit=False)
    user = committed_user(session)

    session.close()

    assert lifecycle(user) is ObjectState.DETACHED
    assert (user.name, user.email) == ("ann", "ann@example.com")


def test_expired_attribute_of_detached_object_raises_detached_instance_error(
    session: Session[Engine],
) -> None:
    user = committed_user(session)
    session.close()

    with pytest.raises(DetachedInstanceError) as raised:
        _ = user.name

    message = str(raised.value)
    assert "User.name" in message
    assert "expire_on_commit=False" in message
    assert "refresh" in message
    # merge() is not implemented yet; the message offers session.add(obj) instead
    assert "session.merge(obj)" in message or "session.add(obj)" in message
    assert raised.value.attribute == "name"
    assert raised.value.instance is user
    assert isinstance(raised.value, InvalidRequestError)


def test_detached_expired_object_loads_again_once_added_to_a_session(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    first = sessions()
    user = committed_user(first)
    first.close()
    second = sessions()

    second.add(user)

    assert lifecycle(user) is ObjectState.PERSISTENT
    capture.clear()
    assert user.name == "ann"
    assert len(sql_for(capture, "SELECT", User)) == 1


def test_refresh_reloads_every_attribute_from_the_database(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions(expire_on_commit=False)
    user = committed_user(session)
    rename_behind_the_session(engine, user.id, "anne")
    assert user.name == "ann"
    capture.clear()

    session.refresh(user)

    assert len(sql_for(capture, "SELECT", User)) == 1
    capture.clear()
    assert (user.name, user.email) == ("anne", "ann@example.com")
    assert capture.statements == []


def test_refresh_discards_an_unflushed_change(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions(expire_on_commit=False)
    user = committed_user(session)
    user.name = "changed"

    session.refresh(user)
    session.commit()

    assert user.name == "ann"
    assert session.dirty == []
    assert sql_for(capture, "UPDATE", User) == []
    assert db_rows(engine, select(User.name)) == [("ann",)]


def test_refresh_of_object_not_in_the_session_raises(session: Session[Engine]) -> None:
    with pytest.raises(ObjectStateError, match="not persistent"):
        session.refresh(User(name="ann"))


def test_expire_of_one_attribute_reloads_only_when_it_is_read(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions(expire_on_commit=False)
    user = committed_user(session)
    rename_behind_the_session(engine, user.id, "anne")
    capture.clear()

    session.expire(user, ["name"])

    assert instance_state(user).unloaded() == {"name"}
    assert user.email == "ann@example.com"
    assert capture.statements == []
    assert user.name == "anne"
    assert len(sql_for(capture, "SELECT", User)) == 1


def test_expire_of_unknown_attribute_raises_attribute_error(
    sessions: SessionFactory,
) -> None:
    session = sessions(expire_on_commit=False)
    user = committed_user(session)

    with pytest.raises(AttributeError, match="nickname"):
        session.expire(user, ["nickname"])

    assert instance_state(user).unloaded() == frozenset()


def test_expire_discards_an_unflushed_change_of_that_attribute(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions(expire_on_commit=False)
    user = committed_user(session)
    user.name = "changed"

    session.expire(user, ["name"])
    session.commit()

    assert user.name == "ann"
    assert sql_for(capture, "UPDATE", User) == []
    assert db_rows(engine, select(User.name)) == [("ann",)]


def test_expired_object_loaded_by_query_is_refreshed_from_the_row(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    db_insert(engine, User, [{"name": "ann"}])
    user = session.scalars(select(User)).one()
    user_id = user.id
    session.commit()
    rename_behind_the_session(engine, user_id, "anne")
    capture.clear()

    again = session.scalars(select(User)).one()

    assert again is user
    assert user.name == "anne"
    assert len(sql_for(capture, "SELECT", User)) == 1


def test_expired_object_whose_row_is_gone_raises_object_deleted_error(
    engine: Engine, session: Session[Engine]
) -> None:
    user = committed_user(session)
    with engine.begin() as conn:
        conn.execute(delete(table_of(User)))

    with pytest.raises(ObjectDeletedError, match="expunge") as raised:
        _ = user.name

    assert raised.value.instance is user
