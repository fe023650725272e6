"""The SQL a flush sends: batched INSERTs, minimal and grouped UPDATEs, batched DELETEs."""

import gc
import random
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.exc import PendingRollbackError, SAWarning

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import (
    db_count,
    db_insert,
    db_rows,
    lifecycle,
    recreate_tables,
    set_clause_columns,
    sql_for,
    table_of,
)
from typed_session import (
    FlushError,
    IdentityKey,
    Mapped,
    ObjectState,
    Registry,
    Session,
    StaleDataError,
    UnsetAttributeError,
    column,
    entity,
    instance_state,
)

reg = Registry()


@entity(reg, table="uow_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    email: Mapped[str | None] = column(default=None)
    nickname: Mapped[str | None] = column(init=False)  # nullable, never set by __init__


@entity(reg, table="uow_stamped")
class Stamped:
    id: Mapped[int] = column(primary_key=True, init=False)
    label: Mapped[str]
    status: Mapped[str] = column(server_default=text("'new'"), init=False)
    created: Mapped[datetime] = column(server_default=func.current_timestamp(), init=False)


@entity(reg, table="uow_codes")
class Code:
    code: Mapped[str] = column(primary_key=True)
    value: Mapped[int]


@entity(reg, table="uow_tagged")
class Tagged:
    code: Mapped[str] = column(primary_key=True)
    status: Mapped[str] = column(server_default=text("'new'"), init=False)


@entity(reg, table="uow_cells")
class Cell:
    sheet: Mapped[str] = column(primary_key=True)
    position: Mapped[int] = column(primary_key=True, autoincrement=False)
    content: Mapped[str]


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def committed_users(sessions: SessionFactory, *names: str) -> list[int]:
    """Insert users through a session of their own; return their ids in order."""
    with sessions() as s:
        users = [User(name=n, email=f"{n}@example.com") for n in names]
        s.add_all(users)
        s.commit()
        return [u.id for u in users]


# -- INSERT ---------------------------------------------------------------------------


def test_fifty_pending_objects_are_inserted_by_one_statement(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    session.add_all([User(name=f"user{i:02}") for i in range(50)])
    capture.clear()

    session.flush()

    assert len(sql_for(capture, "INSERT", User)) == 1
    assert len(capture.matching("INSERT")) == 1
    session.commit()
    assert db_count(engine, User) == 50


def test_generated_keys_are_assigned_to_the_objects_whose_rows_they_identify(
    engine: Engine, session: Session[Engine]
) -> None:
    names = [f"user{i:02}" for i in range(50)]
    random.Random(7).shuffle(names)  # so that name order and id order differ
    users = [User(name=n) for n in names]
    session.add_all(users)

    session.flush()
    session.commit()

    ids_by_name = dict(db_rows(engine, select(User.name, User.id)))
    for user, name in zip(users, names, strict=True):
        assert lifecycle(user) is ObjectState.PERSISTENT
        assert user.id == ids_by_name[name]
    assert sorted(u.id for u in users) == [u.id for u in users]  # given in add order


def test_server_defaults_are_on_the_objects_after_flush(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    items = [Stamped(label=f"item{i}") for i in range(5)]
    session.add_all(items)

    session.flush()
    assert len(sql_for(capture, "INSERT", Stamped)) == 1
    capture.clear()

    for item in items:
        assert item.status == "new"
        assert isinstance(item.created, datetime)
        assert item.id > 0
    assert capture.statements == []  # no reload needed: the INSERT returned them
    session.commit()
    assert sorted(db_rows(engine, select(Stamped.label, Stamped.status))) == [
        (f"item{i}", "new") for i in range(5)
    ]


def test_server_defaults_are_on_objects_with_client_supplied_keys(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    tagged = [Tagged(code=c) for c in ("b", "a", "c")]
    session.add_all(tagged)

    session.flush()

    assert len(sql_for(capture, "INSERT", Tagged)) == 1
    capture.clear()
    assert [t.status for t in tagged] == ["new", "new", "new"]
    assert capture.statements == []


def test_pending_object_referenced_only_by_the_session_is_inserted(
    engine: Engine, session: Session[Engine]
) -> None:
    session.add(User(name="ann"))
    gc.collect()

    session.commit()

    assert db_rows(engine, select(User.name)) == [("ann",)]


def test_unset_nullable_attribute_is_none_after_flush(
    engine: Engine, session: Session[Engine]
) -> None:
    user = User(name="ann")
    with pytest.raises(UnsetAttributeError):
        _ = user.nickname
    session.add(user)

    session.flush()

    assert user.nickname is None
    assert user.email is None
    session.commit()
    assert db_rows(engine, select(User.email, User.nickname)) == [(None, None)]


def test_client_supplied_primary_keys_are_inserted_and_identify_the_objects(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    codes = [Code(code=c, value=i) for i, c in enumerate(["zulu", "alpha", "mike"])]
    session.add_all(codes)

    session.commit()

    assert len(sql_for(capture, "INSERT", Code)) == 1
    assert sorted(db_rows(engine, select(Code.code, Code.value))) == [
        ("alpha", 1),
        ("mike", 2),
        ("zulu", 0),
    ]
    assert session.get(Code, "alpha") is codes[1]
    assert IdentityKey(Code, ("zulu",)) in session.identity_map


# -- UPDATE ---------------------------------------------------------------------------


def test_update_sets_only_the_changed_column(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    (ann_id,) = committed_users(sessions, "ann")
    session = sessions()
    ann = session.get_one(User, ann_id)
    capture.clear()

    ann.email = "anne@example.com"
    session.flush()

    (update,) = sql_for(capture, "UPDATE", User)
    assert set_clause_columns(update) == ["email"]
    session.commit()
    assert db_rows(engine, select(User.name, User.email)) == [("ann", "anne@example.com")]


def test_updates_are_grouped_by_the_set_of_changed_columns(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    ids = committed_users(sessions, "u0", "u1", "u2", "u3", "u4")
    session = sessions()
    users = [session.get_one(User, i) for i in ids]
    capture.clear()

    for user in users[:3]:
        user.name = user.name.upper()
    for user in users[3:]:
        user.email = f"new-{user.name}@example.com"
    session.flush()

    updates = sql_for(capture, "UPDATE", User)
    assert len(updates) == 2
    assert set_clause_columns(updates[0]) == ["name"]
    assert set_clause_columns(updates[1]) == ["email"]
    session.commit()
    assert sorted(db_rows(engine, select(User.name, User.email))) == [
        ("U0", "u0@example.com"),
        ("U1", "u1@example.com"),
        ("U2", "u2@example.com"),
        ("u3", "new-u3@example.com"),
        ("u4", "new-u4@example.com"),
    ]


def test_same_changed_columns_in_another_order_share_one_update(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    ann_id, bob_id = committed_users(sessions, "ann", "bob")
    session = sessions()
    ann = session.get_one(User, ann_id)
    bob = session.get_one(User, bob_id)
    capture.clear()

    ann.name, ann.email = "anne", "anne@example.com"
    bob.email, bob.name = "rob@example.com", "rob"
    session.flush()

    assert len(sql_for(capture, "UPDATE", User)) == 1


def test_change_to_object_referenced_only_by_the_session_is_flushed(
    engine: Engine, sessions: SessionFactory
) -> None:
    (ann_id,) = committed_users(sessions, "ann")
    session = sessions()
    session.get_one(User, ann_id).name = "anne"
    gc.collect()

    session.commit()

    assert db_rows(engine, select(User.name)) == [("anne",)]


def test_update_of_row_deleted_elsewhere_raises_stale_data_error(
    engine: Engine, sessions: SessionFactory
) -> None:
    (ann_id,) = committed_users(sessions, "ann")
    session = sessions()
    ann = session.get_one(User, ann_id)
    with engine.begin() as conn:
        conn.execute(delete(table_of(User)))
    ann.name = "anne"

    with pytest.raises(StaleDataError, match="uow_users"):
        session.flush()

    with pytest.raises(PendingRollbackError):
        session.commit()
    session.rollback()


def test_assigning_the_current_value_emits_no_update(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    (ann_id,) = committed_users(sessions, "ann")
    session = sessions()
    ann = session.get_one(User, ann_id)
    capture.clear()

    ann.name = "ann"
    ann.email = "ann@example.com"
    session.flush()

    assert sql_for(capture, "UPDATE", User) == []
    assert session.dirty == []


def test_change_reverted_before_flush_emits_no_update(
    sessions: SessionFactory, capture: SQLCapture
) -> None:
    (ann_id,) = committed_users(sessions, "ann")
    session = sessions()
    ann = session.get_one(User, ann_id)
    capture.clear()

    ann.name = "anne"
    ann.name = "ann"
    session.commit()

    assert sql_for(capture, "UPDATE", User) == []


# -- DELETE ---------------------------------------------------------------------------


def test_deleting_many_objects_uses_one_delete_statement(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    ids = committed_users(sessions, *(f"user{i}" for i in range(10)))
    session = sessions()
    users = [session.get_one(User, i) for i in ids]
    capture.clear()

    for user in users[:7]:
        session.delete(user)
    session.flush()

    assert len(sql_for(capture, "DELETE", User)) == 1
    session.commit()
    assert sorted(db_rows(engine, select(User.id))) == [(i,) for i in ids[7:]]


def test_delete_of_row_deleted_elsewhere_warns(engine: Engine, sessions: SessionFactory) -> None:
    (ann_id,) = committed_users(sessions, "ann")
    session = sessions()
    ann = session.get_one(User, ann_id)
    with engine.begin() as conn:
        conn.execute(delete(table_of(User)))
    session.delete(ann)

    with pytest.warns(SAWarning, match="expected to delete 1 row"):
        session.flush()

    assert lifecycle(ann) is ObjectState.DELETED


# -- composite primary keys -----------------------------------------------------------


def test_composite_key_objects_are_inserted_and_found_by_tuple(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    cells = [Cell(sheet="s1", position=1, content="a"), Cell(sheet="s1", position=2, content="b")]
    cells.append(Cell(sheet="s2", position=1, content="c"))
    session.add_all(cells)
    session.flush()
    capture.clear()

    assert session.get(Cell, ("s1", 2)) is cells[1]
    assert session.get(Cell, {"sheet": "s2", "position": 1}) is cells[2]
    assert IdentityKey(Cell, ("s1", 1)) in session.identity_map
    assert capture.statements == []  # answered from the identity map
    session.commit()
    assert sorted(db_rows(engine, select(Cell.sheet, Cell.position, Cell.content))) == [
        ("s1", 1, "a"),
        ("s1", 2, "b"),
        ("s2", 1, "c"),
    ]


def test_composite_key_object_is_loaded_by_tuple(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    db_insert(engine, Cell, [{"sheet": "s1", "position": 3, "content": "x"}])

    cell = session.get(Cell, ("s1", 3))

    assert cell is not None
    assert (cell.sheet, cell.position, cell.content) == ("s1", 3, "x")
    assert session.get(Cell, ("s1", 4)) is None
    assert len(sql_for(capture, "SELECT", Cell)) == 2


def test_composite_key_object_is_updated_by_its_whole_key(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    db_insert(
        engine,
        Cell,
        [
            {"sheet": "s1", "position": 1, "content": "a"},
            {"sheet": "s2", "position": 1, "content": "b"},
        ],
    )
    cell = session.get_one(Cell, ("s1", 1))

    cell.content = "changed"
    session.commit()

    (update,) = sql_for(capture, "UPDATE", Cell)
    assert set_clause_columns(update) == ["content"]
    assert sorted(db_rows(engine, select(Cell.sheet, Cell.position, Cell.content))) == [
        ("s1", 1, "changed"),
        ("s2", 1, "b"),
    ]


def test_composite_key_object_is_deleted_by_its_whole_key(
    engine: Engine, session: Session[Engine]
) -> None:
    db_insert(
        engine,
        Cell,
        [
            {"sheet": "s1", "position": 1, "content": "a"},
            {"sheet": "s1", "position": 2, "content": "b"},
        ],
    )
    cell = session.get_one(Cell, ("s1", 1))

    session.delete(cell)
    session.commit()

    assert lifecycle(cell) is ObjectState.DETACHED
    assert db_rows(engine, select(Cell.sheet, Cell.position)) == [("s1", 2)]


def test_deleted_key_can_be_reused_by_a_new_object_in_the_same_flush(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    db_insert(engine, Code, [{"code": "alpha", "value": 1}])
    old = session.get_one(Code, "alpha")

    session.delete(old)
    new = Code(code="alpha", value=2)
    session.add(new)
    session.flush()

    assert lifecycle(new) is ObjectState.PERSISTENT
    assert lifecycle(old) is ObjectState.DELETED
    assert session.get(Code, "alpha") is new
    assert len(sql_for(capture, "UPDATE", Code)) == 1  # the row is switched over
    assert sql_for(capture, "DELETE", Code) == []
    session.commit()
    assert lifecycle(old) is ObjectState.DETACHED
    assert db_rows(engine, select(Code.code, Code.value)) == [("alpha", 2)]


def test_new_object_that_took_over_a_deleted_row_can_read_all_its_attributes(
    engine: Engine, session: Session[Engine]
) -> None:
    db_insert(engine, Tagged, [{"code": "a", "status": "used"}])
    session.delete(session.get_one(Tagged, "a"))
    new = Tagged(code="a")  # status is left to the database
    session.add(new)
    session.flush()

    in_row = session.execute(select(Tagged.status)).scalar_one()

    assert new.status == in_row


def test_two_new_objects_cannot_both_take_over_a_deleted_row(
    engine: Engine, session: Session[Engine]
) -> None:
    db_insert(engine, Code, [{"code": "alpha", "value": 1}])
    session.delete(session.get_one(Code, "alpha"))
    session.add_all([Code(code="alpha", value=2), Code(code="alpha", value=3)])

    with pytest.raises(FlushError, match="alpha"):
        session.flush()

    assert db_rows(engine, select(Code.code, Code.value)) == [("alpha", 1)]


def test_primary_key_change_updates_the_row_and_the_identity(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    db_insert(engine, Cell, [{"sheet": "s1", "position": 1, "content": "a"}])
    cell = session.get_one(Cell, ("s1", 1))

    cell.position = 10
    session.flush()

    (update,) = sql_for(capture, "UPDATE", Cell)
    assert set_clause_columns(update) == ["position"]
    assert instance_state(cell).key == IdentityKey(Cell, ("s1", 10))
    assert IdentityKey(Cell, ("s1", 1)) not in session.identity_map
    assert session.get(Cell, ("s1", 10)) is cell
    session.commit()
    assert db_rows(engine, select(Cell.sheet, Cell.position, Cell.content)) == [("s1", 10, "a")]


def test_a_key_freed_by_one_row_is_taken_by_a_row_changed_before_it(
    session: Session[Engine],
) -> None:
    # UPDATEs go in primary-key order, as in SQLAlchemy: ("a", 1) moves to ("b", 1)
    # before ("a", 2) takes ("a", 1), though ("a", 2) was changed first
    session.add_all(
        [Cell(sheet="a", position=1, content="x"), Cell(sheet="a", position=2, content="y")]
    )
    session.commit()
    first, second = session.scalars(select(Cell).order_by(Cell.position)).all()
    second.position = 1
    first.sheet = "b"
    session.commit()
    rows = session.execute(select(Cell.sheet, Cell.position, Cell.content).order_by(Cell.sheet))
    assert [tuple(r) for r in rows] == [("a", 1, "y"), ("b", 1, "x")]
