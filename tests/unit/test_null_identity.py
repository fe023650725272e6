"""A row whose primary key comes back NULL cannot become an identity: FlushError, as in the seed.

Only SQLite lets a (non-rowid) primary key be NULL, which is what makes this reachable.
"""

import pytest
from sqlalchemy import Column, Engine, FetchedValue, MetaData, String, Table, select, text
from sqlalchemy.exc import PendingRollbackError

from typed_session import FlushError, Mapped, ObjectState, Registry, Session, entity
from typed_session import instance_state as state_of

metadata = MetaData()
codes = Table(
    "u_null_codes",
    metadata,
    Column("code", String(20), primary_key=True, server_default=FetchedValue()),
    Column("label", String(20), nullable=False),
)
reg = Registry(metadata)


@entity(reg, table=codes)
class Code:
    code: Mapped[str]
    label: Mapped[str]


def test_null_identity_after_insert_raises_flush_error_and_keeps_nothing(
    memory_engine: Engine,
) -> None:
    with memory_engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE u_null_codes (code VARCHAR(20) PRIMARY KEY, label VARCHAR(20))")
        )
    session = Session(memory_engine)
    obj = Code.__new__(Code)
    obj.label = "no key"
    session.add(obj)

    with pytest.raises(FlushError, match="NULL identity key") as info:
        session.flush()

    assert info.value.instance is obj
    with pytest.raises(PendingRollbackError):
        session.scalars(select(Code)).all()
    session.rollback()
    assert state_of(obj).object_state is ObjectState.TRANSIENT
    with memory_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM u_null_codes")).scalar() == 0
