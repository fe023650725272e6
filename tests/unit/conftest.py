"""Fixtures of the unit tests: SQLite in memory, nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine


@pytest.fixture
def memory_engine() -> Iterator[Engine]:
    """An in-memory SQLite engine.

    ``sqlite://`` gets Core's ``SingletonThreadPool``: one connection per thread, so every
    session and DDL call of a test (all on the test's thread) sees the same database.
    """
    eng = create_engine("sqlite://")
    try:
        yield eng
    finally:
        eng.dispose()
