"""A read-replica session as a user writes it."""

from __future__ import annotations

from typing import assert_type

from sqlalchemy import Engine, create_engine

from typed_session import ReplicaSession, Session

from .check_entity import User

primary, replica = create_engine("sqlite://"), create_engine("sqlite://")
session = ReplicaSession(primary, [replica])
assert_type(session.get(User, 1), User | None)
assert_type(session.replica, Engine)
assert_type(session.writing(), bool)
as_session: Session[Engine] = session

ReplicaSession(primary)  # type: ignore[call-arg]
ReplicaSession(primary, replica)  # type: ignore[arg-type]
