"""Construction edge cases reported while writing the demo and docs."""

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text
from sqlalchemy.exc import ArgumentError

from typed_session import Mapped, Registry, Session, entity


def test_bind_can_be_passed_by_keyword_as_in_the_seed(memory_engine: Engine) -> None:
    session = Session(bind=memory_engine)
    assert session.bind is memory_engine
    assert session.get_bind() is memory_engine


def test_bind_is_read_only_as_its_covariant_type_promises(memory_engine: Engine) -> None:
    # Session[Engine] is a Session[Engine | Connection] only if nobody can put a
    # Connection into its bind afterwards
    session = Session(memory_engine)
    with memory_engine.connect() as conn, pytest.raises(AttributeError):
        session.bind = conn  # type: ignore[misc, assignment]  # the point of the test
    assert session.bind is memory_engine


def test_existing_nullable_column_annotated_non_optional_is_refused() -> None:
    metadata = MetaData()
    notes = Table(
        "u_notes", metadata, Column("id", Integer, primary_key=True), Column("body", Text)
    )
    with pytest.raises(ArgumentError, match=r"annotate it Mapped\[str \| None\]"):

        @entity(Registry(metadata), table=notes)
        class Note:
            id: Mapped[int]
            body: Mapped[str]
