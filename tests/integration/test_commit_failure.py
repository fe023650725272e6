"""A COMMIT that fails leaks nothing into the next transaction.

When the COMMIT itself fails, Core marks its transaction inactive while the driver's
transaction is still open. Faults are injected at each point of Core's commit: a
``commit`` event listener that raises (before the driver is asked), the driver's commit
raising, and a ``KeyboardInterrupt`` there. After ``rollback()`` the database must hold
exactly what it held before, and new work must commit alone.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from tests.integration.helpers import db_rows, recreate_tables
from typed_session import Mapped, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="cf_users")
class User:
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str]


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


class InjectedFault(Exception):
    pass


def _raise(error: BaseException) -> Callable[..., None]:
    def fail(*_args: Any) -> None:
        raise error

    return fail


def _fault_in_listener(engine: Engine, error: BaseException) -> Callable[[], None]:
    listener = _raise(error)
    event.listen(engine, "commit", listener)
    return lambda: event.remove(engine, "commit", listener)


def _fault_in_driver(engine: Engine, error: BaseException) -> Callable[[], None]:
    dialect = engine.dialect
    dialect.do_commit = _raise(error)  # type: ignore[method-assign]  # the injected fault
    return lambda: delattr(dialect, "do_commit")  # the class's method shows through again


FAULTS = {
    "listener": (_fault_in_listener, InjectedFault("commit listener failed")),
    "driver": (_fault_in_driver, InjectedFault("driver COMMIT failed")),
    "interrupt": (_fault_in_driver, KeyboardInterrupt()),
}


def users(engine: Engine) -> list[tuple[int, str]]:
    return [(i, n) for i, n in db_rows(engine, select(User.id, User.name).order_by(User.id))]


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failed_commit_leaves_nothing_behind(
    engine: Engine, sessions: Callable[..., Session[Engine]], fault: str
) -> None:
    setup = sessions()
    setup.add(User(id=1, name="kept"))
    setup.commit()
    setup.close()

    session = sessions()
    session.get_one(User, 1).name = "changed"
    session.add(User(id=2, name="failed"))
    session.flush()
    inject, error = FAULTS[fault]
    remove = inject(engine, error)
    try:
        with pytest.raises(type(error)):
            session.commit()
    finally:
        remove()
    session.rollback()

    assert users(engine) == [(1, "kept")]
    session.add(User(id=3, name="next"))
    session.commit()
    assert users(engine) == [(1, "kept"), (3, "next")]
    other = sessions()
    assert other.get_one(User, 1).name == "kept"
    assert other.get(User, 2) is None


@pytest.mark.parametrize("fault", ["listener", "driver"])
def test_a_failed_commit_on_a_connection_bind_leaves_the_connection_clean(
    engine: Engine, fault: str
) -> None:
    with engine.connect() as connection:
        session = Session(connection)
        session.add(User(id=1, name="failed"))
        session.flush()
        inject, error = FAULTS[fault]
        remove = inject(engine, error)
        try:
            with pytest.raises(type(error)):
                session.commit()
        finally:
            remove()
        session.rollback()
        assert not connection.in_transaction()
        session.add(User(id=2, name="next"))
        session.commit()
        session.close()
    assert users(engine) == [(2, "next")]


def test_a_connection_that_cannot_roll_back_after_a_failed_commit_is_not_reused(
    engine: Engine, sessions: Callable[..., Session[Engine]]
) -> None:
    session = sessions()
    session.add(User(id=1, name="failed"))
    session.flush()
    connection = session.connection()
    driver_connection = connection.connection.dbapi_connection

    def broken_rollback() -> None:
        raise InjectedFault("the connection is gone")

    connection.connection.rollback = broken_rollback  # type: ignore[method-assign]  # the fault
    remove = _fault_in_listener(engine, InjectedFault("commit listener failed"))
    try:
        with pytest.raises(InjectedFault, match="commit listener failed"):
            session.commit()
    finally:
        remove()

    assert connection.invalidated or connection.closed
    with engine.connect() as fresh:  # the pool did not get the unsure connection back
        assert fresh.connection.dbapi_connection is not driver_connection
    assert users(engine) == []
