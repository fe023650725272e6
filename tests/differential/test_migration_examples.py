"""The SQLAlchemy side of ``docs/migration.md`` runs, and agrees with the typed_session side.

The page shows SQLAlchemy ORM code (blocks titled "SQLAlchemy ...") next to typed_session
code. ``tests/test_docs_examples.py`` runs the typed_session blocks; this test runs the
SQLAlchemy ones too, each side in its own namespace (the block shown for both runs on
both), with the helper of that test, and compares what the pairs do: the ``users`` table
both mappings create, the rows the setup writes, and the legacy ``Query`` results.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import MetaData, Table, select
from sqlalchemy.exc import MovedIn20Warning
from sqlalchemy.schema import CreateTable

from tests.test_docs_examples import Side, run_page

PAGE = "migration.md"


def users(ns: dict[str, Any]) -> Table:
    metadata: MetaData = ns["Base"].metadata if "Base" in ns else ns["registry"].metadata
    return metadata.tables["users"]


def outcome(side: Side) -> tuple[str, list[tuple[Any, ...]], tuple[Any, ...]]:
    """Run one side of the page: its users DDL, the rows of users, the Query results."""

    def user(obj: Any) -> tuple[Any, ...]:
        return (obj.id, obj.name, obj.team)

    with run_page(PAGE, side) as ns:
        table, engine = users(ns), ns["engine"]
        ns["session"].close()
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(select(table).order_by(table.c.id))]
        query = (user(ns["first"]), ns["how_many"], user(ns["ann"]), ns["first"] is ns["ann"])
        return str(CreateTable(table).compile(engine)), rows, query


def test_the_sqlalchemy_examples_run_and_agree_with_typed_session() -> None:
    # the 1.3 import of declarative_base still runs, with the warning the page mentions
    with pytest.warns(MovedIn20Warning, match=r"declarative_base\(\)"):
        sa_ddl, sa_rows, sa_query = outcome("sqlalchemy")
    ts_ddl, ts_rows, ts_query = outcome("typed_session")
    # the declarative class and the @entity class map the same table
    assert ts_ddl == sa_ddl
    # the setup writes the same rows: keys, names, and NULL for a team left out
    assert ts_rows == sa_rows == [(1, "bob", "red"), (2, "ann", "red"), (3, "cy", None)]
    # the Query block gives the same first(), count() and one(), first() being ann's object
    assert ts_query == sa_query == ((2, "ann", "red"), 2, (2, "ann", "red"), True)
