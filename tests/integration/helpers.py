"""Small helpers shared by the integration tests.

The database is always read through a plain ``engine.connect()`` and Core statements,
never through a session, so that what the tests see is what was really written.
"""

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Table, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.sql import Executable

from tests.conftest import SQLCapture
from typed_session import ObjectState, Registry, inspect_entity, instance_state


def lifecycle(obj: object) -> ObjectState:
    """The lifecycle state of an entity instance (transient, pending, ...)."""
    return instance_state(obj).object_state


def recreate_tables(registry: Registry, engine: Engine) -> Iterator[None]:
    """Fixture body: fresh tables for the test, dropped again after it."""
    registry.drop_all(engine)
    registry.create_all(engine)
    try:
        yield
    finally:
        registry.drop_all(engine)


def table_of(entity_class: type[object]) -> Table:
    """The Core table an entity class is mapped onto."""
    return inspect_entity(entity_class).table


def db_rows(engine: Engine, statement: Executable) -> list[tuple[Any, ...]]:
    """Run a Core statement on a connection of its own and return its rows as tuples."""
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(statement)]


def db_count(engine: Engine, entity_class: type[object]) -> int:
    """How many rows the table of ``entity_class`` holds, as committed."""
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(table_of(entity_class))).scalar()
    assert isinstance(count, int)
    return count


def db_insert(
    engine: Engine, entity_class: type[object], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert and commit rows behind every session's back."""
    with engine.begin() as conn:
        conn.execute(insert(table_of(entity_class)), [dict(r) for r in rows])


def sql_for(capture: SQLCapture, verb: str, entity_class: type[object]) -> list[str]:
    """The captured statements starting with ``verb`` that touch the entity's table."""
    name = table_of(entity_class).name
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    return [s.sql for s in capture.matching(verb) if pattern.search(s.sql)]


def set_clause_columns(update_sql: str) -> list[str]:
    """The column names assigned in the SET clause of an UPDATE statement."""
    match = re.search(r"\bSET\s+(.*?)\s+WHERE\b", update_sql, re.IGNORECASE | re.DOTALL)
    assert match is not None, update_sql
    return [part.split("=")[0].strip().strip('`"') for part in match.group(1).split(",")]


def postgresql_database(url: str, name: str) -> str:
    """The URL of database ``name`` on the PostgreSQL server of ``url``, created if missing."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if exists is None:
                conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)
