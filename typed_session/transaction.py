"""``SessionTransaction``: the session's transaction as a small, explicit state machine.

A root transaction holds one Core connection and Core transaction per bind, and keeps
``TransactionRecords`` of what happened to objects inside it, so that a rollback can put
the session back as it was (``lifecycle.restore_snapshot``) and a commit can finish the
objects' lifecycles (``lifecycle.remove_snapshot``). ``snapshot()`` hands the records out
as an immutable value.

The transaction talks to its session only through ``TransactionOwner``, a small
protocol: it never reaches into the session's private methods, and it imports nothing
from ``session.py``.
"""

from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, final

from sqlalchemy.engine import Connection, Engine, Transaction
from sqlalchemy.exc import (
    InvalidRequestError,
    PendingRollbackError,
    ResourceClosedError,
    SAWarning,
)

from typed_session.lifecycle import (
    SessionObjects,
    Snapshot,
    TransactionRecords,
    remove_snapshot,
    restore_snapshot,
)

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

__all__ = [
    "ConnectionBinding",
    "SessionTransaction",
    "Snapshot",
    "TransactionOwner",
    "TransactionState",
]


class TransactionOwner(Protocol):
    """What a transaction needs from its session."""

    @property
    def session(self) -> object:
        """The session (``SessionTransaction.session``)."""
        ...

    @property
    def objects(self) -> SessionObjects:
        """The session's objects, which rollback restores and commit finishes."""
        ...

    @property
    def expire_on_commit(self) -> bool:
        """Whether objects are expired after a commit."""
        ...

    def flush_before_commit(self) -> None:
        """Flush until nothing is left to flush (the seed's guard against endless loops)."""
        ...

    def transaction_ended(self, transaction: SessionTransaction, /) -> None:
        """The transaction is over: the session can begin another."""
        ...


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
class SessionTransaction:
    """One transaction of a ``Session``; see the module docstring.

    Attributes:
        parent: the enclosing transaction (``None`` for the root).
        nested: whether this is a SAVEPOINT (its rollback expires only what changed).
        state: where the transaction stands.
        records: what the transaction has done to objects so far.
    """

    def __init__(
        self,
        owner: TransactionOwner,
        parent: SessionTransaction | None = None,
        *,
        nested: bool = False,
    ) -> None:
        self._owner = owner
        self.parent = parent
        self.nested = nested
        self.state: TransactionState = TransactionState.ACTIVE
        self.records: TransactionRecords = TransactionRecords()
        self._connections: dict[Engine | Connection, ConnectionBinding] = {}
        self._failure: BaseException | None = None

    @property
    def session(self) -> object:
        """The session this transaction belongs to."""
        return self._owner.session

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
        """What the transaction has inserted, updated, deleted and re-keyed so far."""
        return self.records.snapshot()

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

    # -- ending -----------------------------------------------------------------------

    def commit(self) -> None:
        """Flush what is pending, commit every connection and finish object lifecycles.

        Raises:
            PendingRollbackError: after a failed flush.
            InvalidRequestError: if the transaction is not active.
        """
        self.assert_active()
        owner = self._owner
        owner.flush_before_commit()
        try:
            for binding in self._connections.values():
                if binding.transaction is not None:
                    binding.transaction.commit()
        except BaseException:
            self.rollback()
            raise
        self.state = TransactionState.COMMITTED
        remove_snapshot(owner.objects, self.records, expire_objects=owner.expire_on_commit)
        self.close()

    def rollback(self) -> None:
        """Roll back every connection and restore the session's objects to the snapshot."""
        objects = self._owner.objects
        if self.state in (TransactionState.ACTIVE, TransactionState.PREPARED):
            try:
                self._rollback_connections()
            finally:
                self._restore()
        elif self.state is TransactionState.DEACTIVE and objects.has_changes():
            # objects were added, deleted or changed after the failed flush rolled the
            # database back: like the seed, discard them and say so
            warnings.warn(
                "the session's objects were changed after a failed flush had rolled back "
                "its transaction; rollback() discards those changes",
                SAWarning,
                stacklevel=3,
            )
            self._restore()
        self.close()

    def _restore(self) -> None:
        restore_snapshot(self._owner.objects, self.records, dirty_only=self.nested)

    def fail(self, error: BaseException) -> None:
        """Roll back underneath after a failed flush; the session then needs ``rollback()``."""
        self._failure = error
        try:
            self._rollback_connections()
        finally:
            self.state = TransactionState.DEACTIVE
            self._restore()
            self.records.clear()

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
        self._owner.transaction_ended(self)

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
