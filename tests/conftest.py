"""Fixtures shared by the unit and integration tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final

import pytest
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext

BACKENDS: Final = ("sqlite", "postgresql", "mariadb")

DEFAULT_PG_URL: Final = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_MYSQL_URL: Final = "mysql+pymysql://root@127.0.0.1:3306/test"

# Backend name -> None when reachable, else the error that made it unreachable.
_reachability: dict[str, str | None] = {}


def _server_url(name: str) -> str:
    if name == "postgresql":
        return os.environ.get("TYPED_SESSION_PG_URL", DEFAULT_PG_URL)
    if name == "mariadb":
        return os.environ.get("TYPED_SESSION_MYSQL_URL", DEFAULT_MYSQL_URL)
    raise ValueError(f"unknown server backend {name!r}")


def _probe(url: str) -> str | None:
    """Try one connection to ``url``; return None if it worked, else the error text."""
    try:
        probe_engine = create_engine(url)
    except Exception as exc:  # e.g. ImportError for a missing DBAPI driver
        return f"{type(exc).__name__}: {exc}"
    try:
        with probe_engine.connect():
            pass
    except Exception as exc:  # OperationalError and anything the driver raises
        return f"{type(exc).__name__}: {exc}"
    finally:
        probe_engine.dispose()
    return None


def enforce_sqlite_foreign_keys(dbapi_connection: object, _record: object) -> None:
    """Turn on SQLite's foreign-key enforcement for a new DBAPI connection."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]  # a DBAPI connection
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@pytest.fixture(scope="session", params=BACKENDS, ids=list(BACKENDS))
def backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database URL of one backend; servers that cannot be reached are skipped.

    With ``CI=true`` an unreachable server fails the test instead of skipping it.
    """
    name = str(request.param)
    if name == "sqlite":
        directory = tmp_path_factory.mktemp("sqlite")
        return f"sqlite:///{directory / 'test.db'}"

    return reachable_server_url(name)


def reachable_server_url(name: str) -> str:
    """The URL of a server backend, skipped (failed under ``CI=true``) if unreachable."""
    url = _server_url(name)
    if name not in _reachability:
        _reachability[name] = _probe(url)
    err = _reachability[name]
    if err is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is unreachable at {url} and CI=true requires it: {err}")
        pytest.skip(f"{name} unreachable at {url}: {err}")
    return url


@pytest.fixture
def engine(backend_url: str) -> Iterator[Engine]:
    """A fresh engine for ``backend_url``, disposed after the test.

    SQLite enforces foreign keys here, as the servers do (``PRAGMA foreign_keys=ON`` on
    every connection), so that a flush in the wrong order fails on every backend.
    """
    eng = create_engine(backend_url)
    if eng.dialect.name == "sqlite":
        event.listen(eng, "connect", enforce_sqlite_foreign_keys)
    try:
        yield eng
    finally:
        eng.dispose()


@dataclass(frozen=True)
class CapturedStatement:
    """One statement as it was sent to the DBAPI cursor."""

    sql: str
    parameters: object
    executemany: bool


@dataclass
class SQLCapture:
    """Records every statement an engine sends to its cursors.

    Uses a Core ``before_cursor_execute`` listener; call :meth:`attach` (or use the
    instance as a context manager) to start recording and :meth:`detach` to stop.
    """

    engine: Engine
    statements: list[CapturedStatement] = field(default_factory=list)
    _attached: bool = field(default=False, init=False)

    def _listener(
        self,
        conn: Connection,
        cursor: DBAPICursor,
        statement: str,
        parameters: object,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> None:
        self.statements.append(CapturedStatement(statement, parameters, executemany))

    def attach(self) -> SQLCapture:
        """Start recording statements; returns ``self``."""
        if not self._attached:
            event.listen(self.engine, "before_cursor_execute", self._listener)
            self._attached = True
        return self

    def detach(self) -> None:
        """Stop recording statements (the recorded ones are kept)."""
        if self._attached:
            event.remove(self.engine, "before_cursor_execute", self._listener)
            self._attached = False

    def clear(self) -> None:
        """Forget the statements recorded so far."""
        self.statements.clear()

    def matching(self, prefix: str) -> list[CapturedStatement]:
        """The recorded statements whose SQL starts with ``prefix``, ignoring case."""
        wanted = prefix.upper()
        return [s for s in self.statements if s.sql.strip().upper().startswith(wanted)]

    def __enter__(self) -> SQLCapture:
        return self.attach()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.detach()


@pytest.fixture
def capture(engine: Engine) -> Iterator[SQLCapture]:
    """An :class:`SQLCapture` attached to ``engine``, detached after the test."""
    with SQLCapture(engine) as sql_capture:
        yield sql_capture


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under an ``integration`` directory with ``integration``."""
    for item in items:
        if "/integration/" in item.path.as_posix():
            item.add_marker(pytest.mark.integration)
