"""The session as the layers below it see it: the owner protocols, and no reference cycle."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import InvalidRequestError, UnboundExecutionError

from typed_session import (
    Mapped,
    ObjectState,
    Registry,
    Session,
    TransactionState,
    column,
    entity,
    instance_state,
    object_session,
)
from typed_session._state import StateOwner
from typed_session._transaction import TransactionOwner

reg = Registry()


@entity(reg, table="own_users")
class User:
    id: Mapped[int] = column(primary_key=True)
    name: Mapped[str]


def test_the_session_owner_satisfies_both_protocols(memory_engine: Engine) -> None:
    session = Session(memory_engine)
    # checked by mypy: the adapter implements what states and transactions need
    state_owner: StateOwner = session._owner
    transaction_owner: TransactionOwner = session._owner
    assert state_owner.session is session
    assert transaction_owner.session is session
    assert transaction_owner.objects is session._objects
    assert session.begin().session is session


def test_a_dropped_session_detaches_its_objects_at_once(memory_engine: Engine) -> None:
    reg.create_all(memory_engine)
    session = Session(memory_engine)
    session.add(User(id=1, name="a"))
    session.commit()
    user = session.get_one(User, 1)
    assert session.in_transaction()  # the transaction holds the session's owner
    del session  # no gc.collect(): nothing may keep the session alive in a cycle
    assert object_session(user) is None
    assert instance_state(user).object_state is ObjectState.DETACHED
    assert instance_state(user).session is None


def test_a_transaction_outliving_its_session_says_so_and_still_rolls_back(
    memory_engine: Engine,
) -> None:
    session = Session(memory_engine)
    tx = session.begin()
    connection = session.connection()
    del session
    with pytest.raises(InvalidRequestError, match="no longer exists"):
        tx.commit()
    assert tx.is_active
    tx.rollback()
    assert tx.state is TransactionState.CLOSED
    assert connection.closed


def test_a_flush_without_a_bind_is_refused_before_anything_changes() -> None:
    session: Session = Session()
    user = User(id=1, name="a")
    session.add(user)
    with pytest.raises(UnboundExecutionError, match=r"^Could not locate a bind .* Mapper\(User"):
        session.flush()
    assert session.is_active
    assert session.new == [user]
    assert instance_state(user).object_state is ObjectState.PENDING
