"""An object's way through the lifecycle, and what the session reports on the way.

transient -> pending (add) -> persistent (flush) -> expired by commit, reloaded on access
-> deleted (delete + flush) -> detached (commit); plus expunge and close.
"""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_count, db_rows, lifecycle, recreate_tables, sql_for
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


@entity(reg, table="lc_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    email: Mapped[str | None] = column(default=None)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def saved_user(sessions: SessionFactory, name: str) -> int:
    """Insert a user through a session of its own and return its id."""
    with sessions() as s:
        user = User(name=name)
        s.add(user)
        s.commit()
        return user.id


def test_new_object_is_transient(session: Session[Engine]) -> None:
    user = User(name="ann")

    assert lifecycle(user) is ObjectState.TRANSIENT
    assert user not in session
    assert object_session(user) is None
    assert instance_state(user).key is None


def test_add_makes_object_pending_without_sql(
    session: Session[Engine], capture: SQLCapture
) -> None:
    user = User(name="ann")
    capture.clear()

    session.add(user)

    assert lifecycle(user) is ObjectState.PENDING
    assert user in session
    assert session.new == [user]
    assert list(session) == [user]
    assert object_session(user) is session
    assert len(session.identity_map) == 0
    assert capture.statements == []


def test_flush_makes_object_persistent_with_its_identity(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    user = User(name="ann")
    session.add(user)

    session.flush()

    assert lifecycle(user) is ObjectState.PERSISTENT
    assert len(sql_for(capture, "INSERT", User)) == 1
    assert session.new == []
    assert user in session
    key = IdentityKey(User, (user.id,))
    assert instance_state(user).key == key
    assert len(session.identity_map) == 1
    assert key in session.identity_map
    assert session.identity_map.get(key) is user
    assert session.identity_map.get(IdentityKey(User, (user.id + 1,))) is None
    session.commit()
    assert db_rows(engine, select(User.id, User.name)) == [(user.id, "ann")]


def test_commit_expires_object_and_first_access_reloads_it_with_one_select(
    session: Session[Engine], capture: SQLCapture
) -> None:
    user = User(name="ann", email="ann@example.com")
    session.add(user)
    session.commit()

    assert lifecycle(user) is ObjectState.PERSISTENT
    assert instance_state(user).unloaded() == {"id", "name", "email"}
    capture.clear()

    assert user.name == "ann"
    assert user.email == "ann@example.com"
    assert user.id > 0
    assert len(sql_for(capture, "SELECT", User)) == 1
    assert instance_state(user).unloaded() == frozenset()


def test_delete_is_listed_until_flush_then_object_is_deleted(
    engine: Engine, sessions: SessionFactory
) -> None:
    user_id = saved_user(sessions, "ann")
    session = sessions()
    user = session.get_one(User, user_id)

    session.delete(user)

    assert session.deleted == [user]
    assert lifecycle(user) is ObjectState.PERSISTENT
    session.flush()
    assert lifecycle(user) is ObjectState.DELETED
    assert session.deleted == []
    assert user not in session
    assert IdentityKey(User, (user_id,)) not in session.identity_map
    assert object_session(user) is session
    assert db_count(engine, User) == 1  # the DELETE is not committed yet


def test_commit_detaches_deleted_object_and_removes_its_row(
    engine: Engine, sessions: SessionFactory
) -> None:
    user_id = saved_user(sessions, "ann")
    session = sessions()
    user = session.get_one(User, user_id)
    session.delete(user)
    session.flush()

    session.commit()

    assert lifecycle(user) is ObjectState.DETACHED
    assert instance_state(user).was_deleted
    assert object_session(user) is None
    assert db_count(engine, User) == 0


def test_dirty_lists_persistent_objects_with_changed_attributes(
    engine: Engine, sessions: SessionFactory
) -> None:
    ann_id = saved_user(sessions, "ann")
    bob_id = saved_user(sessions, "bob")
    session = sessions()
    ann = session.get_one(User, ann_id)
    bob = session.get_one(User, bob_id)
    assert session.dirty == []

    ann.name = "anne"

    assert session.dirty == [ann]
    assert bob not in session.dirty
    session.commit()
    assert session.dirty == []
    assert sorted(db_rows(engine, select(User.name))) == [("anne",), ("bob",)]


def test_iteration_yields_pending_and_persistent_objects(
    sessions: SessionFactory,
) -> None:
    ann_id = saved_user(sessions, "ann")
    session = sessions()
    ann = session.get_one(User, ann_id)
    bob = User(name="bob")
    session.add(bob)

    objects = list(session)

    assert len(objects) == 2
    assert ann in objects
    assert bob in objects


def test_identity_map_holds_every_loaded_object(sessions: SessionFactory) -> None:
    ids = [saved_user(sessions, name) for name in ("ann", "bob", "cid")]
    session = sessions()

    users = session.scalars(select(User).order_by(User.id)).all()

    assert len(session.identity_map) == 3
    assert set(session.identity_map) == {IdentityKey(User, (i,)) for i in ids}
    for user in users:
        assert session.identity_map[IdentityKey(User, (user.id,))] is user


def test_close_detaches_every_object(sessions: SessionFactory) -> None:
    ann_id = saved_user(sessions, "ann")
    bob_id = saved_user(sessions, "bob")
    session = sessions()
    ann = session.get_one(User, ann_id)
    bob = session.get_one(User, bob_id)
    session.delete(bob)
    cid = User(name="cid")
    session.add(cid)

    session.close()

    assert lifecycle(ann) is ObjectState.DETACHED
    assert lifecycle(bob) is ObjectState.DETACHED
    assert lifecycle(cid) is ObjectState.TRANSIENT
    assert list(session) == []
    assert session.new == []
    assert session.deleted == []
    assert len(session.identity_map) == 0
    assert not session.in_transaction()
    for user in (ann, bob, cid):
        assert object_session(user) is None


def test_close_discards_unflushed_work(engine: Engine, sessions: SessionFactory) -> None:
    session = sessions()
    session.add(User(name="ann"))
    session.flush()

    session.close()

    assert db_count(engine, User) == 0


def test_closed_session_can_be_used_again(engine: Engine, session: Session[Engine]) -> None:
    session.add(User(name="ann"))
    session.close()

    bob = User(name="bob")
    session.add(bob)
    session.commit()

    assert lifecycle(bob) is ObjectState.PERSISTENT
    assert db_rows(engine, select(User.name)) == [("bob",)]


def test_with_block_closes_the_session(engine: Engine) -> None:
    with Session(engine) as session:
        user = User(name="ann")
        session.add(user)
        session.commit()
        assert user.name == "ann"  # reloaded while the session is open
        assert lifecycle(user) is ObjectState.PERSISTENT

    assert lifecycle(user) is ObjectState.DETACHED
    assert object_session(user) is None
    assert not session.in_transaction()
    assert db_rows(engine, select(User.name)) == [("ann",)]


def test_expunge_pending_object_makes_it_transient_and_it_is_not_inserted(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    user = User(name="ann")
    session.add(user)

    session.expunge(user)
    session.commit()

    assert lifecycle(user) is ObjectState.TRANSIENT
    assert user not in session
    assert sql_for(capture, "INSERT", User) == []
    assert db_count(engine, User) == 0


def test_expunge_persistent_object_makes_it_detached(sessions: SessionFactory) -> None:
    user_id = saved_user(sessions, "ann")
    session = sessions()
    user = session.get_one(User, user_id)

    session.expunge(user)

    assert lifecycle(user) is ObjectState.DETACHED
    assert user not in session
    assert IdentityKey(User, (user_id,)) not in session.identity_map
    assert session.get(User, user_id) is not user  # loaded anew, as another object


def test_expunged_object_keeps_unflushed_changes_out_of_the_flush(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    user_id = saved_user(sessions, "ann")
    session = sessions()
    user = session.get_one(User, user_id)
    user.name = "anne"

    session.expunge(user)
    session.commit()

    assert session.dirty == []
    assert sql_for(capture, "UPDATE", User) == []
    assert db_rows(engine, select(User.name)) == [("ann",)]


def test_expunge_all_empties_the_session(sessions: SessionFactory) -> None:
    ann_id = saved_user(sessions, "ann")
    session = sessions()
    ann = session.get_one(User, ann_id)
    bob = User(name="bob")
    session.add(bob)

    session.expunge_all()

    assert lifecycle(ann) is ObjectState.DETACHED
    assert lifecycle(bob) is ObjectState.TRANSIENT
    assert list(session) == []
    assert len(session.identity_map) == 0
