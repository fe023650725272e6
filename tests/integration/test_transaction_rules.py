"""When a transaction begins and ends, as in SQLAlchemy 2.x (issue 12: 1, 7, 8, 10, 11, 21).

Changes begin the transaction (so ``rollback()`` undoes them), a closed transaction says
so, a ``with session.begin():`` block refuses work after its transaction was ended inside
it, ``no_autoflush`` switches ``autoflush`` off, reads autoflush first, and a rollback
after a failed flush restores the transaction's records again.
"""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import (
    IntegrityError,
    InvalidRequestError,
    PendingRollbackError,
    ResourceClosedError,
    SAWarning,
)

from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_count, db_insert, db_rows, lifecycle, recreate_tables
from typed_session import (
    Mapped,
    ObjectState,
    Registry,
    column,
    entity,
    instance_state,
    make_transient_to_detached,
)

reg = Registry()


@entity(reg, table="txr_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def names(engine: Engine) -> list[str]:
    return [n for (n,) in db_rows(engine, select(User.name).order_by(User.id))]


# -- item 1: a change begins the transaction --------------------------------------------


def test_add_begins_the_transaction_and_rollback_undoes_it(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions()
    user = User(name="q")
    session.add(user)
    assert session.get_transaction() is not None

    session.rollback()
    session.commit()

    assert db_count(engine, User) == 0
    assert lifecycle(user) is ObjectState.TRANSIENT


def test_a_change_begins_the_transaction_and_rollback_restores_the_value(
    engine: Engine, sessions: SessionFactory
) -> None:
    db_insert(engine, User, [{"name": "x"}])
    session = sessions(expire_on_commit=False)
    user = session.scalars(select(User)).one()
    session.commit()
    assert session.get_transaction() is None

    user.name = "y"
    assert session.get_transaction() is not None
    session.rollback()

    assert user.name == "x"
    session.commit()
    assert names(engine) == ["x"]


def test_delete_begins_the_transaction_and_rollback_undoes_it(
    engine: Engine, sessions: SessionFactory
) -> None:
    db_insert(engine, User, [{"name": "x"}])
    session = sessions(expire_on_commit=False)
    user = session.scalars(select(User)).one()
    session.commit()

    session.delete(user)
    assert session.get_transaction() is not None
    session.rollback()
    session.commit()

    assert names(engine) == ["x"]
    assert lifecycle(user) is ObjectState.PERSISTENT


# -- item 7: a closed transaction says so ------------------------------------------------


@pytest.mark.parametrize("end", ["commit", "rollback"])
@pytest.mark.parametrize("then", ["commit", "rollback"])
def test_a_closed_transaction_refuses_commit_and_rollback(
    sessions: SessionFactory, end: str, then: str
) -> None:
    session = sessions()
    tx = session.begin()
    getattr(tx, end)()
    with pytest.raises(ResourceClosedError, match=r"^This transaction is closed"):
        getattr(tx, then)()


# -- item 8: a `with session.begin():` block whose transaction was ended inside it -------


@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_work_after_ending_the_block_transaction_inside_it_is_refused(
    engine: Engine, sessions: SessionFactory, end: str
) -> None:
    session = sessions()
    with session.begin():
        session.add(User(name="a"))
        getattr(session, end)()
        with pytest.raises(InvalidRequestError, match=r"^Can't operate on closed transaction"):
            session.add(User(name="b"))
        with pytest.raises(InvalidRequestError, match=r"^Can't operate on closed transaction"):
            session.execute(select(User))
    # once the block has ended, the session works again
    session.add(User(name="c"))
    session.commit()
    assert names(engine) == (["a", "c"] if end == "commit" else ["c"])


def test_a_failed_commit_at_the_end_of_a_block_raises_its_own_error(
    engine: Engine, sessions: SessionFactory
) -> None:
    db_insert(engine, User, [{"name": "taken"}])
    taken = db_rows(engine, select(User.id))[0][0]
    session = sessions()
    clash = User(name="clash")
    clash.id = taken

    def add_in_a_block() -> None:
        with session.begin():
            session.add(clash)

    with pytest.raises(IntegrityError):
        add_in_a_block()
    assert session.get_transaction() is None
    assert names(engine) == ["taken"]


def test_begin_twice_uses_sqlalchemys_words(sessions: SessionFactory) -> None:
    session = sessions()
    session.begin()
    with pytest.raises(InvalidRequestError, match=r"^A transaction is already begun"):
        session.begin()


# -- item 10: no_autoflush switches autoflush off ----------------------------------------


def test_no_autoflush_switches_autoflush_off_and_back(sessions: SessionFactory) -> None:
    session = sessions()
    seen: list[bool] = []
    with session.no_autoflush as same:
        assert same is session
        seen.append(session.autoflush)
        with session.no_autoflush:
            seen.append(session.autoflush)
        seen.append(session.autoflush)
    seen.append(session.autoflush)
    assert seen == [False, False, False, True]
    quiet = sessions(autoflush=False)
    with quiet.no_autoflush:
        pass
    assert quiet.autoflush is False


# -- item 11: reads autoflush first, and say so when the autoflush fails -------------------


def test_refresh_autoflushes_other_pending_objects(sessions: SessionFactory) -> None:
    session = sessions()
    user = User(name="a")
    session.add(user)
    session.commit()
    newcomer = User(name="b")
    session.add(newcomer)

    session.refresh(user)

    assert lifecycle(newcomer) is ObjectState.PERSISTENT


def test_loading_an_expired_attribute_autoflushes_first(sessions: SessionFactory) -> None:
    session = sessions()
    user = User(name="a")
    session.add(user)
    session.commit()  # user is expired
    newcomer = User(name="b")
    session.add(newcomer)

    assert user.name == "a"

    assert lifecycle(newcomer) is ObjectState.PERSISTENT


def test_a_failed_autoflush_says_where_it_came_from(
    engine: Engine, sessions: SessionFactory
) -> None:
    db_insert(engine, User, [{"name": "taken"}])
    taken = db_rows(engine, select(User.id))[0][0]
    session = sessions()
    clash = User(name="clash")
    clash.id = taken
    session.add(clash)

    with pytest.raises(IntegrityError, match="Query-invoked autoflush") as raised:
        session.scalars(select(User)).all()
    assert "no_autoflush" in str(raised.value)
    with pytest.raises(PendingRollbackError, match=r"^This Session's transaction has been rolled"):
        session.scalars(select(User)).all()


# -- item 21: rollback after a failed flush restores the records again ---------------------


def test_rollback_after_a_failed_flush_restores_objects_reattached_since(
    engine: Engine, sessions: SessionFactory
) -> None:
    db_insert(engine, User, [{"name": "taken"}])
    taken = db_rows(engine, select(User.id))[0][0]
    session = sessions()
    inserted = User(name="inserted")
    session.add(inserted)
    session.flush()
    clash = User(name="clash")
    clash.id = taken
    session.add(clash)
    with pytest.raises(IntegrityError):
        session.flush()
    assert lifecycle(inserted) is ObjectState.TRANSIENT  # its row never existed
    make_transient_to_detached(inserted)  # by hand, with the key it was given
    session.add(inserted)
    inserted.name = "changed"

    with pytest.warns(SAWarning, match="failed flush"):
        session.rollback()

    assert lifecycle(inserted) is ObjectState.TRANSIENT
    assert instance_state(inserted).key is None
    assert names(engine) == ["taken"]
