"""One object per row per session, and autoflush before the session reads."""

import gc
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select, update

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_count, db_insert, recreate_tables, sql_for, table_of
from typed_session import Mapped, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="im_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]


@entity(reg, table="im_tags")
class Tag:
    label: Mapped[str] = column(primary_key=True)
    uses: Mapped[int] = column(default=0)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


@pytest.fixture
def user_ids(engine: Engine) -> list[int]:
    """Three committed users, ann, bob and cid; their ids in that order."""
    db_insert(engine, User, [{"name": n} for n in ("ann", "bob", "cid")])
    with engine.connect() as conn:
        return list(conn.execute(select(User.id).order_by(User.name)).scalars())


def test_get_twice_returns_the_same_object_and_selects_once(
    user_ids: list[int], session: Session[Engine], capture: SQLCapture
) -> None:
    first = session.get(User, user_ids[0])
    second = session.get(User, user_ids[0])

    assert first is not None
    assert second is first
    assert first.name == "ann"
    assert len(sql_for(capture, "SELECT", User)) == 1


def test_get_of_missing_row_returns_none(session: Session[Engine], user_ids: list[int]) -> None:
    assert session.get(User, max(user_ids) + 100) is None


def test_query_returns_the_objects_already_in_the_identity_map(
    session: Session[Engine], user_ids: list[int]
) -> None:
    by_get = [session.get_one(User, i) for i in user_ids]

    by_query = session.scalars(select(User).order_by(User.name)).all()

    assert len(by_query) == 3
    for got, queried in zip(by_get, by_query, strict=True):
        assert queried is got


def test_get_after_query_needs_no_sql(
    user_ids: list[int], session: Session[Engine], capture: SQLCapture
) -> None:
    users = session.scalars(select(User)).all()
    capture.clear()

    for user in users:
        assert session.get(User, user.id) is user
    assert capture.statements == []


def test_execute_returns_rows_of_columns_and_entities(
    session: Session[Engine], user_ids: list[int]
) -> None:
    ann = session.get_one(User, user_ids[0])

    rows = session.execute(select(User.id, User).order_by(User.name)).all()

    assert [row[0] for row in rows] == user_ids
    assert rows[0][1] is ann
    assert [row[1].name for row in rows] == ["ann", "bob", "cid"]
    assert all(isinstance(row[1], User) for row in rows)


def test_query_does_not_overwrite_an_unflushed_change(
    user_ids: list[int], session: Session[Engine], capture: SQLCapture
) -> None:
    ann = session.get_one(User, user_ids[0])
    ann.name = "anne"

    with session.no_autoflush:
        queried = session.scalars(select(User).where(User.id == user_ids[0])).one()

    assert queried is ann
    assert ann.name == "anne"  # the row still says "ann"
    assert sql_for(capture, "UPDATE", User) == []
    assert session.dirty == [ann]


def test_query_does_not_overwrite_loaded_values_with_newer_rows(
    engine: Engine, session: Session[Engine], user_ids: list[int]
) -> None:
    ann = session.get_one(User, user_ids[0])
    with engine.begin() as conn:  # another transaction renames ann and commits
        conn.execute(update(table_of(User)).values(name="ANN").where(User.id == user_ids[0]))

    queried = session.scalars(select(User).where(User.id == user_ids[0])).one()

    assert queried is ann
    assert ann.name == "ann"


def test_query_autoflushes_a_change_it_filters_on(
    user_ids: list[int], session: Session[Engine], capture: SQLCapture
) -> None:
    ann = session.get_one(User, user_ids[0])
    ann.name = "anne"

    found = session.scalars(select(User).where(User.name == "anne")).all()

    assert found == [ann]
    assert len(sql_for(capture, "UPDATE", User)) == 1
    assert session.dirty == []


def test_scalars_autoflushes_pending_objects(session: Session[Engine], capture: SQLCapture) -> None:
    ann = User(name="ann")
    session.add(ann)

    found = session.scalars(select(User).where(User.name == "ann")).all()

    assert found == [ann]
    assert session.new == []
    sent = [s.sql.split()[0].upper() for s in capture.statements if "im_users" in s.sql]
    assert sent == ["INSERT", "SELECT"]


def test_execute_autoflushes_pending_objects(session: Session[Engine]) -> None:
    ann = User(name="ann")
    session.add(ann)

    rows = session.execute(select(User.name, User)).all()

    assert len(rows) == 1
    assert rows[0][0] == "ann"
    assert rows[0][1] is ann


def test_get_autoflushes_pending_objects(session: Session[Engine], capture: SQLCapture) -> None:
    tag = Tag(label="red")
    session.add(tag)

    assert session.get(Tag, "red") is tag
    assert len(sql_for(capture, "INSERT", Tag)) == 1


def test_no_autoflush_block_keeps_pending_objects_unflushed(
    session: Session[Engine], capture: SQLCapture
) -> None:
    tag = Tag(label="red")
    session.add(tag)

    with session.no_autoflush:
        assert session.get(Tag, "red") is None
        assert session.scalars(select(Tag)).all() == []
        assert session.new == [tag]

    assert sql_for(capture, "INSERT", Tag) == []
    assert session.scalars(select(Tag)).all() == [tag]  # autoflush is back after the block


def test_session_with_autoflush_off_flushes_only_when_asked(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions(autoflush=False)
    tag = Tag(label="red")
    session.add(tag)

    assert session.scalars(select(Tag)).all() == []
    assert session.get(Tag, "red") is None
    assert sql_for(capture, "INSERT", Tag) == []

    session.flush()
    assert session.get(Tag, "red") is tag
    session.commit()
    assert db_count(engine, Tag) == 1


def test_identity_map_does_not_keep_unreferenced_unchanged_objects(
    user_ids: list[int], session: Session[Engine]
) -> None:
    kept = session.get_one(User, user_ids[0])
    session.scalars(select(User)).all()  # loads the other two, then drops them
    gc.collect()

    assert len(session.identity_map) == 1
    assert list(session.identity_map.values()) == [kept]
