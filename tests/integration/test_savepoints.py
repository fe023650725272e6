"""SAVEPOINTs: ``begin_nested()`` rolls back or releases only what happened inside it (issue 14).

A SAVEPOINT's rollback restores the objects it changed and expires only those (the seed's
``dirty_only``); its release hands its records to the enclosing transaction, so that a
later rollback of that one restores them too. ``Session.commit()`` and
``Session.rollback()`` end the whole transaction.
"""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, String, select
from sqlalchemy.exc import IntegrityError, PendingRollbackError

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_rows, lifecycle, recreate_tables, sql_for
from typed_session import (
    Mapped,
    ObjectState,
    Registry,
    TransactionState,
    column,
    entity,
    instance_state,
)

reg = Registry()


@entity(reg, table="sp_users")
class User:
    name: Mapped[str] = column(String(50), primary_key=True)
    score: Mapped[int] = column(default=0)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def committed(engine: Engine) -> list[tuple[str, int]]:
    return [(n, s) for n, s in db_rows(engine, select(User.name, User.score).order_by(User.name))]


def test_rolling_back_a_savepoint_undoes_only_what_happened_inside(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    outer = User(name="outer")
    session.add(outer)
    nested = session.begin_nested()
    assert lifecycle(outer) is ObjectState.PERSISTENT  # flushed before the SAVEPOINT
    inner = User(name="inner")
    session.add(inner)
    session.flush()

    nested.rollback()

    assert lifecycle(inner) is ObjectState.TRANSIENT
    assert lifecycle(outer) is ObjectState.PERSISTENT
    assert session.get_transaction() is nested.parent
    assert nested.state is TransactionState.CLOSED
    session.commit()
    assert committed(engine) == [("outer", 0)]


def test_a_savepoint_rollback_expires_only_what_changed_inside(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    kept, changed, flushed = User(name="a"), User(name="b"), User(name="c")
    session.add_all([kept, changed, flushed])
    session.flush()
    nested = session.begin_nested()
    flushed.score = 1
    session.flush()
    changed.score = 2  # not flushed

    nested.rollback()

    assert instance_state(kept).expired is None
    assert instance_state(changed).expired
    assert instance_state(flushed).expired
    capture.clear()
    assert kept.score == 0
    assert capture.statements == []
    assert (changed.score, flushed.score) == (0, 0)


def test_a_released_savepoint_hands_its_records_to_the_enclosing_transaction(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    with session.begin_nested():
        inner = User(name="inner")
        session.add(inner)
    assert lifecycle(inner) is ObjectState.PERSISTENT
    root = session.get_transaction()
    assert root is not None
    assert instance_state(inner) in root.snapshot().inserted

    session.rollback()

    assert lifecycle(inner) is ObjectState.TRANSIENT
    assert committed(engine) == []


def test_a_with_block_that_raises_rolls_back_its_savepoint_only(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    session.add(User(name="outer"))

    def fail_inside() -> None:
        with session.begin_nested():
            session.add(User(name="inner"))
            session.flush()
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fail_inside()
    assert session.in_transaction()
    assert not session.in_nested_transaction()
    session.commit()
    assert committed(engine) == [("outer", 0)]


def test_a_failed_flush_inside_a_savepoint_rolls_back_to_it_only(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    session.add(User(name="outer"))
    nested = session.begin_nested()
    clash = User(name="outer")  # the key the enclosing transaction inserted
    session.expunge(session.get_one(User, "outer"))
    session.add(clash)

    with pytest.raises(IntegrityError):
        session.flush()
    assert nested.state is TransactionState.DEACTIVE
    with pytest.raises(PendingRollbackError):
        session.execute(select(User))
    nested.rollback()

    assert session.get_transaction() is nested.parent
    assert session.is_active
    session.add(User(name="after"))
    session.commit()
    assert committed(engine) == [("after", 0), ("outer", 0)]


def test_session_commit_releases_open_savepoints(engine: Engine, sessions: SessionFactory) -> None:
    session = sessions()
    session.begin_nested()
    session.add(User(name="one"))
    session.begin_nested()
    session.add(User(name="two"))

    session.commit()

    assert not session.in_transaction()
    assert committed(engine) == [("one", 0), ("two", 0)]


def test_session_rollback_ends_everything_and_restores_each_level(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    outer = User(name="outer")
    session.add(outer)
    session.begin_nested()
    inner = User(name="inner")
    session.add(inner)
    session.flush()
    session.begin_nested()
    innermost = User(name="innermost")
    session.add(innermost)

    session.rollback()

    assert not session.in_transaction()
    assert [lifecycle(o) for o in (outer, inner, innermost)] == [ObjectState.TRANSIENT] * 3
    assert committed(engine) == []


def test_transactions_know_their_place(sessions: SessionFactory) -> None:
    session = sessions()
    assert session.get_transaction() is None
    assert session.get_nested_transaction() is None
    root = session.begin()
    nested = session.begin(nested=True)
    deeper = session.begin_nested()

    assert session.get_transaction() is root
    assert session.get_nested_transaction() is deeper
    assert session.transaction is deeper
    assert session.in_nested_transaction()
    assert (root.parent, root.nested) == (None, False)
    assert (nested.parent, nested.nested) == (root, True)
    assert deeper.parent is nested
    deeper.commit()
    assert session.get_nested_transaction() is nested
    nested.rollback()
    assert not session.in_nested_transaction()
    assert session.transaction is root


def test_a_savepoint_sees_the_work_flushed_before_it(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    session.add(User(name="a"))
    with session.begin_nested():
        assert session.scalars(select(User.name)).all() == ["a"]
    assert any("SAVEPOINT" in s.sql.upper() for s in capture.statements)
    assert sql_for(capture, "INSERT", User)
