"""Two-phase commit: ``twophase=True``, ``prepare()``, and recovering what a crash leaves.

PostgreSQL (``PREPARE TRANSACTION``, with ``max_prepared_transactions > 0``) and MariaDB
(XA) take part; SQLite cannot, and says so the first time the session needs it.
"""

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, String, select
from sqlalchemy.engine import TwoPhaseTransaction
from sqlalchemy.exc import InvalidRequestError

from tests.integration.helpers import db_rows, lifecycle, recreate_tables
from typed_session import Mapped, ObjectState, Registry, Session, column, entity

reg = Registry()


@entity(reg, table="tp_users")
class User:
    name: Mapped[str] = column(String(50), primary_key=True)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def names(engine: Engine) -> list[str]:
    return [n for (n,) in db_rows(engine, select(User.name).order_by(User.name))]


def refused_on_sqlite(engine: Engine, session: Session[Engine]) -> bool:
    """On SQLite, check the clear refusal; elsewhere, say that two-phase can go on."""
    if engine.dialect.name != "sqlite":
        return False
    with pytest.raises(InvalidRequestError, match="two-phase commit is not available on sqlite"):
        session.connection()
    return True


def test_commit_in_two_phases(engine: Engine) -> None:
    with Session(engine, twophase=True) as session:
        if refused_on_sqlite(engine, session):
            return
        session.add(User(name="a"))
        session.commit()
    assert names(engine) == ["a"]


@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_prepare_then_end(engine: Engine, end: str) -> None:
    with Session(engine, twophase=True) as session:
        if refused_on_sqlite(engine, session):
            return
        user = User(name="a")
        session.add(user)
        session.prepare()
        root = session.get_transaction()
        assert root is not None
        assert all(isinstance(b.transaction, TwoPhaseTransaction) for b in root.connections)
        getattr(session, end)()
    assert names(engine) == (["a"] if end == "commit" else [])
    assert lifecycle(user) is (ObjectState.DETACHED if end == "commit" else ObjectState.TRANSIENT)


def test_a_failing_prepare_rolls_everything_back(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(engine, twophase=True) as session:
        if refused_on_sqlite(engine, session):
            return
        user = User(name="a")
        session.add(user)

        def refuse(_self: TwoPhaseTransaction) -> None:
            raise RuntimeError("PREPARE refused")

        monkeypatch.setattr(TwoPhaseTransaction, "prepare", refuse)
        with pytest.raises(RuntimeError, match="PREPARE refused"):
            session.commit()
        assert lifecycle(user) is ObjectState.TRANSIENT
        assert not session.in_transaction()
    assert names(engine) == []


@pytest.mark.parametrize("resolve", ["commit", "rollback"])
def test_a_transaction_left_prepared_by_a_crash_can_be_found_and_resolved(
    engine: Engine, resolve: str
) -> None:
    session = Session(engine, twophase=True)
    if refused_on_sqlite(engine, session):
        return
    session.add(User(name="in doubt"))
    session.prepare()
    root = session.get_transaction()
    assert root is not None
    (binding,) = root.connections
    assert isinstance(binding.transaction, TwoPhaseTransaction)
    xid = binding.transaction.xid
    binding.connection.invalidate()  # the process dies between PREPARE and COMMIT
    session.close()

    # the recipe of docs/transactions.md: list the transactions in doubt, resolve each
    try:
        assert xid in in_doubt(engine)
        with recovery_connection(engine) as conn:
            if resolve == "commit":
                conn.commit_prepared(xid, recover=True)
            else:
                conn.rollback_prepared(xid, recover=True)
        assert xid not in in_doubt(engine)
        assert names(engine) == (["in doubt"] if resolve == "commit" else [])
    finally:
        if xid in in_doubt(engine):  # never leave a lock behind for the next test
            with recovery_connection(engine) as conn:
                conn.rollback_prepared(xid, recover=True)


def recovery_connection(engine: Engine) -> Connection:
    """A connection outside any local transaction, as XA COMMIT/ROLLBACK need on MariaDB."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def in_doubt(engine: Engine) -> list[str]:
    """The transactions prepared and never committed or rolled back (MariaDB: bytes)."""
    with recovery_connection(engine) as conn:
        return [x.decode() if isinstance(x, bytes) else str(x) for x in conn.recover_twophase()]
