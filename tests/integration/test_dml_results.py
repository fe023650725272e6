"""What ``execute()`` gives for INSERT, UPDATE and DELETE statements, on every backend."""

from collections.abc import Iterator

import pytest
from sqlalchemy import CursorResult, Engine, delete, insert, select, union_all, update
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.sql import Executable

from tests.conftest import SQLCapture
from tests.integration.helpers import db_insert, db_rows, lifecycle, recreate_tables, table_of
from typed_session import Mapped, ObjectState, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="dml_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    score: Mapped[int] = column(default=0)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


@pytest.fixture
def three_users(engine: Engine) -> None:
    db_insert(engine, User, [{"name": n} for n in ("ann", "bob", "cid")])


@pytest.mark.usefixtures("three_users")
def test_dml_without_returning_gives_a_cursor_result_with_its_rowcount(
    session: Session[Engine],
) -> None:
    updated = session.execute(update(User).where(User.name != "ann").values(score=5))
    deleted = session.execute(delete(User).where(User.name == "cid"))

    assert isinstance(updated, CursorResult)
    assert updated.rowcount == 2
    assert isinstance(deleted, CursorResult)
    assert deleted.rowcount == 1


# -- entities in RETURNING ---------------------------------------------------------------


def _loaded(session: Session[Engine], name: str) -> User:
    return session.scalars(select(User).where(User.name == name)).one()


def _needs(engine: Engine, feature: str) -> None:
    assert getattr(engine.dialect, feature), f"{engine.dialect.name} lacks {feature}"


def _refused(engine: Engine, session: Session[Engine], statement: Executable) -> bool:
    """On a backend without UPDATE ... RETURNING (MariaDB), check it is refused before SQL."""
    if engine.dialect.update_returning:
        return False
    with pytest.raises(InvalidRequestError, match=r"has no UPDATE \.\.\. RETURNING"):
        session.execute(statement)
    assert session.is_active
    return True


def test_insert_returning_entity_gives_persistent_objects_in_the_identity_map(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    _needs(engine, "insert_executemany_returning")
    users = session.scalars(
        insert(User).returning(User), [{"name": "ann", "score": 1}, {"name": "bob", "score": 0}]
    ).all()

    assert [type(u) for u in users] == [User, User]
    assert sorted((u.name, u.score) for u in users) == [("ann", 1), ("bob", 0)]
    assert all(lifecycle(u) is ObjectState.PERSISTENT for u in users)
    capture.clear()
    assert session.get(User, users[0].id) is users[0]
    assert capture.statements == []  # found in the identity map


@pytest.mark.usefixtures("three_users")
def test_update_returning_entity_gives_the_loaded_objects_with_the_new_values(
    engine: Engine, session: Session[Engine]
) -> None:
    bob = _loaded(session, "bob")
    statement = update(User).where(User.name != "ann").values(score=7).returning(User)
    if _refused(engine, session, statement):
        return

    updated = session.scalars(statement).all()

    assert bob in updated
    assert len(updated) == 2
    assert all(type(u) is User and u.score == 7 for u in updated)
    assert bob.score == 7
    assert bob not in session.dirty


@pytest.mark.usefixtures("three_users")
def test_update_returning_keeps_a_change_not_yet_flushed(
    engine: Engine, session: Session[Engine]
) -> None:
    bob = _loaded(session, "bob")
    statement = update(User).where(User.id == bob.id).values(score=3).returning(User)
    if _refused(engine, session, statement):
        return
    with session.no_autoflush:
        bob.name = "robert"
        (same,) = session.scalars(statement).all()

    assert same is bob
    assert (bob.name, bob.score) == ("robert", 3)
    assert bob in session.dirty


@pytest.mark.usefixtures("three_users")
def test_update_returning_entity_and_column_in_one_row(
    engine: Engine, session: Session[Engine]
) -> None:
    statement = update(User).where(User.name == "cid").values(score=2).returning(User.name, User)
    if _refused(engine, session, statement):
        return
    rows = session.execute(statement).all()

    assert len(rows) == 1
    name, user = rows[0]
    assert name == "cid"
    assert type(user) is User
    assert (user.name, user.score) == ("cid", 2)


@pytest.mark.usefixtures("three_users")
def test_delete_returning_entity_gives_the_loaded_object(
    engine: Engine, session: Session[Engine]
) -> None:
    _needs(engine, "delete_returning")
    cid = _loaded(session, "cid")

    deleted = session.scalars(delete(User).where(User.name == "cid").returning(User)).all()

    assert deleted == [cid]
    session.commit()
    assert db_rows(engine, select(User.name).order_by(User.name)) == [("ann",), ("bob",)]


# -- entities in set operations ------------------------------------------------------------


@pytest.mark.usefixtures("three_users")
def test_union_all_of_entity_selects_gives_objects_through_the_identity_map(
    session: Session[Engine],
) -> None:
    ann = _loaded(session, "ann")

    users = session.scalars(
        union_all(select(User).where(User.name == "ann"), select(User).where(User.name == "cid"))
    ).all()

    assert [type(u) for u in users] == [User, User]
    assert sorted(u.name for u in users) == ["ann", "cid"]
    assert ann in users


@pytest.mark.usefixtures("three_users")
def test_union_of_an_entity_and_its_plain_table_is_refused(
    session: Session[Engine], capture: SQLCapture
) -> None:
    statement = union_all(select(User), select(table_of(User)))

    with (
        capture,
        pytest.raises(InvalidRequestError, match=r"do not select the same entities") as info,
    ):
        session.execute(statement)

    assert "select(User.id, User.name)" in str(info.value)
    assert capture.matching("SELECT") == []  # refused before any SQL


@pytest.mark.usefixtures("three_users")
def test_union_of_plain_columns_is_plain_core(session: Session[Engine]) -> None:
    names = session.scalars(
        union_all(select(User.name).where(User.score == 0), select(User.name).where(User.id < 0))
    ).all()

    assert sorted(names) == ["ann", "bob", "cid"]
