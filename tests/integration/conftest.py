"""Fixtures of the integration tests: sessions that are always closed afterwards.

A session left open holds a connection, and on PostgreSQL and MariaDB its locks make
the ``drop_all`` after the test wait forever; so every session a test opens through
``sessions`` is closed when the test ends, even if it failed.

Two test runs at once on one machine share the PostgreSQL and MariaDB databases and
the table names: one run's ``DROP TABLE`` then queues behind the other's open
transaction, and MariaDB's metadata locks wait a day before giving up. So a run takes
a machine-wide file lock for its integration tests, and a second run waits for it.
"""

import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Unpack

import pytest
from sqlalchemy import Engine

from typed_session import Session, SessionOptions

LOCK_FILE = Path(tempfile.gettempdir()) / "typed-session-integration-tests.lock"


@pytest.fixture(scope="session", autouse=True)
def one_run_at_a_time() -> Iterator[None]:
    """Hold the machine-wide lock of the shared test databases for this test run."""
    with LOCK_FILE.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the run ends, or dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SessionFactory:
    """Opens sessions on one engine and remembers them, to close them all at the end."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.opened: list[Session[Engine]] = []

    def __call__(self, **options: Unpack[SessionOptions]) -> Session[Engine]:
        session = Session(self.engine, **options)
        self.opened.append(session)
        return session

    def close_all(self) -> None:
        """Close every session opened by this factory."""
        for session in self.opened:
            session.close()


@pytest.fixture
def sessions(engine: Engine) -> Iterator[SessionFactory]:
    """Open sessions with ``sessions(**options)``; all are closed after the test."""
    factory = SessionFactory(engine)
    try:
        yield factory
    finally:
        factory.close_all()


@pytest.fixture
def session(sessions: SessionFactory) -> Session[Engine]:
    """A session with the default options, closed after the test."""
    return sessions()
