"""What ``execute()`` gives for INSERT, UPDATE and DELETE statements, on every backend."""

from collections.abc import Iterator

import pytest
from sqlalchemy import CursorResult, Engine, delete, update

from tests.integration.helpers import db_insert, recreate_tables
from typed_session import Mapped, Registry, Session, column, entity

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
