"""Optimistic concurrency: ``@entity(..., version_column="version")``.

The version is set on INSERT, incremented by every UPDATE and checked in the WHERE of
UPDATE and DELETE; a row another writer changed first raises ``StaleDataError`` and
nothing of the flush is written.
"""

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import DDL, Engine, String, event, select
from sqlalchemy.exc import ArgumentError, PendingRollbackError

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_count, db_rows, recreate_tables, sql_for
from typed_session import Mapped, Registry, Session, StaleDataError, column, entity

reg = Registry()


@entity(reg, table="ver_accounts", version_column="version")
class Account:
    id: Mapped[int] = column(primary_key=True, init=False)
    owner: Mapped[str] = column(String(50))
    balance: Mapped[int] = column(default=0)
    version: Mapped[int] = column(init=False)


def by_tens(version: int | None) -> int:
    return (version or 0) + 10


@entity(reg, table="ver_documents", version_column="revision", version_generator=by_tens)
class Document:
    id: Mapped[int] = column(primary_key=True, init=False)
    body: Mapped[str] = column(String(50))
    revision: Mapped[int] = column(init=False)


@entity(reg, table="ver_notes")
class Note:
    id: Mapped[int] = column(primary_key=True, init=False)
    text: Mapped[str] = column(String(50))


server_reg = Registry()


@entity(server_reg, table="ver_tickets", version_column="version", version_generator=False)
class Ticket:
    id: Mapped[int] = column(primary_key=True, init=False)
    title: Mapped[str] = column(String(50))
    version: Mapped[int] = column(init=False, server_default="1")


#: a trigger per backend that increments the version on every UPDATE
TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER ver_tickets_bump AFTER UPDATE OF title ON ver_tickets BEGIN "
        "UPDATE ver_tickets SET version = OLD.version + 1 WHERE id = NEW.id; END"
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION ver_tickets_bump() RETURNS trigger AS $$ BEGIN "
        "NEW.version := OLD.version + 1; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER ver_tickets_bump BEFORE UPDATE ON ver_tickets "
        "FOR EACH ROW EXECUTE FUNCTION ver_tickets_bump()",
    ],
    "mariadb": [
        "CREATE TRIGGER ver_tickets_bump BEFORE UPDATE ON ver_tickets "
        "FOR EACH ROW SET NEW.version = OLD.version + 1"
    ],
}


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


@pytest.fixture
def server_tables(engine: Engine) -> Iterator[None]:
    table = server_reg.metadata.tables["ver_tickets"]
    name = "mariadb" if engine.dialect.name == "mysql" else engine.dialect.name
    triggers = [DDL(sql) for sql in TRIGGERS[name]]  # type: ignore[no-untyped-call]  # Core's
    for trigger in triggers:  # created with the table; dropped with it
        event.listen(table, "after_create", trigger)
    try:
        yield from recreate_tables(server_reg, engine)
    finally:
        for trigger in triggers:
            event.remove(table, "after_create", trigger)


def versions(engine: Engine) -> list[tuple[int, int]]:
    return [(i, v) for i, v in db_rows(engine, select(Account.id, Account.version))]


def committed_account(sessions: SessionFactory) -> int:
    session = sessions()
    account = Account(owner="ann")
    session.add(account)
    session.commit()
    return account.id


def changed_behind(
    sessions: SessionFactory, key: str, value: object
) -> tuple[Session[Engine], Account]:
    """A session and the account it loaded, whose row another session changed since."""
    ident = committed_account(sessions)
    first, second = sessions(), sessions()
    mine = first.get_one(Account, ident)
    theirs = second.get_one(Account, ident)
    setattr(theirs, key, value)
    second.commit()
    return first, mine


# -- the version column ------------------------------------------------------------------


def test_insert_sets_the_first_version_and_each_update_increments_it(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    account = Account(owner="ann")
    assert account.version == 1
    session.add(account)
    session.commit()
    assert versions(engine) == [(account.id, 1)]
    account.balance = 5
    capture.clear()
    session.commit()
    (update,) = sql_for(capture, "UPDATE", Account)
    assert "version" in update.split("WHERE")[1]  # checked ...
    assert "version" in update.split("WHERE")[0]  # ... and set
    assert versions(engine) == [(account.id, 2)]
    account.owner = "bea"  # expired by the commit: the version is loaded before the flush
    session.commit()
    assert account.version == 3
    assert versions(engine) == [(account.id, 3)]


def test_a_flush_without_net_change_leaves_the_version(
    engine: Engine, session: Session[Engine]
) -> None:
    account = Account(owner="ann")
    session.add(account)
    session.commit()
    assert account.owner == "ann"  # loaded: an expired attribute assigned is a change
    account.owner = "ann"
    session.commit()
    assert versions(engine) == [(account.id, 1)]


def test_a_user_supplied_generator(engine: Engine, session: Session[Engine]) -> None:
    doc = Document(body="a")
    session.add(doc)
    session.flush()
    doc.body = "b"
    session.flush()
    doc.body = "c"
    session.commit()
    assert db_rows(engine, select(Document.revision)) == [(30,)]


def test_a_version_the_user_assigns_is_written_and_the_old_one_checked(
    engine: Engine, session: Session[Engine]
) -> None:
    account = Account(owner="ann")
    session.add(account)
    session.commit()
    account.version = 7  # expired: the version it replaces is loaded first, to be checked
    session.commit()
    assert versions(engine) == [(account.id, 7)]


def test_a_row_switch_continues_the_deleted_objects_version(
    engine: Engine, session: Session[Engine]
) -> None:
    old = Account(owner="a")
    session.add(old)
    session.commit()
    old.balance = 1
    session.commit()
    ident = old.id
    assert old.version == 2
    session.delete(old)
    new = Account(owner="b")
    new.id = ident  # the deleted object's key: its row is UPDATEd, checked against version 2
    session.add(new)
    session.commit()
    assert db_rows(engine, select(Account.owner, Account.version)) == [("b", 3)]
    assert new.version == 3


# -- another writer won ------------------------------------------------------------------


def test_an_update_of_a_row_changed_meanwhile_raises_and_writes_nothing(
    engine: Engine, sessions: SessionFactory
) -> None:
    first, mine = changed_behind(sessions, "balance", 100)
    mine.balance = 50
    first.add(Note(text="written in the same flush"))
    with pytest.raises(StaleDataError) as info:
        first.flush()
    message = str(info.value)
    assert message.startswith("UPDATE statement on table 'ver_accounts' expected to update 1")
    assert "<Account at 0x" in message
    assert "expected version 1" in message
    assert info.value.instance is mine
    assert info.value.expected_version == 1
    assert db_count(engine, Note) == 0  # nothing of that flush was written
    with pytest.raises(PendingRollbackError, match="Original exception was: StaleDataError"):
        first.commit()
    first.rollback()
    assert (mine.balance, mine.version) == (100, 2)  # reloaded: the other writer's row
    mine.balance = 150
    first.commit()
    assert db_rows(engine, select(Account.balance, Account.version)) == [(150, 3)]


def test_a_delete_of_a_row_changed_meanwhile_raises(
    engine: Engine, sessions: SessionFactory
) -> None:
    first, mine = changed_behind(sessions, "owner", "changed")
    first.delete(mine)
    with pytest.raises(StaleDataError, match=r"^DELETE statement on table 'ver_accounts' expected"):
        first.flush()
    first.rollback()
    assert db_rows(engine, select(Account.owner)) == [("changed",)]


def test_a_delete_of_an_unchanged_row_is_checked_and_done(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    account = Account(owner="ann")
    session.add(account)
    session.commit()
    session.delete(account)
    capture.clear()
    session.commit()
    (delete,) = sql_for(capture, "DELETE", Account)
    assert "version" in delete
    assert db_count(engine, Account) == 0


def test_a_server_side_version(
    engine: Engine, server_tables: None, session: Session[Engine], sessions: SessionFactory
) -> None:
    ticket = Ticket(title="a")
    session.add(ticket)
    session.commit()
    assert ticket.version == 1
    ticket.title = "b"
    session.commit()
    assert ticket.version == 2  # set by the trigger, loaded after the UPDATE
    other = sessions()
    theirs = other.get_one(Ticket, ticket.id)
    theirs.title = "c"
    other.commit()
    ticket.title = "d"
    with pytest.raises(StaleDataError, match="expected version 2"):
        session.commit()


def test_several_threads_racing_increments_lose_no_update(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serializes writers with a file lock: no race to lose updates in")
    with Session(engine) as session:
        account = Account(owner="counter")
        session.add(account)
        session.commit()
        ident = account.id
    threads, increments = 4, 15
    succeeded = [0] * threads
    conflicts = [0] * threads
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with Session(engine) as session:
                while succeeded[n] < increments:
                    counter = session.get(Account, ident, populate_existing=True)
                    assert counter is not None
                    counter.balance += 1
                    try:
                        session.commit()
                    except StaleDataError:
                        conflicts[n] += 1
                        session.rollback()
                    else:
                        succeeded[n] += 1
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    assert sum(succeeded) == threads * increments
    # every increment that was committed is in the row: none was lost
    assert db_rows(engine, select(Account.balance, Account.version)) == [
        (threads * increments, threads * increments + 1)
    ]


# -- bulk operations keep the check ------------------------------------------------------


def test_bulk_mappings_insert_the_first_version_and_check_it_on_update(
    engine: Engine, session: Session[Engine], capture: SQLCapture
) -> None:
    session.bulk_insert_mappings(Account, [{"id": 1, "owner": "a"}, {"id": 2, "owner": "b"}])
    session.bulk_update_mappings(
        Account, [{"id": 1, "balance": 5, "version": 1}, {"id": 2, "balance": 6, "version": 1}]
    )
    (update,) = sql_for(capture, "UPDATE", Account)
    assert "version" in update.split("WHERE")[1]
    session.commit()
    assert versions(engine) == [(1, 2), (2, 2)]
    with pytest.raises(ArgumentError, match="mapping #0 lacks the version attribute 'version'"):
        session.bulk_update_mappings(Account, [{"id": 1, "balance": 7}])
    with pytest.raises(StaleDataError, match="another writer changed their version first"):
        session.bulk_update_mappings(Account, [{"id": 1, "balance": 7, "version": 1}])
    session.rollback()
    assert versions(engine) == [(1, 2), (2, 2)]


def test_bulk_save_objects_checks_and_advances_the_version(
    engine: Engine, sessions: SessionFactory
) -> None:
    ident = committed_account(sessions)
    loader = sessions(expire_on_commit=False)
    detached = loader.get_one(Account, ident)
    loader.close()
    detached.balance = 10
    session = sessions()
    session.bulk_save_objects([detached])
    session.commit()
    assert detached.version == 2  # written back: saving it again checks version 2
    detached.balance = 20
    session.bulk_save_objects([detached])
    session.commit()
    assert db_rows(engine, select(Account.balance, Account.version)) == [(20, 3)]
    other = sessions()
    theirs = other.get_one(Account, ident)
    theirs.balance = 0
    other.commit()
    detached.balance = 30
    with pytest.raises(StaleDataError):
        session.bulk_save_objects([detached])


def test_merge_of_a_stale_version_is_refused(sessions: SessionFactory) -> None:
    with sessions() as s:
        account = Account(owner="ann", balance=1)
        s.add(account)
        s.commit()
        account_id = account.id
    stale = Account(owner="ann", balance=5)
    stale.id = account_id
    stale.version = 7  # not the row's version
    with sessions() as s:
        with pytest.raises(StaleDataError, match=r"Version id '7' on merged state .* '1'"):
            s.merge(stale)
        stale.version = 1
        assert s.merge(stale).balance == 5
