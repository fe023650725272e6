"""The transaction state machine: every operation in every state (issue 14, item 1).

A transaction is put into each state the way a user gets there (COMMITTED, which lasts
only from a commit to the close that follows it, through the transition table itself),
then each operation either works or raises the seed's error for that state.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.exc import (
    IntegrityError,
    InvalidRequestError,
    PendingRollbackError,
    ResourceClosedError,
)

from typed_session import (
    Mapped,
    Registry,
    Session,
    SessionTransaction,
    TransactionState,
    column,
    entity,
)

reg = Registry()


@entity(reg, table="ts_rows")
class Row:
    id: Mapped[int] = column(primary_key=True)


def _in_state(
    engine: Engine, state: TransactionState, *, twophase: bool
) -> tuple[Session, SessionTransaction]:
    reg.create_all(engine)
    session = Session(engine, twophase=twophase)
    tx = session.begin()
    match state:
        case TransactionState.ACTIVE:
            pass
        case TransactionState.PREPARED:
            tx.prepare()  # no connection yet: nothing to PREPARE on SQLite
        case TransactionState.COMMITTED:
            tx._move(TransactionState.COMMITTED)
        case TransactionState.DEACTIVE if twophase:
            session.add(Row(id=1))  # SQLite refuses two-phase: the flush fails
            with pytest.raises(InvalidRequestError, match="two-phase"):
                session.flush()
        case TransactionState.DEACTIVE:
            session.connection().execute(insert(Row), {"id": 1})
            session.add(Row(id=1))
            with pytest.raises(IntegrityError, match="UNIQUE"):
                session.flush()
        case TransactionState.CLOSED:
            tx.commit()
    assert tx.state is state
    return session, tx


#: the seed's errors: committed, prepared, inactive after a failed flush, closed
_PREPARED = (InvalidRequestError, r"^This session is in 'prepared' state")
_COMMITTED = (InvalidRequestError, r"^This session is in 'committed' state")
_DEACTIVE = (PendingRollbackError, r"^This Session's transaction has been rolled back")
_CLOSED = (ResourceClosedError, r"^This transaction is closed")
OK = None

OPERATIONS: dict[str, Callable[[Session, SessionTransaction], object]] = {
    "commit": lambda _s, tx: tx.commit(),
    "rollback": lambda _s, tx: tx.rollback(),
    "prepare": lambda _s, tx: tx.prepare(),
    "close": lambda _s, tx: tx.close(),
    "connection": lambda s, tx: tx.connection_for(s.get_bind()),
}

EXPECTED: dict[tuple[str, TransactionState], tuple[type[BaseException], str] | None] = {
    ("commit", TransactionState.ACTIVE): OK,
    ("commit", TransactionState.PREPARED): OK,
    ("commit", TransactionState.COMMITTED): _COMMITTED,
    ("commit", TransactionState.DEACTIVE): _DEACTIVE,
    ("commit", TransactionState.CLOSED): _CLOSED,
    ("rollback", TransactionState.ACTIVE): OK,
    ("rollback", TransactionState.PREPARED): OK,
    ("rollback", TransactionState.COMMITTED): _COMMITTED,
    ("rollback", TransactionState.DEACTIVE): OK,
    ("rollback", TransactionState.CLOSED): _CLOSED,
    ("prepare", TransactionState.ACTIVE): OK,
    ("prepare", TransactionState.PREPARED): _PREPARED,
    ("prepare", TransactionState.COMMITTED): _COMMITTED,
    ("prepare", TransactionState.DEACTIVE): _DEACTIVE,
    ("prepare", TransactionState.CLOSED): _CLOSED,
    ("close", TransactionState.ACTIVE): OK,
    ("close", TransactionState.PREPARED): OK,
    ("close", TransactionState.COMMITTED): OK,
    ("close", TransactionState.DEACTIVE): OK,
    ("close", TransactionState.CLOSED): OK,
    ("connection", TransactionState.ACTIVE): OK,
    ("connection", TransactionState.PREPARED): _PREPARED,
    ("connection", TransactionState.COMMITTED): _COMMITTED,
    ("connection", TransactionState.DEACTIVE): _DEACTIVE,
    ("connection", TransactionState.CLOSED): _CLOSED,
}


def test_every_pair_is_specified() -> None:
    assert set(EXPECTED) == {(op, st) for op in OPERATIONS for st in TransactionState}


@pytest.mark.parametrize(("operation", "state"), list(EXPECTED))
def test_operation_in_state(memory_engine: Engine, operation: str, state: TransactionState) -> None:
    twophase = operation == "prepare" or state is TransactionState.PREPARED
    session, tx = _in_state(memory_engine, state, twophase=twophase)
    expected = EXPECTED[operation, state]
    if expected is None:
        OPERATIONS[operation](session, tx)
    else:
        error, message = expected
        with pytest.raises(error, match=message):
            OPERATIONS[operation](session, tx)
        assert tx.state is state  # a refused operation changes nothing


def test_the_transition_table_refuses_a_wrong_move(memory_engine: Engine) -> None:
    _session, tx = _in_state(memory_engine, TransactionState.CLOSED, twophase=False)
    with pytest.raises(AssertionError, match="cannot move to active"):
        tx._move(TransactionState.ACTIVE)


def test_prepare_needs_twophase_and_a_root(memory_engine: Engine) -> None:
    session = Session(memory_engine)
    with pytest.raises(InvalidRequestError, match=r"^'twophase' mode not enabled"):
        session.prepare()
    two = Session(memory_engine, twophase=True)
    two.begin()
    nested = two.begin_nested()
    with pytest.raises(InvalidRequestError, match=r"^'twophase' mode not enabled"):
        nested.prepare()


def test_twophase_on_sqlite_says_it_cannot(memory_engine: Engine) -> None:
    session = Session(memory_engine, twophase=True)
    with pytest.raises(InvalidRequestError, match="two-phase commit is not available on sqlite"):
        session.connection()
