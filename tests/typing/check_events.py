"""Event hooks as a user writes listeners for them: checked by mypy and pyright."""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_type

from sqlalchemy import Connection, Engine, create_engine

from typed_session import Hook, Session, SessionTransaction, session_events
from typed_session._unitofwork import FlushPlan

engine = create_engine("sqlite://")
session = Session(engine)


def on_commit(s: Session) -> None:
    print(s)


def on_begin(s: Session, tx: SessionTransaction, conn: Connection) -> None:
    print(s, tx, conn)


def on_pending(s: Session, obj: object) -> None:
    print(s, obj)


def on_flush(s: Session, plan: FlushPlan) -> None:
    print(s, plan.steps)


def on_count(s: Session, count: int) -> None:
    print(s, count)


assert_type(session.events.after_commit, Hook[[Session[Engine | Connection]]])
assert_type(
    session.events.after_commit.listen(on_commit), Callable[[Session[Engine | Connection]], object]
)
session.events.after_begin.listen(on_begin)
session.events.transient_to_pending.listen(on_pending)
session.events.after_flush.listen(on_flush)
session_events.after_commit.listen(on_commit)
session.events.after_commit.remove(on_commit)


@session.events.before_commit.listen
def decorated(s: Session) -> None:
    print(s)


# a listener with the wrong parameters is refused
session.events.after_commit.listen(on_begin)  # type: ignore[arg-type]
session.events.after_begin.listen(on_commit)  # type: ignore[arg-type]
session.events.after_flush.listen(on_count)  # type: ignore[arg-type]
# a misspelled hook is refused
session.events.after_comit.listen(on_commit)  # type: ignore[attr-defined]
