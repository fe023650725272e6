"""Typed event hooks: listening, the seed's firing order, lifecycle hooks, levels (issue 14).

Each sequence records which hooks fired, in order, and compares with the order the seed
dispatches them in (SQLAlchemy 1.3's orm/session.py: ``_prepare_impl``, ``commit``,
``rollback``, ``close``, ``_flush``, ``_before_attach`` / ``_after_attach`` and the
lifecycle transitions).
"""

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Connection, Engine, String, event
from sqlalchemy.exc import IntegrityError, InvalidRequestError, SAWarning

from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_insert, recreate_tables
from typed_session import (
    Mapped,
    Registry,
    Session,
    SessionEvents,
    SessionTransaction,
    column,
    entity,
    make_transient,
    session_events,
    sessionmaker,
)
from typed_session._unitofwork import FlushPlan

reg = Registry()


@entity(reg, table="ev_users")
class User:
    name: Mapped[str] = column(String(50), primary_key=True)
    score: Mapped[int] = column(default=0)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


TRANSACTION_HOOKS = (
    "after_transaction_create",
    "after_transaction_end",
    "after_begin",
    "before_commit",
    "after_commit",
    "after_rollback",
    "after_soft_rollback",
)
OBJECT_HOOKS = (
    "before_attach",
    "after_attach",
    "transient_to_pending",
    "pending_to_transient",
    "pending_to_persistent",
    "persistent_to_transient",
    "persistent_to_detached",
    "detached_to_persistent",
    "persistent_to_deleted",
    "deleted_to_persistent",
    "deleted_to_detached",
)


class Recorder:
    """Listens on every hook of one events object and records what fired, in order."""

    def __init__(self, events: SessionEvents) -> None:
        self.fired: list[str] = []
        self.events = events
        for name in TRANSACTION_HOOKS:
            getattr(events, name).listen(self._transaction_listener(name))
        for name in OBJECT_HOOKS:
            getattr(events, name).listen(self._object_listener(name))
        events.before_flush.listen(self._flush_listener)
        events.after_flush.listen(self._plan_listener("after_flush"))
        events.after_flush_postexec.listen(self._plan_listener("after_flush_postexec"))

    def _transaction_listener(self, name: str) -> Callable[..., None]:
        def listener(_session: Session, *args: SessionTransaction | Connection) -> None:
            kind = ""
            if args and isinstance(args[0], SessionTransaction):
                kind = "(nested)" if args[0].nested else "(root)"
            self.fired.append(name + kind)

        return listener

    def _object_listener(self, name: str) -> Callable[[Session, object], None]:
        def listener(_session: Session, obj: object) -> None:
            assert isinstance(obj, User)
            self.fired.append(f"{name}:{obj.__dict__.get('name')}")

        return listener

    def _flush_listener(self, _session: Session) -> None:
        self.fired.append("before_flush")

    def _plan_listener(self, name: str) -> Callable[[Session, FlushPlan], None]:
        def listener(_session: Session, plan: FlushPlan) -> None:
            assert isinstance(plan, FlushPlan)
            self.fired.append(name)

        return listener


def test_add_and_commit_fire_in_the_seeds_order(sessions: SessionFactory) -> None:
    session = sessions()
    recorder = Recorder(session.events)

    session.add(User(name="a"))
    session.commit()

    assert recorder.fired == [
        "after_transaction_create(root)",
        "before_attach:a",
        "after_attach:a",
        "transient_to_pending:a",
        "before_commit",
        "before_flush",
        "after_begin(root)",
        "after_flush",
        "pending_to_persistent:a",
        "after_flush_postexec",
        "after_commit",
        "after_transaction_end(root)",
    ]


def test_flush_and_rollback_fire_in_the_seeds_order(sessions: SessionFactory) -> None:
    session = sessions()
    a = User(name="a")  # held: the identity map holds objects weakly
    session.add(a)
    session.flush()
    recorder = Recorder(session.events)

    session.rollback()

    assert recorder.fired == [
        "after_rollback",
        "persistent_to_transient:a",
        "after_transaction_end(root)",
        "after_soft_rollback(root)",
    ]


def test_a_savepoint_fires_its_own_transaction_events(sessions: SessionFactory) -> None:
    session = sessions()
    session.add(User(name="a"))
    session.flush()
    recorder = Recorder(session.events)

    nested = session.begin_nested()
    b = User(name="b")
    session.add(b)
    session.flush()
    nested.rollback()
    with session.begin_nested():
        pass

    assert recorder.fired == [
        "after_transaction_create(nested)",
        "before_attach:b",
        "after_attach:b",
        "transient_to_pending:b",
        "before_flush",
        "after_begin(nested)",
        "after_flush",
        "pending_to_persistent:b",
        "after_flush_postexec",
        "after_rollback",
        "persistent_to_transient:b",
        "after_transaction_end(nested)",
        "after_soft_rollback(nested)",
        "after_transaction_create(nested)",
        "before_commit",
        "after_commit",
        "after_transaction_end(nested)",
    ]


def test_delete_expunge_and_reattach_fire_their_transitions(
    engine: Engine, sessions: SessionFactory
) -> None:
    db_insert(engine, User, [{"name": "a"}, {"name": "b"}])
    session = sessions()
    a, b = session.get_one(User, "a"), session.get_one(User, "b")
    recorder = Recorder(session.events)

    session.delete(a)
    session.flush()
    session.expunge(b)
    session.add(b)
    session.rollback()
    recorder.fired.clear()
    session.delete(a)
    session.commit()

    assert recorder.fired == [
        "after_transaction_create(root)",
        "before_commit",
        "before_flush",
        "after_begin(root)",
        "after_flush",
        "persistent_to_deleted:a",
        "after_flush_postexec",
        "after_commit",
        "deleted_to_detached:a",
        "after_transaction_end(root)",
    ]


def test_expunge_and_add_back_fire_detach_and_attach(
    engine: Engine, sessions: SessionFactory
) -> None:
    db_insert(engine, User, [{"name": "a"}])
    session = sessions()
    a = session.get_one(User, "a")
    pending = User(name="p")
    session.add(pending)
    recorder = Recorder(session.events)

    session.expunge(a)
    session.add(a)
    session.expunge(pending)
    make_transient(a)

    assert recorder.fired == [
        "persistent_to_detached:a",
        "before_attach:a",
        "after_attach:a",
        "detached_to_persistent:a",
        "pending_to_transient:p",
        "persistent_to_transient:a",
    ]


def test_a_rolled_back_delete_fires_deleted_to_persistent(
    engine: Engine, sessions: SessionFactory
) -> None:
    db_insert(engine, User, [{"name": "a"}])
    session = sessions()
    a = session.get_one(User, "a")
    session.delete(a)
    session.flush()
    recorder = Recorder(session.events)

    session.rollback()

    assert "deleted_to_persistent:a" in recorder.fired


def test_listeners_on_every_session_fire_first_and_can_be_removed(
    sessions: SessionFactory,
) -> None:
    fired: list[str] = []

    @session_events.after_commit.listen
    def everywhere(_session: Session) -> None:
        fired.append("global")

    try:
        session = sessions()
        session.events.after_commit.listen(lambda _s: fired.append("session"))
        other = sessions()
        session.commit()
        other.commit()
        assert fired == ["global", "session", "global"]
    finally:
        session_events.after_commit.remove(everywhere)
    session.commit()
    assert fired == ["global", "session", "global", "session"]


def test_removing_a_listener_that_is_not_there_says_so(sessions: SessionFactory) -> None:
    session = sessions()
    with pytest.raises(InvalidRequestError, match=r"^No listener .* after_commit"):
        session.events.after_commit.remove(lambda _s: None)


def test_a_failed_flush_fires_after_rollback(engine: Engine, sessions: SessionFactory) -> None:
    db_insert(engine, User, [{"name": "a"}])
    session = sessions()
    session.add(User(name="a"))
    recorder = Recorder(session.events)
    with pytest.raises(IntegrityError):
        session.flush()
    assert recorder.fired[-2:] == ["after_rollback", "pending_to_transient:a"]


@pytest.mark.parametrize("operation", ["add", "delete"])
def test_add_or_delete_inside_the_flush_execution_warns(
    engine: Engine, sessions: SessionFactory, operation: str
) -> None:
    db_insert(engine, User, [{"name": "x"}])
    session = sessions()
    other = session.get_one(User, "x")
    session.add(User(name="a"))

    def add_late() -> None:
        session.add(User(name="late"))

    def delete_other() -> None:
        session.delete(other)

    meddling = add_late if operation == "add" else delete_other

    def meddle(*_args: object) -> None:
        with pytest.warns(SAWarning, match=rf"^Usage of the '{operation}' operation"):
            meddling()

    event.listen(engine, "before_cursor_execute", meddle, once=True)
    session.flush()


def test_a_factorys_listeners_fire_for_its_sessions_only(engine: Engine) -> None:
    fired: list[str] = []
    factory = sessionmaker(engine)
    other_factory = sessionmaker(engine)
    factory.events.after_commit.listen(lambda _s: fired.append("factory"))
    session_events.after_commit.listen(record_global := lambda _s: fired.append("global"))
    try:
        with factory() as session:
            session.events.after_commit.listen(lambda _s: fired.append("session"))
            session.commit()
        with other_factory() as other:
            other.commit()
    finally:
        session_events.after_commit.remove(record_global)
    assert fired == ["global", "factory", "session", "global"]
