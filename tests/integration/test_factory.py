"""``with factory.begin() as session:`` on every backend: commit, rollback, close (issue 14: 7)."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from tests.integration.helpers import db_insert, db_rows, lifecycle, recreate_tables
from typed_session import (
    Mapped,
    ObjectState,
    Registry,
    Session,
    TransactionState,
    column,
    entity,
    sessionmaker,
)

reg = Registry()


@entity(reg, table="fac_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str] = column(unique=True)


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def names(engine: Engine) -> list[str]:
    return [n for (n,) in db_rows(engine, select(User.name).order_by(User.id))]


def test_begin_commits_at_the_end_of_the_block_and_closes(engine: Engine) -> None:
    factory = sessionmaker(engine)
    user = User(name="ada")
    with factory.begin() as session:
        session.add(user)
        transaction = session.get_transaction()
        assert transaction is not None
        assert names(engine) == []  # not committed inside the block
    assert names(engine) == ["ada"]
    assert transaction.state is TransactionState.CLOSED
    assert session.get_transaction() is None
    assert lifecycle(user) is ObjectState.DETACHED  # closed: nothing left in the session
    assert list(session) == []


def test_begin_rolls_back_when_the_block_raises_and_closes(engine: Engine) -> None:
    db_insert(engine, User, [{"name": "kept"}])
    user = User(name="lost")
    seen: list[Session[Engine]] = []

    def block() -> None:
        with sessionmaker(engine).begin() as session:
            seen.append(session)
            session.add(user)
            session.flush()  # the row is written in the transaction, then rolled back
            raise LookupError("in the block")

    with pytest.raises(LookupError, match="in the block"):
        block()
    assert names(engine) == ["kept"]
    assert lifecycle(user) is ObjectState.TRANSIENT
    assert seen[0].get_transaction() is None


def test_begin_with_a_failing_commit_rolls_back_and_closes(engine: Engine) -> None:
    db_insert(engine, User, [{"name": "taken"}])
    user = User(name="taken")
    seen: list[Session[Engine]] = []

    def block() -> None:
        with sessionmaker(engine).begin() as session:
            seen.append(session)
            session.add(User(name="fine"))
            session.add(user)  # a unique violation when the commit flushes

    with pytest.raises(IntegrityError):
        block()
    assert names(engine) == ["taken"]
    assert lifecycle(user) is ObjectState.TRANSIENT
    assert seen[0].get_transaction() is None


def test_begin_uses_the_factorys_options(engine: Engine) -> None:
    factory = sessionmaker(engine, expire_on_commit=False, info={"app": "t"})
    with factory.begin() as session:
        user = User(name="ada")
        session.add(user)
        assert session.info == {"app": "t"}
    # not expired by the commit: readable after the session closed
    assert user.name == "ada"
    assert lifecycle(user) is ObjectState.DETACHED


def test_sessions_of_one_factory_are_independent(engine: Engine) -> None:
    factory = sessionmaker(engine)
    with factory.begin() as first:
        first.add(User(name="a"))
    with factory() as second, factory() as third:
        one = second.scalars(select(User)).one()
        other = third.scalars(select(User)).one()
        assert one is not other  # one identity map per session
        assert one.name == other.name == "a"


def test_a_session_subclass_made_by_the_factory_commits(engine: Engine) -> None:
    class Audited(Session[Engine]):
        def add_named(self, name: str) -> User:
            user = User(name=name)
            self.add(user)
            return user

    with sessionmaker(engine, class_=Audited).begin() as session:
        assert type(session) is Audited
        session.add_named("sub")
    assert names(engine) == ["sub"]


def test_a_call_on_a_connection_joins_its_transaction(engine: Engine) -> None:
    factory = sessionmaker(engine)
    with engine.connect() as conn:
        outer = conn.begin()
        with factory(bind=conn) as session:
            session.add(User(name="inner"))
            session.commit()  # joins the connection's transaction: not committed yet
        assert names(engine) == []
        outer.rollback()
    assert names(engine) == []
