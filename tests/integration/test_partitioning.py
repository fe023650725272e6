"""One session over several databases: vertical partitioning (issue 16, item 3).

Users live in one database and orders in another: SQLite files, two PostgreSQL
databases, or PostgreSQL and MariaDB. The session keeps one connection and transaction
per bind, each table's rows go to its own bind, and commit ends them together — in two
phases with ``twophase=True``, where a failure on one bind leaves none committed.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, String, create_engine, select
from sqlalchemy.engine import TwoPhaseTransaction

from tests.conftest import reachable_server_url
from tests.integration.helpers import db_rows, lifecycle, postgresql_database
from typed_session import Mapped, ObjectState, Registry, Session, column, entity

users_reg = Registry()
orders_reg = Registry()


@entity(users_reg, table="vp_users")
class User:
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str] = column(String(50))


@entity(orders_reg, table="vp_orders")
class Order:
    id: Mapped[int] = column(primary_key=True)
    user_id: Mapped[int]  # no foreign key: the users are in another database
    item: Mapped[str] = column(String(50))


SECOND_PG_DATABASE = "typed_session_second"


PAIRS = ["sqlite+sqlite", "postgresql+postgresql", "postgresql+mariadb"]


@pytest.fixture(params=PAIRS)
def engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """The users' engine and the orders' engine, with fresh tables on each."""
    match request.param:
        case "sqlite+sqlite":
            urls = (f"sqlite:///{tmp_path / 'users.db'}", f"sqlite:///{tmp_path / 'orders.db'}")
        case "postgresql+postgresql":
            first = reachable_server_url("postgresql")
            urls = (first, postgresql_database(first, SECOND_PG_DATABASE))
        case _:
            urls = (reachable_server_url("postgresql"), reachable_server_url("mariadb"))
    users_engine, orders_engine = create_engine(urls[0]), create_engine(urls[1])
    for reg, eng in ((users_reg, users_engine), (orders_reg, orders_engine)):
        reg.drop_all(eng)
        reg.create_all(eng)
    try:
        yield users_engine, orders_engine
    finally:
        users_reg.drop_all(users_engine)
        orders_reg.drop_all(orders_engine)
        users_engine.dispose()
        orders_engine.dispose()


def test_each_table_goes_to_its_own_database(engines: tuple[Engine, Engine]) -> None:
    users_engine, orders_engine = engines
    with Session(binds={User: users_engine, Order: orders_engine}) as session:
        session.add_all([User(id=1, name="ann"), Order(id=1, user_id=1, item="tea")])
        session.commit()
        assert session.get_bind(User) is users_engine
        assert session.get_bind(clause=select(Order)) is orders_engine
        assert session.scalars(select(Order.item)).all() == ["tea"]  # read from its bind
    assert db_rows(users_engine, select(User.name)) == [("ann",)]
    assert db_rows(orders_engine, select(Order.item)) == [("tea",)]


def test_one_transaction_per_bind_ended_together(engines: tuple[Engine, Engine]) -> None:
    users_engine, orders_engine = engines
    with Session(binds={User: users_engine, Order: orders_engine}) as session:
        user = User(id=1, name="ann")
        session.add_all([user, Order(id=1, user_id=1, item="tea")])
        session.flush()
        root = session.get_transaction()
        assert root is not None
        assert len(root.connections) == 2
        session.rollback()
        assert lifecycle(user) is ObjectState.TRANSIENT
    assert db_rows(users_engine, select(User.name)) == []
    assert db_rows(orders_engine, select(Order.item)) == []


def test_two_phase_commit_across_databases(engines: tuple[Engine, Engine]) -> None:
    users_engine, orders_engine = engines
    if users_engine.dialect.name == "sqlite":
        return  # SQLite has no PREPARE: test_twophase.py checks its clear refusal
    with Session(binds={User: users_engine, Order: orders_engine}, twophase=True) as session:
        session.add_all([User(id=1, name="ann"), Order(id=1, user_id=1, item="tea")])
        session.prepare()
        root = session.get_transaction()
        assert root is not None
        assert [type(b.transaction) for b in root.connections] == [TwoPhaseTransaction] * 2
        session.commit()
    assert db_rows(users_engine, select(User.name)) == [("ann",)]
    assert db_rows(orders_engine, select(Order.item)) == [("tea",)]


def test_a_failing_prepare_on_one_bind_commits_none(
    engines: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    users_engine, orders_engine = engines
    if users_engine.dialect.name == "sqlite":
        return  # SQLite has no PREPARE
    prepared: list[object] = []
    original = TwoPhaseTransaction.prepare

    def second_fails(self: TwoPhaseTransaction) -> None:
        if prepared:
            raise RuntimeError("the second database refused PREPARE")
        original(self)
        prepared.append(self)

    monkeypatch.setattr(TwoPhaseTransaction, "prepare", second_fails)
    with Session(binds={User: users_engine, Order: orders_engine}, twophase=True) as session:
        session.add_all([User(id=1, name="ann"), Order(id=1, user_id=1, item="tea")])
        with pytest.raises(RuntimeError, match="refused PREPARE"):
            session.commit()
    monkeypatch.undo()
    assert len(prepared) == 1  # the first participant was prepared, then rolled back
    assert db_rows(users_engine, select(User.name)) == []
    assert db_rows(orders_engine, select(Order.item)) == []
