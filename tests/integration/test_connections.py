"""Connections and how a session joins a caller's transaction (issue 14, item 5).

``connection(entity=, clause=, bind=, execution_options=)``, the session's own
``execution_options=``, ``invalidate()``, ``close_all_sessions()``, and the 2.x
``join_transaction_mode`` choices for a ``Connection`` already in a transaction —
including the test-fixture recipe of ``docs/transactions.md``.
"""

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, String, select
from sqlalchemy.exc import SAWarning

from tests.integration.helpers import db_rows, lifecycle, recreate_tables
from typed_session import (
    Mapped,
    ObjectState,
    Registry,
    Session,
    close_all_sessions,
    column,
    entity,
)

reg = Registry()


@entity(reg, table="cn_users")
class User:
    name: Mapped[str] = column(String(50), primary_key=True)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def names(engine: Engine) -> list[str]:
    return [n for (n,) in db_rows(engine, select(User.name).order_by(User.name))]


def test_connection_takes_options_on_first_use_and_warns_after(engine: Engine) -> None:
    with Session(engine) as session:
        conn = session.connection(User, execution_options={"logging_token": "first"})
        assert conn.get_execution_options()["logging_token"] == "first"
        with pytest.warns(SAWarning, match=r"^Connection is already established"):
            again = session.connection(execution_options={"logging_token": "late"})
        assert again is conn
        assert conn.get_execution_options()["logging_token"] == "first"
        assert session.connection(bind=engine) is conn


def test_session_execution_options_apply_to_every_connection(engine: Engine) -> None:
    with Session(engine, execution_options={"logging_token": "app"}) as session:
        assert session.connection().get_execution_options()["logging_token"] == "app"
        session.commit()
        assert session.connection().get_execution_options()["logging_token"] == "app"


def test_invalidate_discards_the_connections_and_detaches_objects(engine: Engine) -> None:
    session = Session(engine)
    user = User(name="a")
    session.add(user)
    session.flush()
    driver_connection = session.connection().connection.dbapi_connection

    session.invalidate()

    with engine.connect() as fresh:  # the pool did not get that connection back
        assert fresh.connection.dbapi_connection is not driver_connection
    assert lifecycle(user) is ObjectState.DETACHED  # as close(): expunged, not restored
    assert not session.in_transaction()
    assert names(engine) == []
    session.add(User(name="b"))
    session.commit()
    assert names(engine) == ["b"]


def test_close_all_sessions_closes_every_session(engine: Engine) -> None:
    first, second = Session(engine), Session(engine)
    a, b = User(name="a"), User(name="b")
    first.add(a)
    second.add(b)
    first.flush()

    close_all_sessions()

    assert lifecycle(a) is ObjectState.DETACHED  # flushed, then expunged
    assert lifecycle(b) is ObjectState.TRANSIENT  # still pending: expunged
    assert names(engine) == []
    assert not first.in_transaction()
    Session.close_all()  # the seed's spelling, on the class


# -- join_transaction_mode ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["create_savepoint", "conditional_savepoint_in_savepoint"])
def test_create_savepoint_leaves_the_callers_transaction_alone(engine: Engine, mode: str) -> None:
    with engine.connect() as conn:
        outer = conn.begin()
        if mode == "conditional_savepoint_in_savepoint":
            conn.begin_nested()
            session = Session(conn)  # the default, conditional_savepoint
        else:
            session = Session(conn, join_transaction_mode="create_savepoint")
        session.add(User(name="kept by the session"))
        session.commit()  # releases the session's SAVEPOINT only
        session.add(User(name="rolled back"))
        session.rollback()  # rolls back to the session's SAVEPOINT only
        assert conn.in_transaction()
        assert conn.execute(select(User.name)).scalars().all() == ["kept by the session"]
        session.close()
        outer.rollback()
    assert names(engine) == []


def test_rollback_only_is_the_default_outside_a_savepoint(engine: Engine) -> None:
    with engine.connect() as conn:
        outer = conn.begin()
        session = Session(conn)
        session.add(User(name="a"))
        session.commit()  # the caller's transaction is not committed
        active_after_commit = outer.is_active
        session.add(User(name="b"))
        session.flush()
        session.rollback()  # ... but it is rolled back
        assert (active_after_commit, outer.is_active) == (True, False)
        session.close()
    assert names(engine) == []


def test_control_fully_commits_the_callers_transaction(engine: Engine) -> None:
    with engine.connect() as conn:
        outer = conn.begin()
        session = Session(conn, join_transaction_mode="control_fully")
        session.add(User(name="a"))
        session.commit()
        assert outer.is_active is False
        session.add(User(name="b"))  # a new transaction, begun by the session
        session.commit()
        session.close()
    assert names(engine) == ["a", "b"]


# -- the fixture recipe of docs/transactions.md -------------------------------------------


@pytest.fixture
def fixture_session(engine: Engine) -> Iterator[Session[Connection]]:
    """Each test in one outer transaction, rolled back at the end, whatever it committed."""
    with engine.connect() as connection:
        outer = connection.begin()
        with Session(connection, join_transaction_mode="create_savepoint") as session:
            yield session
        outer.rollback()


@pytest.mark.parametrize("turn", [1, 2])
def test_the_fixture_recipe_isolates_tests(
    engine: Engine, fixture_session: Session[Connection], turn: int
) -> None:
    assert fixture_session.scalars(select(User)).all() == []  # the other turn left nothing
    fixture_session.add(User(name=f"committed in turn {turn}"))
    fixture_session.commit()
    assert len(fixture_session.scalars(select(User)).all()) == 1
