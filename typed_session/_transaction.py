"""``SessionTransaction``: the session's transaction as a small, explicit state machine.

A root transaction holds one Core connection and Core transaction per bind; a nested one
(``begin_nested()``) a SAVEPOINT on each connection it uses. Each keeps
``TransactionRecords`` of what happened to objects inside it, so that a rollback can put
the session back as it was (``lifecycle.restore_snapshot``) and a commit can finish the
objects' lifecycles (``lifecycle.remove_snapshot``). ``snapshot()`` hands the records out
as an immutable value.

The transaction talks to its session only through ``TransactionOwner``, a small
protocol: it never reaches into the session's private methods, and it imports nothing
from ``_session.py``.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, assert_never, final

from sqlalchemy.engine import Connection, Engine, Transaction, TwoPhaseTransaction
from sqlalchemy.exc import (
    InvalidRequestError,
    PendingRollbackError,
    ResourceClosedError,
    SAWarning,
)

from typed_session._config import JoinTransactionMode
from typed_session._lifecycle import (
    SessionObjects,
    Snapshot,
    TransactionRecords,
    release_into,
    remove_snapshot,
    restore_snapshot,
)
from typed_session._records import NoPublicConstructor, internal_constructor

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

__all__ = [
    "ConnectionBinding",
    "SessionTransaction",
    "Snapshot",
    "TransactionEvent",
    "TransactionOwner",
    "TransactionState",
    "TransactionViews",
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

    def transaction_event(
        self,
        event: TransactionEvent,
        transaction: SessionTransaction,
        connection: Connection | None = None,
        /,
    ) -> None:
        """Something happened to a transaction: the session fires its event hooks."""
        ...

    def context_entered(self, transaction: SessionTransaction, /) -> None:
        """A ``with`` block of the transaction begins."""
        ...

    def context_exited(self, transaction: SessionTransaction, /) -> None:
        """A ``with`` block of the transaction ends."""
        ...


@final
class TransactionEvent(enum.Enum):
    """What a transaction tells its owner, in the seed's order (each is an event hook)."""

    CREATED = "after_transaction_create"
    BEGUN = "after_begin"
    """A connection joined the transaction (BEGIN, or a SAVEPOINT): ``connection`` is set."""
    BEFORE_COMMIT = "before_commit"
    COMMITTED = "after_commit"
    ROLLED_BACK = "after_rollback"
    SOFT_ROLLED_BACK = "after_soft_rollback"
    """``rollback()`` has returned."""
    ENDED = "after_transaction_end"


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
class ConnectionBinding(metaclass=NoPublicConstructor, obtained_by="call session.connection()"):
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


_new_connection_binding = internal_constructor(ConnectionBinding)


#: which state each state may move to: the seed's state machine, written down
_TRANSITIONS: dict[TransactionState, frozenset[TransactionState]] = {
    TransactionState.ACTIVE: frozenset(
        {
            TransactionState.PREPARED,
            TransactionState.COMMITTED,
            TransactionState.DEACTIVE,
            TransactionState.CLOSED,
        }
    ),
    TransactionState.PREPARED: frozenset(
        {TransactionState.COMMITTED, TransactionState.DEACTIVE, TransactionState.CLOSED}
    ),
    TransactionState.COMMITTED: frozenset({TransactionState.CLOSED}),
    TransactionState.DEACTIVE: frozenset({TransactionState.CLOSED}),
    TransactionState.CLOSED: frozenset(),
}


@final
class SessionTransaction(
    metaclass=NoPublicConstructor, obtained_by="call session.begin() or session.begin_nested()"
):
    """One transaction of a ``Session``: the root, or a SAVEPOINT inside it.

    Attributes:
        parent: the enclosing transaction (``None`` for the root).
        nested: whether this is a SAVEPOINT (``begin_nested()``).
        twophase: whether the root commits in two phases (``prepare()`` first).
        state: where the transaction stands.
        records: what the transaction has done to objects so far.
    """

    def __init__(
        self,
        owner: TransactionOwner,
        parent: SessionTransaction | None = None,
        *,
        nested: bool = False,
        twophase: bool = False,
        join_transaction_mode: JoinTransactionMode = "conditional_savepoint",
        execution_options: Mapping[str, Any] | None = None,
    ) -> None:
        if nested and parent is None:
            raise InvalidRequestError(
                "Can't start a SAVEPOINT transaction when no existing transaction is in "
                "progress; begin one first"
            )
        self._owner = owner
        self.parent = parent
        self.nested = nested
        self.twophase: bool = twophase and parent is None
        self.join_transaction_mode: JoinTransactionMode = join_transaction_mode
        self._execution_options = dict(execution_options or {})
        self.state: TransactionState = TransactionState.ACTIVE
        self.records: TransactionRecords = TransactionRecords()
        self._connections: dict[Engine | Connection, ConnectionBinding] = {}
        self._failure: BaseException | None = None
        #: the SAVEPOINT begun inside this transaction, while it is open
        self._child: SessionTransaction | None = None
        if parent is not None:
            parent._child = self
        owner.transaction_event(TransactionEvent.CREATED, self)

    @property
    def session(self) -> object:
        """The session this transaction belongs to."""
        return self._owner.session

    def __repr__(self) -> str:
        kind = "SAVEPOINT" if self.nested else "root"
        return (
            f"<SessionTransaction {kind} {self.state.value}, "
            f"{len(self._connections)} connection(s)>"
        )

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

    def chain(self) -> list[SessionTransaction]:
        """This transaction and its parents, innermost first."""
        out: list[SessionTransaction] = []
        tx: SessionTransaction | None = self
        while tx is not None:
            out.append(tx)
            tx = tx.parent
        return out

    # -- state checks -----------------------------------------------------------------

    def assert_active(self) -> None:
        """Raise unless the transaction can run statements.

        Raises:
            PendingRollbackError: after a failed flush, until ``rollback()``.
            InvalidRequestError: once committed, prepared or closed.
        """
        self._assert_state(TransactionState.ACTIVE)

    def _assert_state(self, *allowed: TransactionState) -> None:
        """Raise the seed's error for the current state unless it is one of ``allowed``."""
        state = self.state
        if state in allowed:
            return
        match state:
            case TransactionState.ACTIVE:
                raise InvalidRequestError(
                    "This transaction is active; commit() or rollback() it first"
                )
            case TransactionState.DEACTIVE:
                raise PendingRollbackError(
                    "This Session's transaction has been rolled back due to a previous "
                    "exception during flush. To begin a new transaction with this Session, "
                    "first issue Session.rollback(). Original exception was: "
                    f"{self._failure!r}",
                    code="7s2a",
                )
            case TransactionState.PREPARED:
                raise InvalidRequestError(
                    "This session is in 'prepared' state; no further SQL can be emitted "
                    "within this transaction. commit() or rollback() it"
                )
            case TransactionState.COMMITTED:
                raise InvalidRequestError(
                    "This session is in 'committed' state; no further SQL can be emitted "
                    "within this transaction. The session begins a new one when next used"
                )
            case TransactionState.CLOSED:
                raise ResourceClosedError(
                    "This transaction is closed; the session begins a new one when next used"
                )

    def _move(self, state: TransactionState) -> None:
        """Change state along the transition table (a wrong move is a bug here, not yours)."""
        if state not in _TRANSITIONS[self.state]:
            raise AssertionError(f"{self!r} cannot move to {state.value}")
        self.state = state

    # -- connections ------------------------------------------------------------------

    def connection_for(
        self, bind: Engine | Connection, execution_options: Mapping[str, Any] | None = None
    ) -> Connection:
        """The connection for a bind, begun on first use (a SAVEPOINT in a nested one).

        Args:
            bind: the engine or connection.
            execution_options: applied to the connection when it is procured; given
                for a connection already in use, they are ignored with a warning (as
                the seed does).
        """
        binding = self._connections.get(bind)
        if binding is not None and self.state is TransactionState.ACTIVE:
            if execution_options:
                _warn_options_too_late()
            return binding.connection
        self.assert_active()
        if binding is not None:
            return binding.connection
        if self.parent is not None:
            conn = self.parent.connection_for(bind, execution_options)
            _begin_driver_transaction(conn)
            binding = _new_connection_binding(conn, conn.begin_nested(), owns_connection=False)
        elif isinstance(bind, Connection):
            self._apply_options(bind, execution_options)
            binding = self._join(bind)
        else:
            conn = bind.connect()
            try:
                self._apply_options(conn, execution_options)
                binding = _new_connection_binding(conn, self._begin(conn), owns_connection=True)
            except BaseException:
                conn.close()
                raise
        self._connections[bind] = binding
        self._owner.transaction_event(TransactionEvent.BEGUN, self, binding.connection)
        return binding.connection

    def _apply_options(
        self, connection: Connection, execution_options: Mapping[str, Any] | None
    ) -> None:
        options = {**self._execution_options, **(execution_options or {})}
        if options:
            connection.execution_options(**options)

    def _join(self, connection: Connection) -> ConnectionBinding:
        """Begin on a ``Connection`` bind, or join the transaction it is already in.

        How it joins is the session's ``join_transaction_mode`` (see ``config``).
        """
        if not connection.in_transaction():
            return _new_connection_binding(
                connection, self._begin(connection), owns_connection=False
            )
        mode = self.join_transaction_mode
        if mode == "conditional_savepoint":
            mode = "create_savepoint" if connection.in_nested_transaction() else "rollback_only"
        match mode:
            case "create_savepoint":
                _begin_driver_transaction(connection)
                savepoint = connection.begin_nested()
                return _new_connection_binding(connection, savepoint, owns_connection=False)
            case "control_fully":
                return _new_connection_binding(
                    connection, connection.get_transaction(), owns_connection=False
                )
            case "rollback_only":
                return _new_connection_binding(connection, None, owns_connection=False)
            case _:
                assert_never(mode)

    def _begin(self, connection: Connection) -> Transaction:
        if not self.twophase:
            return connection.begin()
        try:
            return connection.begin_twophase()
        except NotImplementedError:
            raise InvalidRequestError(
                f"two-phase commit is not available on {connection.dialect.name}: its "
                "database or driver has no PREPARE TRANSACTION (XA). Create the Session "
                "without twophase=True, or use PostgreSQL or MariaDB for this bind"
            ) from None

    # -- ending -----------------------------------------------------------------------

    def prepare(self) -> None:
        """Flush, then PREPARE every connection: the first phase of a two-phase commit.

        Raises:
            InvalidRequestError: if the session is not two-phase, or this is a SAVEPOINT.
        """
        if not self.twophase:
            raise InvalidRequestError(
                "'twophase' mode not enabled, or not root transaction; can't prepare. "
                "Create the Session with twophase=True, and prepare the root transaction"
            )
        self._assert_state(TransactionState.ACTIVE)
        self._prepare()

    def _prepare(self) -> None:
        """Release inner SAVEPOINTs, flush, and PREPARE (two-phase roots only)."""
        self._owner.transaction_event(TransactionEvent.BEFORE_COMMIT, self)
        child = self._child
        if child is not None:
            child.commit()
        self._owner.flush_before_commit()
        if not self.twophase:
            return
        try:
            for binding in self._connections.values():
                if isinstance(binding.transaction, TwoPhaseTransaction):
                    binding.transaction.prepare()
        except BaseException:
            self.rollback()
            raise
        self._move(TransactionState.PREPARED)

    def commit(self) -> None:
        """Commit (or, for a SAVEPOINT, release) after a flush, and finish object lifecycles.

        Inner SAVEPOINTs are released first. A root commit expires objects (with
        ``expire_on_commit``); a released SAVEPOINT hands its records to its parent.

        Raises:
            PendingRollbackError: after a failed flush.
            InvalidRequestError: if the transaction is committed or prepared elsewhere.
            ResourceClosedError: if it is closed.
        """
        self._assert_state(TransactionState.ACTIVE, TransactionState.PREPARED)
        if self.state is TransactionState.ACTIVE:
            self._prepare()
        try:
            for binding in self._connections.values():
                if binding.transaction is not None:
                    binding.transaction.commit()
        except BaseException:
            self.rollback()
            raise
        self._move(TransactionState.COMMITTED)
        self._owner.transaction_event(TransactionEvent.COMMITTED, self)
        if self.parent is not None:
            release_into(self.parent.records, self.records)
        else:
            owner = self._owner
            remove_snapshot(owner.objects, self.records, expire_objects=owner.expire_on_commit)
        self.close()

    def rollback(self) -> None:
        """Roll back, and restore the session's objects from the records.

        Inner SAVEPOINTs are rolled back first, each restoring what it did. A SAVEPOINT
        expires only the objects changed inside it (the seed's ``dirty_only``).

        Raises:
            ResourceClosedError: if the transaction is closed.
            InvalidRequestError: if it has been committed.
        """
        self._assert_state(
            TransactionState.ACTIVE, TransactionState.PREPARED, TransactionState.DEACTIVE
        )
        child = self._child
        if child is not None:
            child.rollback()
        objects = self._owner.objects
        if self.state is not TransactionState.DEACTIVE:
            try:
                self._rollback_connections()
                self._owner.transaction_event(TransactionEvent.ROLLED_BACK, self)
            finally:
                self._move(TransactionState.DEACTIVE)
                self._restore()
        elif objects.has_changes():
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
        self._owner.transaction_event(TransactionEvent.SOFT_ROLLED_BACK, self)

    def _restore(self) -> None:
        restore_snapshot(self._owner.objects, self.records, dirty_only=self.nested)

    def fail(self, error: BaseException) -> None:
        """Roll back underneath after a failed flush; the session then needs ``rollback()``.

        A SAVEPOINT rolls back to itself only: the enclosing transaction keeps its work.
        """
        self._failure = error
        try:
            self._rollback_connections()
            self._owner.transaction_event(TransactionEvent.ROLLED_BACK, self)
        finally:
            self._move(TransactionState.DEACTIVE)
            # the records stay: rollback() restores from them again, for objects
            # attached or added since the failure (the seed's rule)
            self._restore()

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
            elif self.parent is None:
                _rollback_failed_commit(binding)
            else:
                tx.rollback()  # a failed RELEASE: Core forgets the SAVEPOINT

    def close(self, *, invalidate: bool = False) -> None:
        """Release the connections (rolling back what was not committed) and end.

        Args:
            invalidate: invalidate the connections instead of returning them to the
                pool (``Session.invalidate()``: after an error that may have left them
                unusable).

        Closing a closed transaction does nothing.
        """
        if self._closed():
            return
        child = self._child
        if child is not None:
            child.close()
        for binding in self._connections.values():
            if invalidate:
                binding.connection.invalidate()
            if binding.owns_connection:
                binding.connection.close()
            elif binding.transaction is not None and binding.transaction.is_active:
                binding.transaction.rollback()
        self._connections.clear()
        self._move(TransactionState.CLOSED)
        if self.parent is not None and self.parent._child is self:
            self.parent._child = None
        self._owner.transaction_ended(self)
        self._owner.transaction_event(TransactionEvent.ENDED, self)

    def __enter__(self) -> Self:
        self._owner.context_entered(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._owner.context_exited(self)
        if self._closed():
            return  # committed or rolled back inside the block
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                if not self._closed():  # a failed COMMIT has rolled back already
                    self.rollback()
                raise
        else:
            self.rollback()

    def _closed(self) -> bool:
        return self.state is TransactionState.CLOSED


def _begin_driver_transaction(connection: Connection) -> None:
    """Make sure the driver has really begun the transaction before a SAVEPOINT.

    Python's ``sqlite3`` driver begins a transaction only before its first INSERT, UPDATE
    or DELETE. A SAVEPOINT sent before that opens a transaction of its own, and releasing
    it COMMITs everything, whatever the enclosing transaction does later. So on SQLite
    the BEGIN the driver has not sent yet is sent here (SQLAlchemy's documented recipe,
    applied only where it is needed).
    """
    if connection.dialect.name != "sqlite":
        return
    pooled = connection.connection
    driver = pooled.driver_connection  # sqlite3's, or aiosqlite's (the same property)
    if driver is not None and not getattr(driver, "in_transaction", True):
        # through the DBAPI cursor, which awaits aiosqlite's driver where it must
        cursor = pooled.cursor()
        try:
            cursor.execute("BEGIN")
        finally:
            cursor.close()


def _warn_options_too_late() -> None:
    warnings.warn(
        "Connection is already established for the given bind; execution_options "
        "ignored. Give execution options on the first use of the bind in a transaction, "
        "or to the Session (execution_options=...)",
        SAWarning,
        stacklevel=4,
    )


def _rollback_failed_commit(binding: ConnectionBinding) -> None:
    """Roll back the driver's transaction behind a Core transaction that is no longer active.

    When COMMIT fails (the driver refuses it, a ``commit`` listener raises, the process is
    interrupted), Core marks its transaction inactive while the driver's transaction is
    still open; closing the connection would then return it to the pool without a
    ROLLBACK, and the next transaction on it would see the failed writes. So: end Core's
    record of the transaction, then roll the driver back (or, if the connection cannot,
    invalidate it so that the pool discards it).
    """
    assert binding.transaction is not None
    binding.transaction.rollback()  # on an inactive transaction: only forgets it
    connection = binding.connection
    if connection.invalidated or connection.closed:
        return  # Core has already discarded the driver connection
    try:
        connection.connection.rollback()
    except Exception:
        connection.invalidate()


class TransactionViews:
    """What a session says about its transactions (``Session`` provides ``_transaction``)."""

    __slots__ = ()
    _transaction: SessionTransaction | None

    @property
    def transaction(self) -> SessionTransaction | None:
        """The innermost transaction in progress (a SAVEPOINT inside one), if any."""
        return self._transaction

    def get_transaction(self) -> SessionTransaction | None:
        """The root transaction in progress, if one has begun."""
        tx = self._transaction
        return None if tx is None else tx.chain()[-1]

    def get_nested_transaction(self) -> SessionTransaction | None:
        """The innermost SAVEPOINT in progress, if any."""
        tx = self._transaction
        return tx if tx is not None and tx.nested else None

    def in_transaction(self) -> bool:
        """Whether a transaction has begun (explicitly or by autobegin)."""
        return self._transaction is not None

    def in_nested_transaction(self) -> bool:
        """Whether a SAVEPOINT (``begin_nested()``) is in progress."""
        return self.get_nested_transaction() is not None

    @property
    def is_active(self) -> bool:
        """False only while a failed flush waits for ``rollback()``."""
        tx = self._transaction
        return tx is None or tx.state is TransactionState.ACTIVE
