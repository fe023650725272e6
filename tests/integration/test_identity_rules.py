"""Identities, deletions and flush order as SQLAlchemy 2.x has them (issue 12).

Items 2-6, 12-20 and 22, and the seed's message phrases.
"""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, String, insert, select, text, update
from sqlalchemy.exc import (
    IntegrityError,
    InvalidRequestError,
    NoResultFound,
    PendingRollbackError,
    SAWarning,
)

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
    FlushError,
    IdentityKey,
    Mapped,
    ObjectDeletedError,
    ObjectState,
    Registry,
    column,
    entity,
    instance_state,
    make_transient,
    make_transient_to_detached,
)

reg = Registry()


@entity(reg, table="idr_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str] = column(String(50), unique=True)
    email: Mapped[str | None] = column(default=None)
    rank: Mapped[int] = column(server_default="0", init=False)


@entity(reg, table="idr_nat")
class Nat:
    name: Mapped[str] = column(String(50), primary_key=True)
    value: Mapped[int] = column(default=0)


@entity(reg, table="idr_codes")
class Code:
    code: Mapped[str] = column(String(20), primary_key=True)
    status: Mapped[int] = column(primary_key=True, autoincrement=False)
    note: Mapped[str] = column(default="")


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def reset_key_counter(engine: Engine) -> None:
    """Make the database hand out user id 1 again (SQLite reuses it by itself)."""
    name = table_of(User).name
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), 1, false)"))
        elif engine.dialect.name in ("mysql", "mariadb"):
            conn.execute(text(f"ALTER TABLE {name} AUTO_INCREMENT = 1"))


# -- item 2: a composite key changed on an expired object -----------------------------------


def test_a_composite_key_change_on_an_expired_object_keeps_it_persistent(
    sessions: SessionFactory,
) -> None:
    session = sessions()
    code = Code(code="a", status=1)
    session.add(code)
    session.commit()  # every attribute expired

    code.status = 3
    session.flush()

    assert lifecycle(code) is ObjectState.PERSISTENT
    assert instance_state(code).key == IdentityKey(Code, ("a", 3))
    assert session.get(Code, ("a", 3)) is code
    session.commit()
    assert session.get_one(Code, ("a", 3)).code == "a"


# -- item 4: rollback gives a deleted object back its key ---------------------------------


def test_rollback_restores_a_deleted_object_whose_key_another_object_took(
    sessions: SessionFactory,
) -> None:
    session = sessions()
    session.add(Nat(name="u1", value=1))
    session.commit()
    first = session.get_one(Nat, "u1")
    session.delete(first)
    session.flush()
    session.execute(insert(Nat).values(name="u1", value=2))
    second = session.get_one(Nat, "u1")
    assert second is not first

    session.rollback()

    assert session.get(Nat, "u1") is first
    assert first in session
    assert second not in session
    assert lifecycle(second) is ObjectState.DETACHED
    assert first.value == 1


def test_contains_agrees_with_the_identity_map(sessions: SessionFactory) -> None:
    session = sessions()
    session.add(Nat(name="u1"))
    session.commit()
    first = session.get_one(Nat, "u1")
    session.delete(first)
    session.flush()
    assert first not in session
    assert first not in session.identity_map.values()


# -- item 6: deleting a deleted object again -----------------------------------------------


def test_deleting_a_flushed_deleted_object_again_marks_it_again(
    engine: Engine, sessions: SessionFactory
) -> None:
    db_insert(engine, Nat, [{"name": "u1"}])
    session = sessions()
    gone = session.get_one(Nat, "u1")
    session.delete(gone)
    session.flush()

    session.delete(gone)

    assert session.deleted == [gone]
    name = table_of(Nat).name
    with pytest.warns(
        SAWarning,
        match=rf"^DELETE statement on table '{name}' expected to delete 1 row\(s\); 0 were matched",
    ):
        session.flush()
    assert session.deleted == []
    assert lifecycle(gone) is ObjectState.DELETED


# -- item 12: a change to a deleted object is ignored ------------------------------------


def test_a_change_to_an_object_whose_delete_was_flushed_is_ignored(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    db_insert(engine, Nat, [{"name": "u1"}, {"name": "u2"}])
    session = sessions()
    kept = session.get_one(Nat, "u2")
    kept.value = 5
    gone = session.get_one(Nat, "u1")
    session.delete(gone)
    session.flush()
    capture.clear()

    gone.value = 7

    assert session.dirty == []
    session.commit()
    assert sql_for(capture, "UPDATE", Nat) == []
    assert db_rows(engine, select(Nat.name, Nat.value)) == [("u2", 5)]


# -- item 13: a newly flushed row displaces a stale holder of its key ------------------------


def test_a_new_row_displaces_a_reattached_object_holding_its_rolled_back_key(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    stale = User(name="stale")
    session.add(stale)
    session.flush()
    assert stale.id == 1 or engine.dialect.name != "sqlite"
    session.rollback()
    reset_key_counter(engine)
    stale.id = 1
    make_transient_to_detached(stale)
    session.add(stale)  # persistent, with the key of a row that was rolled back
    fresh = User(name="fresh")
    session.add(fresh)

    with pytest.warns(SAWarning, match=r"^Identity map already had an identity"):
        session.flush()

    assert fresh.id == 1
    assert session.get(User, 1) is fresh
    assert lifecycle(stale) is ObjectState.DETACHED
    stale.name = "overwrite?"
    session.commit()
    assert db_rows(engine, select(User.id, User.name)) == [(1, "fresh")]


# -- item 14 and 15: flush order inside one table --------------------------------------------


def test_updates_go_before_inserts_so_a_unique_value_can_move(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    old = User(name="x")
    session.add(old)
    session.commit()

    old.name = "y"
    session.add(User(name="x"))
    session.commit()

    assert sorted(n for (n,) in db_rows(engine, select(User.name))) == ["x", "y"]


def test_inserts_follow_add_order_across_column_sets(sessions: SessionFactory) -> None:
    session = sessions()
    a = User(name="a")
    b = User(name="b")
    b.rank = 5  # a column the others leave to the database: another column set
    c = User(name="c")
    session.add_all([a, b, c])
    session.flush()
    assert a.id < b.id < c.id
    assert (a.rank, b.rank, c.rank) == (0, 5, 0)


# -- item 16: get() of expired objects ------------------------------------------------------


def test_get_of_a_partly_expired_object_sends_no_sql_and_does_not_autoflush(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    user = User(name="a")
    session.add(user)
    session.flush()
    session.expire(user, ["name"])
    pending = User(name="b")
    session.add(pending)
    capture.clear()

    assert session.get(User, user.id) is user

    assert capture.statements == []
    assert lifecycle(pending) is ObjectState.PENDING


def test_get_of_a_fully_expired_object_whose_row_is_gone_returns_none(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    user = User(name="a")
    session.add(user)
    session.commit()  # expired
    key = instance_state(user).key
    assert key is not None
    ident = key.primary_key[0]
    with engine.begin() as conn:
        conn.execute(table_of(User).delete())

    assert session.get(User, ident) is None

    assert lifecycle(user) is ObjectState.DELETED
    assert user not in session
    assert key not in session.identity_map


# -- items 17, 20, 22: what cannot be loaded says so ------------------------------------------


@pytest.mark.parametrize("verb", ["expire", "refresh"])
def test_expire_or_refresh_of_a_deleted_object_is_refused(
    engine: Engine, sessions: SessionFactory, verb: str
) -> None:
    db_insert(engine, Nat, [{"name": "u1", "value": 3}])
    session = sessions()
    gone = session.get_one(Nat, "u1")
    session.delete(gone)
    session.flush()

    with pytest.raises(InvalidRequestError, match=r"^Instance .* is not persistent within"):
        getattr(session, verb)(gone)

    assert gone.__dict__["value"] == 3


def test_refresh_of_an_object_whose_row_is_gone(engine: Engine, sessions: SessionFactory) -> None:
    db_insert(engine, Nat, [{"name": "u1"}])
    session = sessions()
    user = session.get_one(Nat, "u1")
    session.execute(update(Nat).where(Nat.name == "u1").values(name="u9"))

    with pytest.raises(ObjectDeletedError, match=r"^Could not refresh instance"):
        session.refresh(user)


def test_reading_an_expired_attribute_of_a_pending_object_is_refused_without_sql(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    user = User(name="a")
    session.add(user)
    session.flush()
    session.expire(user, ["name"])
    session.rollback()  # transient again; "name" stays expired
    session.add(user)
    capture.clear()

    with pytest.raises(InvalidRequestError, match=r"cannot be refreshed - it's not persistent"):
        _ = user.name

    assert capture.statements == []


# -- messages ------------------------------------------------------------------------------


def test_get_one_and_make_transient_to_detached_use_sqlalchemys_words(
    sessions: SessionFactory,
) -> None:
    session = sessions()
    with pytest.raises(NoResultFound, match=r"^No row was found when one was required"):
        session.get_one(User, 1)
    user = User(name="a")
    session.add(user)
    with pytest.raises(InvalidRequestError, match=r"^Given object must be transient"):
        make_transient_to_detached(user)


# -- items 3, 5, 18, 19: what a flush or a key change loads first ----------------------------


def test_a_new_object_takes_the_key_of_an_expired_object_whose_row_is_gone(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    old = Nat(name="u1", value=1)
    session.add(old)
    session.commit()  # old is expired
    with engine.begin() as conn:
        conn.execute(table_of(Nat).delete())
    new = Nat(name="u1", value=2)
    session.add(new)

    session.commit()

    assert db_rows(engine, select(Nat.name, Nat.value)) == [("u1", 2)]
    assert lifecycle(old) is ObjectState.DETACHED
    assert instance_state(old).was_deleted
    assert session.get(Nat, "u1") is new


def test_a_new_object_with_the_key_of_a_live_expired_object_is_still_refused(
    sessions: SessionFactory,
) -> None:
    session = sessions()
    old = Nat(name="u1", value=1)
    session.add(old)
    session.commit()  # old is expired, its row still there
    session.add(Nat(name="u1", value=2))
    with pytest.raises(FlushError, match="conflicts with persistent object"):
        session.flush()
    assert session.is_active
    assert old.value == 1


def test_a_deleted_expired_object_keeps_its_values_and_can_be_inserted_again(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    nat = Nat(name="u1", value=7)
    session.add(nat)
    session.commit()  # expired
    session.delete(nat)
    session.commit()  # its DELETE loads it first

    make_transient(nat)
    assert nat.value == 7
    session.add(nat)
    session.commit()

    assert db_rows(engine, select(Nat.name, Nat.value)) == [("u1", 7)]


@pytest.mark.parametrize("change", ["delete", "update"])
def test_flushing_an_expired_object_whose_row_is_gone_raises_object_deleted(
    engine: Engine, sessions: SessionFactory, change: str
) -> None:
    session = sessions()
    code = Code(code="a", status=1, note="n")
    session.add(code)
    session.commit()  # expired
    with engine.begin() as conn:
        conn.execute(table_of(Code).delete())
    if change == "delete":
        session.delete(code)
    else:
        code.note = "changed"

    with pytest.raises(ObjectDeletedError, match=r"^Instance .* has been deleted"):
        session.flush()


def test_assigning_an_expired_primary_key_loads_the_old_one_first(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    code = Code(code="a", status=1)
    session.add(code)
    session.commit()  # expired
    capture.clear()

    code.status = 2

    assert len(sql_for(capture, "SELECT", Code)) == 1
    assert code.code == "a"
    session.commit()
    assert db_rows(engine, select(Code.code, Code.status)) == [("a", 2)]


def test_assigning_an_expired_primary_key_of_a_detached_object_is_refused(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    code = Code(code="a", status=1)
    session.add(code)
    session.commit()  # expired
    session.close()  # detached

    with pytest.raises(DetachedInstanceError, match=r"^Instance .* is not bound to a Session"):
        code.status = 2

    other = sessions()
    other.add(code)
    other.commit()
    assert db_rows(engine, select(Code.code, Code.status)) == [("a", 1)]


# -- found by the differential test -------------------------------------------------------


def test_a_new_object_takes_the_key_another_is_renamed_away_from_in_the_same_flush(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    old = Nat(name="u1", value=1)
    session.add(old)
    session.commit()

    old.name = "u2"
    session.add(Nat(name="u1", value=2))
    session.commit()

    assert sorted(db_rows(engine, select(Nat.name, Nat.value))) == [("u1", 2), ("u2", 1)]


def test_after_a_failed_flush_the_next_flush_says_rollback_first(
    engine: Engine, sessions: SessionFactory
) -> None:
    db_insert(engine, Nat, [{"name": "taken"}])
    session = sessions()
    session.add(Nat(name="taken"))
    with pytest.raises(IntegrityError):
        session.flush()
    session.add_all([Nat(name="twin"), Nat(name="twin")])  # would be refused by the plan

    with pytest.raises(PendingRollbackError, match=r"^This Session's transaction has been"):
        session.flush()


def test_a_whole_object_expiry_stays_whole_after_an_assignment_or_more_expiry(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions()
    a, b = User(name="a", email="a@x"), User(name="b", email="b@x")
    session.add_all([a, b])
    session.commit()  # both expired as a whole
    a.name = "a2"  # one attribute assigned
    session.expire(b, ["email"])  # one more expired
    capture.clear()

    with session.no_autoflush:  # fresh tables: a is row 1, b row 2
        assert session.get(User, 1) is a
        assert session.get(User, 2) is b
    assert len(sql_for(capture, "SELECT", User)) == 2  # both reloaded, as in SQLAlchemy
    assert (a.__dict__["name"], a.__dict__["email"]) == ("a2", "a@x")
    assert b.__dict__["email"] == "b@x"


def test_add_of_a_deleted_object_is_refused_without_beginning_a_transaction(
    engine: Engine, sessions: SessionFactory
) -> None:
    db_insert(engine, Nat, [{"name": "u1"}])
    session = sessions()
    gone = session.get_one(Nat, "u1")
    session.delete(gone)
    session.commit()
    assert not session.in_transaction()

    with pytest.raises(InvalidRequestError, match="has been deleted"):
        session.add(gone)
    assert not session.in_transaction()
