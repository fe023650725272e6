"""Tables are written in foreign-key order, whatever order the objects were added in.

No relationships: the child carries the parent's key in a plain column. PostgreSQL and
MariaDB enforce the foreign key, so a wrong order would fail there outright.
"""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_rows, lifecycle, recreate_tables, table_of
from typed_session import Mapped, ObjectState, Registry, Session, column, entity

reg = Registry()


# The child is mapped first, so that registration order cannot be what orders the flush.
@entity(reg, table="fk_child")
class Child:
    id: Mapped[int] = column(primary_key=True, autoincrement=False)
    parent_id: Mapped[int] = column(foreign_key="fk_parent.id")
    name: Mapped[str]


@entity(reg, table="fk_parent")
class Parent:
    id: Mapped[int] = column(primary_key=True, autoincrement=False)
    name: Mapped[str]


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def statement_tables(capture: SQLCapture, verb: str) -> list[str]:
    """The fk_ table each captured ``verb`` statement touches, in the order sent."""
    names = [table_of(Child).name, table_of(Parent).name]
    return [
        next(name for name in names if name in s.sql)
        for s in capture.matching(verb)
        if any(name in s.sql for name in names)
    ]


def committed_family(sessions: SessionFactory) -> None:
    with sessions() as s:
        s.add_all([Parent(id=1, name="mum"), Child(id=10, parent_id=1, name="kid")])
        s.commit()


def test_parent_is_inserted_before_child_added_first(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    child = Child(id=10, parent_id=1, name="kid")
    parent = Parent(id=1, name="mum")
    session.add(child)
    session.add(parent)

    session.flush()

    assert statement_tables(capture, "INSERT") == ["fk_parent", "fk_child"]
    assert lifecycle(child) is ObjectState.PERSISTENT
    assert lifecycle(parent) is ObjectState.PERSISTENT
    session.commit()
    assert db_rows(engine, select(Parent.id, Parent.name)) == [(1, "mum")]
    assert db_rows(engine, select(Child.id, Child.parent_id, Child.name)) == [(10, 1, "kid")]


def test_many_children_and_parents_are_inserted_table_by_table(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    for i in range(1, 4):
        session.add(Child(id=10 * i, parent_id=i, name=f"kid{i}"))
        session.add(Parent(id=i, name=f"parent{i}"))

    session.commit()

    assert statement_tables(capture, "INSERT") == ["fk_parent", "fk_child"]
    assert sorted(db_rows(engine, select(Child.id, Child.parent_id))) == [
        (10, 1),
        (20, 2),
        (30, 3),
    ]


def test_child_is_deleted_before_parent_marked_first(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    committed_family(sessions)
    session = sessions()
    parent = session.get_one(Parent, 1)
    child = session.get_one(Child, 10)
    capture.clear()

    session.delete(parent)
    session.delete(child)
    session.flush()

    assert statement_tables(capture, "DELETE") == ["fk_child", "fk_parent"]
    assert lifecycle(parent) is ObjectState.DELETED
    assert lifecycle(child) is ObjectState.DELETED
    session.commit()
    assert db_rows(engine, select(Parent.id)) == []
    assert db_rows(engine, select(Child.id)) == []


def test_new_parent_is_inserted_before_child_is_moved_to_it(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    committed_family(sessions)
    session = sessions()
    child = session.get_one(Child, 10)
    capture.clear()

    child.parent_id = 2
    session.add(Parent(id=2, name="dad"))
    session.commit()

    sent = [s.sql.split()[0].upper() for s in capture.statements if "fk_" in s.sql]
    assert sent[:2] == ["INSERT", "UPDATE"]
    assert db_rows(engine, select(Child.id, Child.parent_id)) == [(10, 2)]
