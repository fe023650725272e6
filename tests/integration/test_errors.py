"""Errors: each says what is wrong, and leaves the session and the database as they were."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import ArgumentError, IntegrityError, PendingRollbackError, SAWarning

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_insert, db_rows, lifecycle, recreate_tables
from typed_session import (
    FlushError,
    Mapped,
    ObjectState,
    ObjectStateError,
    Registry,
    Session,
    SessionConfigError,
    UnmappedInstanceError,
    UnsetAttributeError,
    column,
    entity,
    object_session,
)

reg = Registry()


@entity(reg, table="err_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]


@entity(reg, table="err_codes")
class Code:
    code: Mapped[str] = column(primary_key=True)
    value: Mapped[int]


@entity(reg, table="err_drafts")
class Draft:
    id: Mapped[int] = column(primary_key=True, init=False)
    title: Mapped[str] = column(init=False)  # NOT NULL, no default, not set by __init__
    note: Mapped[str | None] = column(default=None)


class NotAnEntity:
    def __init__(self, name: str) -> None:
        self.name = name


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def user_names(engine: Engine) -> list[str]:
    return sorted(name for (name,) in db_rows(engine, select(User.name)))


@dataclass
class BusySession:
    """A session with one change of each kind waiting: an update, a delete, an insert."""

    session: Session[Engine]
    changed: User  # ann, renamed anne
    doomed: User  # bob, marked for deletion
    added: User  # dan, pending

    def assert_untouched(self, engine: Engine, names_before: list[str]) -> None:
        """The pending work is as it was, the database too, and the work still commits."""
        assert self.session.new == [self.added]
        assert self.session.dirty == [self.changed]
        assert self.session.deleted == [self.doomed]
        assert lifecycle(self.added) is ObjectState.PENDING
        assert lifecycle(self.changed) is ObjectState.PERSISTENT
        assert lifecycle(self.doomed) is ObjectState.PERSISTENT
        assert user_names(engine) == names_before
        self.session.commit()
        assert user_names(engine) == sorted({*names_before} - {"ann", "bob"} | {"anne", "dan"})


@pytest.fixture
def busy(engine: Engine, sessions: SessionFactory) -> BusySession:
    db_insert(engine, User, [{"name": "ann"}, {"name": "bob"}, {"name": "cid"}])
    session = sessions()
    ann = session.scalars(select(User).where(User.name == "ann")).one()
    bob = session.scalars(select(User).where(User.name == "bob")).one()
    ann.name = "anne"
    session.delete(bob)
    dan = User(name="dan")
    session.add(dan)
    return BusySession(session, ann, bob, dan)


def load_cid(session: Session[Engine]) -> User:
    return session.scalars(select(User).where(User.name == "cid")).one()


def names_session(message: str, session: Session[Engine]) -> bool:
    return re.search(rf"\bsession {session.hash_key}\b", message) is not None


# -- refused calls: nothing changes ---------------------------------------------------


def test_adding_instance_of_unmapped_class_raises(engine: Engine, busy: BusySession) -> None:
    before = user_names(engine)
    stranger = NotAnEntity("eve")

    with pytest.raises(UnmappedInstanceError, match="NotAnEntity") as raised:
        busy.session.add(stranger)

    assert "@entity" in str(raised.value)
    assert raised.value.instance is stranger
    busy.assert_untouched(engine, before)


def test_adding_persistent_object_of_another_session_raises_naming_both(
    engine: Engine, sessions: SessionFactory, busy: BusySession
) -> None:
    other = sessions()
    cid = load_cid(other)
    before = user_names(engine)

    with pytest.raises(ObjectStateError) as raised:
        busy.session.add(cid)

    assert names_session(str(raised.value), other)
    assert names_session(str(raised.value), busy.session)
    assert object_session(cid) is other
    assert cid in other
    busy.assert_untouched(engine, before)


def test_adding_pending_object_of_another_session_raises(
    engine: Engine, sessions: SessionFactory, busy: BusySession
) -> None:
    other = sessions()
    eve = User(name="eve")
    other.add(eve)
    before = user_names(engine)

    with pytest.raises(ObjectStateError) as raised:
        busy.session.add(eve)

    assert names_session(str(raised.value), other)
    assert names_session(str(raised.value), busy.session)
    assert other.new == [eve]
    busy.assert_untouched(engine, before)


def test_deleting_transient_object_raises(engine: Engine, busy: BusySession) -> None:
    before = user_names(engine)
    eve = User(name="eve")

    with pytest.raises(ObjectStateError, match="not persisted"):
        busy.session.delete(eve)

    assert lifecycle(eve) is ObjectState.TRANSIENT
    busy.assert_untouched(engine, before)


def test_adding_object_whose_delete_was_committed_raises(
    engine: Engine, sessions: SessionFactory, busy: BusySession
) -> None:
    other = sessions()
    cid = load_cid(other)
    other.delete(cid)
    other.commit()
    assert lifecycle(cid) is ObjectState.DETACHED
    before = user_names(engine)

    with pytest.raises(ObjectStateError, match="make_transient"):
        busy.session.add(cid)

    assert lifecycle(cid) is ObjectState.DETACHED
    assert object_session(cid) is None
    busy.assert_untouched(engine, before)


def test_misspelt_option_is_refused_with_a_suggestion(engine: Engine) -> None:
    with pytest.raises(SessionConfigError) as raised:
        Session(engine, autoflsh=True)  # type: ignore[call-arg]

    message = str(raised.value)
    assert "'autoflsh'" in message
    assert "did you mean 'autoflush'" in message
    assert isinstance(raised.value, ArgumentError)


def test_option_of_the_wrong_type_is_refused(engine: Engine) -> None:
    with pytest.raises(SessionConfigError, match="autoflush") as raised:
        Session(engine, autoflush="yes")  # type: ignore[arg-type]

    assert "'yes'" in str(raised.value)


def test_url_instead_of_engine_is_refused(engine: Engine) -> None:
    with pytest.raises(ArgumentError, match="create_engine"):
        Session("sqlite://")  # type: ignore[arg-type]

    assert user_names(engine) == []


# -- failed flushes -------------------------------------------------------------------


def assert_needs_rollback(session: Session[Engine]) -> None:
    """Every operation that needs the database refuses until rollback()."""
    with pytest.raises(PendingRollbackError):
        session.execute(select(User))
    with pytest.raises(PendingRollbackError):
        session.scalars(select(Code)).all()
    with pytest.raises(PendingRollbackError):
        session.get(Code, "nothing-here")
    with pytest.raises(PendingRollbackError):
        session.commit()
    eve = User(name="eve")
    session.add(eve)
    with pytest.raises(PendingRollbackError):
        session.flush()
    session.expunge(eve)
    assert not session.is_active


def test_not_null_violation_raises_integrity_error_and_writes_nothing(
    engine: Engine, session: Session[Engine]
) -> None:
    session.add(User(name="ann"))
    session.flush()  # inserted in the transaction; must disappear with it
    session.add(User(name=cast(str, None)))

    with pytest.raises(IntegrityError):
        session.flush()

    assert user_names(engine) == []


def test_not_null_violation_requires_rollback_then_session_works_again(
    engine: Engine, session: Session[Engine]
) -> None:
    session.add(User(name=cast(str, None)))
    with pytest.raises(IntegrityError):
        session.flush()

    assert_needs_rollback(session)
    session.rollback()

    assert session.is_active
    session.add(User(name="fred"))
    session.commit()
    assert user_names(engine) == ["fred"]


def test_duplicate_client_key_raises_integrity_error_and_writes_nothing(
    engine: Engine, session: Session[Engine]
) -> None:
    db_insert(engine, Code, [{"code": "alpha", "value": 1}])
    session.add(Code(code="beta", value=2))
    session.add(Code(code="alpha", value=3))

    with pytest.raises(IntegrityError):
        session.commit()

    assert db_rows(engine, select(Code.code, Code.value)) == [("alpha", 1)]


def test_duplicate_client_key_requires_rollback_then_session_works_again(
    engine: Engine, session: Session[Engine]
) -> None:
    db_insert(engine, Code, [{"code": "alpha", "value": 1}])
    session.add(Code(code="alpha", value=3))
    with pytest.raises(IntegrityError):
        session.flush()

    assert_needs_rollback(session)
    session.rollback()

    alpha = session.get_one(Code, "alpha")
    alpha.value = 4
    session.add(Code(code="gamma", value=5))
    session.commit()
    assert sorted(db_rows(engine, select(Code.code, Code.value))) == [("alpha", 4), ("gamma", 5)]


def test_rollback_after_failed_flush_discards_work_done_in_between(
    engine: Engine, session: Session[Engine]
) -> None:
    db_insert(engine, Code, [{"code": "alpha", "value": 1}, {"code": "beta", "value": 1}])
    beta = session.get_one(Code, "beta")
    session.add(Code(code="alpha", value=3))
    with pytest.raises(IntegrityError):
        session.flush()
    eve = Code(code="eve", value=5)
    session.add(eve)
    beta.value = 99

    with pytest.warns(SAWarning, match="discards"):
        session.rollback()

    assert lifecycle(eve) is ObjectState.TRANSIENT
    assert session.new == []
    assert session.dirty == []
    session.commit()
    assert sorted(db_rows(engine, select(Code.code, Code.value))) == [("alpha", 1), ("beta", 1)]


def test_missing_required_value_raises_flush_error_before_any_sql(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    complete = Draft(note="fine")
    complete.title = "done"
    incomplete = Draft(note="no title")
    session.add_all([complete, incomplete])

    with pytest.raises(FlushError, match=r"Draft\.title") as raised:
        session.flush()

    assert raised.value.instance is incomplete
    assert capture.matching("INSERT") == []
    assert session.new == [complete, incomplete]
    assert lifecycle(incomplete) is ObjectState.PENDING
    assert session.is_active


def test_flush_error_is_fixed_by_assigning_the_value(
    engine: Engine, session: Session[Engine]
) -> None:
    draft = Draft()
    session.add(draft)
    with pytest.raises(FlushError):
        session.flush()

    draft.title = "now titled"
    session.commit()

    assert db_rows(engine, select(Draft.title, Draft.note)) == [("now titled", None)]


def test_generated_key_read_before_flush_raises_unset_attribute_error(
    session: Session[Engine],
) -> None:
    user = User(name="ann")
    session.add(user)

    with pytest.raises(UnsetAttributeError, match="flush") as raised:
        _ = user.id

    assert isinstance(raised.value, AttributeError)
    assert raised.value.attribute == "id"
    assert not hasattr(user, "id")
    session.flush()
    assert hasattr(user, "id")
    assert user.id > 0
