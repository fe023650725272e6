"""``rollback()`` puts the session's objects back as they were before the transaction."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from tests.conftest import SQLCapture
from tests.integration.helpers import (
    db_count,
    db_insert,
    db_rows,
    lifecycle,
    recreate_tables,
    sql_for,
)
from typed_session import (
    IdentityKey,
    Mapped,
    ObjectState,
    Registry,
    Session,
    column,
    entity,
    instance_state,
    object_session,
)

reg = Registry()


@entity(reg, table="rb_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]


@entity(reg, table="rb_codes")
class Code:
    code: Mapped[str] = column(primary_key=True)
    value: Mapped[int]


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


@pytest.fixture
def ann_and_bob(engine: Engine) -> tuple[int, int]:
    """Two committed users, ann and bob; their ids."""
    db_insert(engine, User, [{"name": "ann"}, {"name": "bob"}])
    ids = db_rows(engine, select(User.id).order_by(User.name))
    return ids[0][0], ids[1][0]


def user_names(engine: Engine) -> list[str]:
    return sorted(name for (name,) in db_rows(engine, select(User.name)))


def assert_transient(session: Session[Engine], obj: object) -> None:
    assert lifecycle(obj) is ObjectState.TRANSIENT
    assert instance_state(obj).key is None
    assert obj not in session
    assert object_session(obj) is None


def test_rollback_makes_objects_added_in_the_transaction_transient(
    engine: Engine, session: Session[Engine]
) -> None:
    flushed = User(name="cid")
    session.add(flushed)
    session.flush()
    flushed_key = instance_state(flushed).key
    unflushed = User(name="dan")
    session.add(unflushed)

    session.rollback()

    assert_transient(session, flushed)
    assert_transient(session, unflushed)
    assert flushed_key not in session.identity_map
    assert session.new == []
    assert len(session.identity_map) == 0
    assert db_count(engine, User) == 0


def test_object_made_transient_by_rollback_can_be_added_again(
    engine: Engine, session: Session[Engine]
) -> None:
    user = User(name="cid")
    session.add(user)
    session.flush()
    session.rollback()

    session.add(user)
    session.commit()

    assert lifecycle(user) is ObjectState.PERSISTENT
    assert user_names(engine) == ["cid"]


def test_rollback_leaves_no_trace_of_the_transaction_in_the_database(
    engine: Engine, session: Session[Engine], ann_and_bob: tuple[int, int]
) -> None:
    ann = session.get_one(User, ann_and_bob[0])
    bob = session.get_one(User, ann_and_bob[1])
    ann.name = "anne"
    session.delete(bob)
    session.add(User(name="cid"))
    session.flush()

    session.rollback()

    assert user_names(engine) == ["ann", "bob"]


def test_rollback_restores_object_whose_delete_was_flushed(
    engine: Engine, session: Session[Engine], ann_and_bob: tuple[int, int]
) -> None:
    ann = session.get_one(User, ann_and_bob[0])
    session.delete(ann)
    session.flush()
    assert lifecycle(ann) is ObjectState.DELETED

    session.rollback()

    assert lifecycle(ann) is ObjectState.PERSISTENT
    assert not instance_state(ann).was_deleted
    assert ann in session
    assert session.identity_map.get(IdentityKey(User, (ann_and_bob[0],))) is ann
    assert ann.name == "ann"
    session.commit()
    assert user_names(engine) == ["ann", "bob"]


def test_rollback_restores_object_marked_for_deletion(
    engine: Engine, session: Session[Engine], capture: SQLCapture, ann_and_bob: tuple[int, int]
) -> None:
    ann = session.get_one(User, ann_and_bob[0])
    session.delete(ann)

    session.rollback()

    assert lifecycle(ann) is ObjectState.PERSISTENT
    assert session.deleted == []
    assert ann in session
    session.commit()
    assert sql_for(capture, "DELETE", User) == []
    assert user_names(engine) == ["ann", "bob"]


def test_rollback_expires_persistent_objects_and_reloads_database_values(
    session: Session[Engine], capture: SQLCapture, ann_and_bob: tuple[int, int]
) -> None:
    ann = session.get_one(User, ann_and_bob[0])
    bob = session.get_one(User, ann_and_bob[1])
    ann.name = "anne"
    session.flush()  # the UPDATE is sent, then rolled back
    bob.name = "rob"  # never sent

    session.rollback()

    assert instance_state(ann).unloaded() == {"id", "name"}
    assert instance_state(bob).unloaded() == {"id", "name"}
    assert session.dirty == []
    capture.clear()
    assert ann.name == "ann"
    assert bob.name == "bob"
    assert len(sql_for(capture, "SELECT", User)) == 2
    session.commit()
    assert sql_for(capture, "UPDATE", User) == []


def test_rollback_restores_identity_after_primary_key_change(
    engine: Engine, session: Session[Engine]
) -> None:
    db_insert(engine, Code, [{"code": "alpha", "value": 1}])
    code = session.get_one(Code, "alpha")
    code.code = "omega"
    session.flush()
    assert IdentityKey(Code, ("omega",)) in session.identity_map
    assert IdentityKey(Code, ("alpha",)) not in session.identity_map

    session.rollback()

    assert instance_state(code).key == IdentityKey(Code, ("alpha",))
    assert IdentityKey(Code, ("alpha",)) in session.identity_map
    assert IdentityKey(Code, ("omega",)) not in session.identity_map
    assert code.code == "alpha"
    assert session.get(Code, "alpha") is code
    assert db_rows(engine, select(Code.code, Code.value)) == [("alpha", 1)]


def test_rollback_does_not_reattach_an_expunged_deleted_object(
    session: Session[Engine], ann_and_bob: tuple[int, int]
) -> None:
    ann = session.get_one(User, ann_and_bob[0])
    session.delete(ann)
    session.flush()
    session.expunge(ann)
    assert object_session(ann) is None

    session.rollback()

    assert object_session(ann) is None
    assert ann not in session
    assert lifecycle(ann) is ObjectState.DETACHED


def test_rollback_after_expunge_all_leaves_deleted_object_detached(
    session: Session[Engine], ann_and_bob: tuple[int, int]
) -> None:
    ann = session.get_one(User, ann_and_bob[0])
    session.delete(ann)
    session.flush()
    session.expunge_all()

    session.rollback()

    assert object_session(ann) is None
    assert len(session.identity_map) == 0


def test_rollback_after_keys_rotated_among_objects_indexes_every_object(
    session: Session[Engine],
) -> None:
    session.add_all([Code(code="a", value=1), Code(code="b", value=2)])
    session.commit()
    a, b = session.get_one(Code, "a"), session.get_one(Code, "b")
    a.code = "c"
    session.flush()
    b.code = "a"
    session.flush()
    a.code = "b"
    session.flush()  # a: a -> c -> b, b: b -> a: the two keys have swapped

    session.rollback()

    assert instance_state(a).key == IdentityKey(Code, ("a",))
    assert instance_state(b).key == IdentityKey(Code, ("b",))
    assert session.get(Code, "a") is a
    assert session.get(Code, "b") is b
    assert (a.code, a.value, b.code, b.value) == ("a", 1, "b", 2)
