"""``SessionTransaction``: the session's transaction as a small, explicit state machine.

A root transaction holds one Core connection and Core transaction per bind, and
remembers what happened to objects inside it — which states it inserted, which it
deleted, which it re-keyed — so that a rollback can put the session back as it was
(the seed's ``_restore_snapshot``) and a commit can finish the objects' lifecycles
(``_remove_snapshot``). ``snapshot()`` hands that record out as an immutable value.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

from sqlalchemy.engine import Connection, Engine, Transaction
from sqlalchemy.exc import (
    InvalidRequestError,
    PendingRollbackError,
    ResourceClosedError,
    SAWarning,
)

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

    from typed_session.session import Session
    from typed_session.state import InstanceState

__all__ = ["ConnectionBinding", "SessionTransaction", "Snapshot", "TransactionState"]


@final
class TransactionState(enum.Enum):
    """Where a ``SessionTransaction`` stands."""

    ACTIVE = "active"
    PREPARED = "prepared"
    COMMITTED = "committed"
    DEACTIVE = "deactive"
    """Rolled back underneath (a failed flush): only ``rollback()`` is allowed."""
    CLOSED = "closed"


@final
@dataclass(frozen=True, slots=True)
class ConnectionBinding:
    """The connection a transaction uses for one bind, and what the session owns of it.

    Attributes:
        connection: the Core connection.
        transaction: the Core transaction the session began, or ``None`` when it joined
            one the caller had already begun on a ``Connection`` bind.
        owns_connection: whether the session opened the connection (and closes it).
    """

    connection: Connection
    transaction: Transaction | None
    owns_connection: bool


@final
@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a transaction has done to objects so far, as an immutable value.

    Attributes:
        inserted: states whose INSERT was flushed in the transaction.
        deleted: states whose DELETE was flushed in the transaction.
        rekeyed: states whose primary key changed, with their identity before.
    """

    inserted: frozenset[InstanceState[Any]]
    deleted: frozenset[InstanceState[Any]]
    rekeyed: tuple[tuple[InstanceState[Any], object], ...]


@final
class SessionTransaction:
    """One transaction of a ``Session``; see the module docstring."""

    def __init__(self, session: Session[Any]) -> None:
        self.session = session
        self.parent: SessionTransaction | None = None
        self.nested = False
        self.state = TransactionState.ACTIVE
        self._connections: dict[Engine | Connection, ConnectionBinding] = {}
        self._inserted: dict[InstanceState[Any], None] = {}
        self._deleted: dict[InstanceState[Any], None] = {}
        self._rekeyed: dict[InstanceState[Any], object] = {}
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"<SessionTransaction {self.state.value}, {len(self._connections)} connection(s)>"

    @property
    def is_active(self) -> bool:
        """Whether the transaction can still be used (not rolled back, committed or closed)."""
        return self.state is TransactionState.ACTIVE

    @property
    def connections(self) -> tuple[ConnectionBinding, ...]:
        """The connections procured so far, one per bind."""
        return tuple(self._connections.values())

    def snapshot(self) -> Snapshot:
        """What the transaction has inserted, deleted and re-keyed so far."""
        return Snapshot(
            frozenset(self._inserted), frozenset(self._deleted), tuple(self._rekeyed.items())
        )

    # -- state checks -----------------------------------------------------------------

    def assert_active(self) -> None:
        """Raise unless the transaction can run statements.

        Raises:
            PendingRollbackError: after a failed flush, until ``rollback()``.
            InvalidRequestError: once committed, prepared or closed.
        """
        match self.state:
            case TransactionState.ACTIVE:
                return
            case TransactionState.DEACTIVE:
                raise PendingRollbackError(
                    "this Session's transaction has been rolled back because of an earlier "
                    "error during flush; call session.rollback() to begin a new transaction"
                    f" (original error: {self._failure!r})",
                    code="7s2a",
                )
            case TransactionState.PREPARED:
                raise InvalidRequestError(
                    "this session is in 'prepared' state; no further SQL can be emitted "
                    "within this transaction: commit() or rollback() it"
                )
            case TransactionState.COMMITTED:
                raise InvalidRequestError(
                    "this transaction has been committed; no further SQL can be emitted "
                    "within it: let the session begin a new one"
                )
            case TransactionState.CLOSED:
                raise ResourceClosedError("this transaction is closed")

    # -- connections ------------------------------------------------------------------

    def connection_for(self, bind: Engine | Connection) -> Connection:
        """The connection for a bind, begun on first use."""
        binding = self._connections.get(bind)
        if binding is not None:
            return binding.connection
        self.assert_active()
        if isinstance(bind, Connection):
            if bind.in_transaction():
                binding = ConnectionBinding(bind, None, owns_connection=False)
            else:
                binding = ConnectionBinding(bind, bind.begin(), owns_connection=False)
        else:
            conn = bind.connect()
            try:
                binding = ConnectionBinding(conn, conn.begin(), owns_connection=True)
            except BaseException:
                conn.close()
                raise
        self._connections[bind] = binding
        return binding.connection

    # -- recording (called by the session's flush) ------------------------------------

    def record_inserted(self, states: Iterable[InstanceState[Any]]) -> None:
        """Remember states inserted in this transaction."""
        self._inserted.update(dict.fromkeys(states))

    def record_deleted(self, state: InstanceState[Any]) -> None:
        """Remember a state deleted in this transaction."""
        self._deleted[state] = None

    def record_rekeyed(self, state: InstanceState[Any], old_identity: object) -> None:
        """Remember a state's first identity in this transaction before a key change."""
        self._rekeyed.setdefault(state, old_identity)

    # -- ending -----------------------------------------------------------------------

    def commit(self) -> None:
        """Flush what is pending, commit every connection and finish object lifecycles.

        Raises:
            PendingRollbackError: after a failed flush.
            InvalidRequestError: if the transaction is not active.
        """
        self.assert_active()
        self.session._flush_for_commit()
        try:
            for binding in self._connections.values():
                if binding.transaction is not None:
                    binding.transaction.commit()
        except BaseException:
            self.rollback()
            raise
        self.state = TransactionState.COMMITTED
        self.session._remove_snapshot(self.snapshot())
        self.close()

    def rollback(self) -> None:
        """Roll back every connection and restore the session's objects to the snapshot."""
        if self.state in (TransactionState.ACTIVE, TransactionState.PREPARED):
            try:
                self._rollback_connections()
            finally:
                self.session._restore_snapshot(self.snapshot())
        elif self.state is TransactionState.DEACTIVE and self.session._is_dirty():
            # objects were added, deleted or changed after the failed flush rolled the
            # database back: like the seed, discard them and say so
            warnings.warn(
                "the session's objects were changed after a failed flush had rolled back "
                "its transaction; rollback() discards those changes",
                SAWarning,
                stacklevel=3,
            )
            self.session._restore_snapshot(self.snapshot())
        self.close()

    def fail(self, error: BaseException) -> None:
        """Roll back underneath after a failed flush; the session then needs ``rollback()``."""
        self._failure = error
        try:
            self._rollback_connections()
        finally:
            self.state = TransactionState.DEACTIVE
            self.session._restore_snapshot(self.snapshot())
            self._inserted.clear()
            self._deleted.clear()
            self._rekeyed.clear()

    def _rollback_connections(self) -> None:
        for binding in self._connections.values():
            tx = binding.transaction
            if tx is None:
                # joined the caller's transaction: a rollback is the caller's to see
                outer = binding.connection.get_transaction()
                if outer is not None and outer.is_active:
                    outer.rollback()
            elif tx.is_active:
                tx.rollback()

    def close(self) -> None:
        """Release the connections (rolling back what was not committed) and end."""
        for binding in self._connections.values():
            if binding.owns_connection:
                binding.connection.close()
            elif binding.transaction is not None and binding.transaction.is_active:
                binding.transaction.rollback()
        self._connections.clear()
        if self.state is not TransactionState.COMMITTED:
            self.state = TransactionState.CLOSED
        self.session._transaction_ended(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.state in (TransactionState.CLOSED, TransactionState.COMMITTED):
            return
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.rollback()
                raise
        else:
            self.rollback()
