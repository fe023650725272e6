"""Columns an UPDATE changes by itself are not left stale on the object (issue 12, item 9).

Core applies a column's ``onupdate`` default to every UPDATE, and a database may change a
column on update (``server_onupdate``, e.g. a trigger or MariaDB's ``ON UPDATE``); the
object's value is expired after the flush and loaded on the next read.
"""

from collections.abc import Iterator
from itertools import count

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, select

from tests.conftest import SQLCapture
from tests.integration.conftest import SessionFactory
from tests.integration.helpers import db_rows, recreate_tables, sql_for
from typed_session import Mapped, Registry, entity

revisions = count(1)
reg = Registry(MetaData())
documents = Table(
    "onu_documents",
    reg.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("title", String(50), nullable=False),
    Column("revision", Integer, nullable=False, default=0, onupdate=lambda: next(revisions)),
)


@entity(reg, table=documents)
class Document:
    id: Mapped[int]
    title: Mapped[str]
    revision: Mapped[int]


@pytest.fixture(autouse=True)
def tables(engine: Engine) -> Iterator[None]:
    yield from recreate_tables(reg, engine)


def test_an_onupdate_value_is_read_back_after_the_update(
    engine: Engine, sessions: SessionFactory, capture: SQLCapture
) -> None:
    session = sessions(expire_on_commit=False)
    doc = Document(id=1, title="a", revision=0)
    session.add(doc)
    session.commit()

    doc.title = "b"
    session.flush()
    capture.clear()

    revision = doc.revision
    assert len(sql_for(capture, "SELECT", Document)) == 1  # loaded, not the stale 0
    session.commit()
    assert db_rows(engine, select(documents.c.revision)) == [(revision,)]
    assert revision > 0


def test_an_onupdate_column_set_by_the_object_keeps_its_value(
    engine: Engine, sessions: SessionFactory
) -> None:
    session = sessions(expire_on_commit=False)
    doc = Document(id=1, title="a", revision=0)
    session.add(doc)
    session.commit()

    doc.title = "b"
    doc.revision = 42
    session.commit()

    assert doc.revision == 42
    assert db_rows(engine, select(documents.c.revision)) == [(42,)]
