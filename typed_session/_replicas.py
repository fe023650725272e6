"""``ReplicaSession``: reads outside a writing transaction go to a read replica.

A replica (a PostgreSQL hot standby, a MariaDB replica) serves reads so that the primary
serves writes. It lags behind the primary, so the session routes by what a transaction
has done so far:

1. While the transaction has written nothing, reads go to the session's replica: a
   ``select()`` (not ``FOR UPDATE``), ``get()``, ``refresh()``, the load of expired
   attributes.
2. Everything else goes to the primary: the flush, DML and any other statement, locking
   reads, and every statement of a transaction that has a connection to the primary
   already. That is **read-your-writes inside a transaction**: once it has written, it
   reads on the connection that holds its writes.

Each session keeps to one replica (chosen round-robin among the replicas when the
session is made), so that a transaction never mixes the snapshots of two replicas. A
commit ends the writing: the next transaction reads from the replica again, which may
not have replayed the commit yet (read your own committed writes from the primary: run
the read in a transaction that has written, or with ``session.connection(bind=primary)``).
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, TypeVar, Unpack, final

from sqlalchemy import CompoundSelect, Select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError

from typed_session._config import SessionOptions, refuse_bind_options
from typed_session._core import locks_rows
from typed_session._loading import ForUpdate
from typed_session._mapping.mapper import Mapper
from typed_session._session import Session
from typed_session._typing import IdentityToken

__all__ = ["ReplicaSession"]

_O = TypeVar("_O")

#: which replica the next session reads from
_next_replica = itertools.count()


@final
class ReplicaSession(Session[Engine]):
    """A ``Session`` on a primary that reads from a replica outside writing transactions.

    Args:
        primary: the engine of the primary (writes, and reads after a write).
        replicas: the engines of the replicas; each session reads from one of them.
        **options: the ``Session``'s options, except ``binds`` and ``bind_resolver``.

    Raises:
        ArgumentError: no replica, a primary or replica that is not an ``Engine``, or
            ``binds`` / ``bind_resolver`` given.
    """

    def __init__(
        self, primary: Engine, replicas: Sequence[Engine], **options: Unpack[SessionOptions]
    ) -> None:
        refuse_bind_options(
            "ReplicaSession",
            options,
            "it sends every statement to the primary or to its replica. Use a plain "
            "Session with binds= for several databases",
        )
        if not replicas:
            raise ArgumentError(
                "ReplicaSession() needs at least one replica engine; without one, use "
                "Session(primary)"
            )
        for engine in (primary, *replicas):
            if not isinstance(engine, Engine):
                raise ArgumentError(
                    f"ReplicaSession() takes Engines for the primary and the replicas, not "
                    f"{engine!r}: the session opens a connection on each as it needs one"
                )
        super().__init__(primary, **options)
        self.primary: Engine = primary
        self.replicas: tuple[Engine, ...] = tuple(replicas)
        #: the replica this session reads from
        self.replica: Engine = self.replicas[next(_next_replica) % len(self.replicas)]
        #: set while get() or refresh() lock rows: FOR UPDATE runs on the primary
        self._locking = False

    def __repr__(self) -> str:
        return f"<ReplicaSession {self.hash_key} primary={self.primary!r} replica={self.replica!r}>"

    def writing(self) -> bool:
        """Whether the transaction in progress has written (it holds a primary connection)."""
        tx = self.get_transaction()
        primary = self.primary
        return tx is not None and any(b.connection.engine is primary for b in tx.connections)

    def get_bind(
        self, entity: type[Any] | None = None, clause: object | None = None
    ) -> Engine | Connection:
        """The replica for a read outside a writing transaction; the primary otherwise.

        A read is a ``select()`` (or a set operation of them) that locks no rows, or a
        load by key (an entity without a statement, outside a flush).
        """
        if self._flushing or self._locking or self.writing():
            return self.primary
        if clause is None:
            return self.replica if entity is not None else self.primary
        if isinstance(clause, CompoundSelect) or (
            isinstance(clause, Select) and not locks_rows(clause)
        ):
            return self.replica
        return self.primary

    def _get_from_database(
        self, mapper: Mapper[_O], ident: Hashable, lock: ForUpdate, token: IdentityToken
    ) -> _O | None:
        """``get()``'s SELECT; a locking one (``with_for_update``) runs on the primary."""
        self._locking = bool(lock)
        try:
            return super()._get_from_database(mapper, ident, lock, token)
        finally:
            self._locking = False

    def refresh(
        self,
        instance: object,
        attribute_names: Iterable[str] | None = None,
        with_for_update: ForUpdate = None,
    ) -> None:
        """``Session.refresh``; with ``with_for_update`` the row is locked on the primary."""
        self._locking = bool(with_for_update)
        try:
            super().refresh(instance, attribute_names, with_for_update)
        finally:
            self._locking = False
