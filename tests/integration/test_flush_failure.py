"""A failed flush keeps nothing of itself, and the session says why until rollback().

Issue 14, item 3: a unique violation in the middle of a batch, an exception from a
listener (during the statements, or after them), and a ``KeyboardInterrupt`` mid-flush,
on every backend. After each: the database holds nothing of the flush, every operation
raises ``PendingRollbackError`` naming the original error, and after ``rollback()`` the
objects are where the seed's rules put them and new work commits alone.
"""

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, String, event, select
from sqlalchemy.exc import IntegrityError, PendingRollbackError

from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_insert, db_rows, lifecycle, recreate_tables
from typed_session import Mapped, ObjectState, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="ff_users")
class User:
    name: Mapped[str] = column(String(50), primary_key=True)
    score: Mapped[int] = column(default=0)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def names(engine: Engine) -> list[str]:
    return [n for (n,) in db_rows(engine, select(User.name).order_by(User.name))]


class Boom(Exception):
    pass


def _unique_violation(engine: Engine, _session: Session[Engine]) -> type[BaseException]:
    db_insert(engine, User, [{"name": "b"}])  # the middle one of the batch clashes
    return IntegrityError


def _raising_in_the_statements(engine: Engine, _session: Session[Engine]) -> type[BaseException]:
    calls: list[None] = []

    def second_statement(*_args: object) -> None:
        calls.append(None)
        if len(calls) == 2:
            event.remove(engine, "before_cursor_execute", second_statement)
            raise Boom("a listener failed during the flush")

    event.listen(engine, "before_cursor_execute", second_statement)
    return Boom


def _raising_after_the_statements(_engine: Engine, session: Session[Engine]) -> type[BaseException]:
    def fail(*_args: object) -> None:
        session.events.after_flush.remove(fail)  # once
        raise Boom("an after_flush listener failed")

    session.events.after_flush.listen(fail)
    return Boom


def _interrupted(engine: Engine, _session: Session[Engine]) -> type[BaseException]:
    def interrupt(*_args: object) -> None:
        raise KeyboardInterrupt

    event.listen(engine, "before_cursor_execute", interrupt, once=True)
    return KeyboardInterrupt


FAILURES: dict[str, Callable[[Engine, Session[Engine]], type[BaseException]]] = {
    "unique violation mid-batch": _unique_violation,
    "listener raising mid-flush": _raising_in_the_statements,
    "after_flush raising": _raising_after_the_statements,
    "KeyboardInterrupt mid-flush": _interrupted,
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_flush_keeps_nothing_and_needs_rollback(
    engine: Engine, sessions: SessionFactory, failure: str
) -> None:
    session = sessions()
    kept = User(name="kept")
    session.add(kept)
    session.commit()
    inject = FAILURES[failure]
    unique = failure == "unique violation mid-batch"
    # the clashing row goes in before the session holds locks (SQLite locks the file)
    error = inject(engine, session) if unique else None
    before = User(name="before")
    session.add(before)
    session.flush()  # earlier work of the same transaction
    error = error or inject(engine, session)
    objs = [User(name="a"), User(name="b"), User(name="c")]
    session.add_all(objs)
    kept.score = 5

    with pytest.raises(error):
        session.flush()

    for operation in (session.commit, lambda: session.execute(select(User))):
        with pytest.raises(PendingRollbackError, match="Original exception was"):
            operation()
    session.rollback()
    assert [lifecycle(o) for o in [before, *objs]] == [ObjectState.TRANSIENT] * 4
    assert kept.score == 0  # reloaded: the change went with the transaction
    clashing = ["b"] if unique else []
    assert names(engine) == sorted([*clashing, "kept"])
    session.add(User(name="next"))
    session.commit()
    assert names(engine) == sorted([*clashing, "kept", "next"])
