"""``Session[BindT]``: the facade over the identity map, the unit of work and the transaction.

The session autobegins: the first operation that needs the database procures a
connection and begins a transaction, which lasts until ``commit()``, ``rollback()`` or
``close()``. This module holds the public API and the orchestration only; the work is
done below it, and nothing below calls back up:

* ``lifecycle`` moves objects from state to state (the only writer of those fields);
* ``unitofwork`` plans a flush, ``persistence`` runs the plan, ``loading`` runs queries;
* ``transaction`` ends transactions, and talks to the session only through the
  ``TransactionOwner`` protocol, as states load expired attributes through ``StateOwner``:
  both are implemented by ``owner.SessionOwner``, the session as the layers below see it.
"""

from __future__ import annotations

import itertools
import warnings
import weakref
from collections.abc import Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, Never, TypeVar

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Engine, Result
from sqlalchemy.exc import (
    ArgumentError,
    InvalidRequestError,
    NoResultFound,
    SAWarning,
    StatementError,
    UnboundExecutionError,
)
from sqlalchemy.sql import Executable
from typing_extensions import TypeVar as TypeVarDefault
from typing_extensions import Unpack

from typed_session import _cascade as cascade
from typed_session import _dependency as dependency
from typed_session import _lifecycle as lifecycle
from typed_session import _loaders as loaders
from typed_session import _loading as loading
from typed_session import _prepare as prepare
from typed_session._binds import BindMap, BindResolver
from typed_session._bulk import BulkMethods
from typed_session._config import SessionConfig, SessionOptions, validate_options
from typed_session._events import SessionEvents, session_events
from typed_session._identity import BARE, IdentityMap
from typed_session._loading import ExecutionOptions, ForUpdate, Params
from typed_session._mapping.mapper import Mapper, mapper_of
from typed_session._mapping.relationships import any_joined_defaults
from typed_session._merge import MergeMethods
from typed_session._owner import SessionOwner
from typed_session._persistence import execute_plan
from typed_session._query import Query
from typed_session._records import internal_constructor
from typed_session._refreshing import RefreshMethods
from typed_session._state import InstanceState, instance_state, state_of
from typed_session._statements import StatementMethods
from typed_session._transaction import SessionTransaction, TransactionState, TransactionViews
from typed_session._typing import IdentityToken
from typed_session._views import ObjectViews
from typed_session.exc import FlushError, ObjectDeletedError, ObjectStateError, describe

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Self

_new_session_transaction = internal_constructor(SessionTransaction)


_new_query = internal_constructor(Query)


__all__ = ["BindT", "Session", "close_all_sessions"]

#: the bind a session was made with; covariant (``bind`` is read-only), so that a
#: ``Session[Engine]`` and a ``Session[Connection]`` are both a ``Session`` (the default,
#: ``Session[Engine | Connection]``)
BindT = TypeVarDefault(
    "BindT", bound=Engine | Connection, default=Engine | Connection, covariant=True
)
_O = TypeVar("_O")

_ids = itertools.count(1)
#: every session alive, for close_all_sessions()
_SESSIONS: weakref.WeakValueDictionary[int, Session] = weakref.WeakValueDictionary()
#: what get() hands to normalize_identity() on a single-column key (all else is the key)
_COMPOSITE_IDENT_TYPES = frozenset({tuple, list, dict})
#: entity class -> mapper, filled on first use (cheaper than the class's own __dict__)
_MAPPERS: dict[type[Any], Mapper[Any]] = {}
_AUTOFLUSH_DETAIL = (
    "raised as a result of Query-invoked autoflush; consider using a session.no_autoflush "
    "block if this flush is occurring prematurely"
)


class Session(
    StatementMethods,
    RefreshMethods,
    MergeMethods,
    BulkMethods,
    TransactionViews,
    ObjectViews,
    Generic[BindT],
):
    """A unit of work over one bind: tracks objects, flushes their changes, commits.

    Args:
        bind: the ``Engine`` or ``Connection`` statements run on. Given a
            ``Connection`` already in a transaction, the session joins that transaction
            and never commits it (a test fixture can roll everything back).
        **options: ``autoflush`` (flush before queries, default True),
            ``expire_on_commit`` (expire every object after commit, default True) and
            ``info`` (a dictionary of your own); see ``SessionOptions``.

    Raises:
        SessionConfigError: an unknown option or a value of the wrong type.
        ArgumentError: a bind that is neither an ``Engine`` nor a ``Connection``.
    """

    def __init__(self, bind: BindT | None = None, **options: Unpack[SessionOptions]) -> None:
        if bind is not None and not isinstance(bind, Engine | Connection):
            raise ArgumentError(
                f"Session() bind must be an Engine or a Connection, not {bind!r}; make one "
                "with sqlalchemy.create_engine(url)"
            )
        config: SessionConfig = validate_options("Session", dict(options))
        self._bind: BindT | None = bind
        self._binds: BindMap = BindMap.of(config.binds)
        self._bind_resolver: BindResolver | None = config.bind_resolver
        self.config = config
        self.autoflush: bool = config.autoflush
        self.expire_on_commit: bool = config.expire_on_commit
        self.info: dict[Any, Any] = dict(config.info or {})
        self.hash_key: int = next(_ids)
        _SESSIONS[self.hash_key] = self
        self._owner = owner = SessionOwner(self)
        self._identity_map = imap = IdentityMap(owner)
        self._objects = owner.objects = objects = lifecycle.SessionObjects(
            imap, session_events, self
        )
        self._events: SessionEvents | None = None
        #: set while a flush sends its statements: add() and delete() then warn
        self._executing = False
        #: set while add() follows the save-update cascade (one walk, not one per object)
        self._cascading = False
        #: the identity map's mapper -> {key: state} tables for the default identity token
        self._default_tables = imap.default_tables
        self._new = objects.new
        self._deleted = objects.deleted
        self._transaction: SessionTransaction | None = None
        self._flushing = False
        #: the transactions whose ``with`` blocks are running, outermost first
        self._context_blocks: list[SessionTransaction] = []

    def __repr__(self) -> str:
        return f"<Session {self.hash_key} bind={self.bind!r}>"

    @property
    def bind(self) -> BindT | None:
        """The ``Engine`` or ``Connection`` the session was made with (read-only)."""
        return self._bind

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def events(self) -> SessionEvents:
        """This session's event hooks: ``session.events.after_commit.listen(fn)``.

        Listeners on ``typed_session.session_events`` (every session) fire too, first.
        """
        events = self._events
        if events is None:
            events = self._events = SessionEvents(self._objects.dispatch)
            self._objects.dispatch = events
        return events

    def _listen_below(self, parent: SessionEvents) -> None:
        """Take ``parent`` (a ``sessionmaker``'s hooks) as the level above this session's."""
        if self._events is not None:
            raise InvalidRequestError("this session's events already have their levels")
        self._objects.dispatch = parent

    def _warn_if_executing(self, operation: str) -> None:
        if self._executing:
            warnings.warn(
                f"Usage of the '{operation}' operation is not currently supported within "
                "the execution stage of the flush process. Results may not be consistent. "
                "Consider using alternative event listeners or connection-level operations "
                "instead (after_flush, or before_flush for changes to make in this flush)",
                SAWarning,
                stacklevel=3,
            )

    # -- transactions ---------------------------------------------------------------------

    def begin(self, *, nested: bool = False) -> SessionTransaction:
        """Begin the transaction explicitly; use it as a context manager to commit it.

        Args:
            nested: begin a SAVEPOINT instead (``begin_nested()``).

        Raises:
            InvalidRequestError: if a transaction is already in progress.
        """
        if nested:
            return self.begin_nested()
        if self._transaction is not None:
            raise InvalidRequestError(
                "A transaction is already begun on this Session. Sessions begin one by "
                "themselves when first used (an add, a change, a query): commit() or "
                "rollback() it first, or just keep using the session"
            )
        return self._autobegin()

    def _autobegin(self) -> SessionTransaction:
        """The transaction in progress, begun now if there is none (2.x's autobegin).

        Raises:
            InvalidRequestError: inside a ``with session.begin():`` block whose
                transaction was committed or rolled back explicitly.
        """
        tx = self._transaction
        if tx is None:
            if self._context_blocks:
                raise InvalidRequestError(
                    "Can't operate on closed transaction inside context manager.  Please "
                    "complete the context manager before emitting further commands: the "
                    "transaction of this `with session.begin():` block was already "
                    "committed or rolled back inside it"
                )
            config = self.config
            tx = _new_session_transaction(
                self._owner,
                twophase=config.twophase,
                join_transaction_mode=config.join_transaction_mode,
                execution_options=config.execution_options,
            )
            self._transaction = tx
            self._identity_map.transaction_begun = True
        return tx

    def begin_nested(self) -> SessionTransaction:
        """Begin a SAVEPOINT; use it as a context manager to release or roll it back.

        Pending changes are flushed first (into the enclosing transaction). Rolling the
        returned transaction back undoes only what happened inside it, and expires only
        the objects changed there; ``Session.rollback()`` still ends everything.

        Raises:
            PendingRollbackError: after a failed flush, until ``rollback()``.
        """
        self._active_transaction()
        self.flush()
        parent = self._active_transaction()
        tx = self._transaction = _new_session_transaction(self._owner, parent, nested=True)
        return tx

    def _active_transaction(self) -> SessionTransaction:
        tx = self._autobegin()
        if tx.state is not TransactionState.ACTIVE:
            tx.assert_active()
        return tx

    def commit(self) -> None:
        """Flush, then commit the whole transaction (begun on demand), and expire objects.

        Open SAVEPOINTs are released first.

        Raises:
            PendingRollbackError: after a failed flush, until ``rollback()``.
        """
        self._autobegin().chain()[-1].commit()

    def prepare(self) -> None:
        """Flush, then PREPARE the transaction: the first phase of a two-phase commit.

        Raises:
            InvalidRequestError: if the session was not created with ``twophase=True``.
        """
        self._autobegin().chain()[-1].prepare()

    def rollback(self) -> None:
        """Roll back the whole transaction, if any, and restore objects as before it.

        Objects added in the transaction become transient again, deleted ones return to
        the session, and every persistent object is expired. To roll back only a
        SAVEPOINT, call ``rollback()`` on what ``begin_nested()`` returned.
        """
        tx = self._transaction
        if tx is not None:
            tx.chain()[-1].rollback()

    def close(self) -> None:
        """Expunge every object and end the transaction, releasing its connections."""
        self._close(invalidate=False)

    def invalidate(self) -> None:
        """Close the session, invalidating its connections instead of pooling them again.

        For when a connection may be unusable (an error mid-protocol, a process fork).
        """
        self._close(invalidate=True)

    def _close(self, *, invalidate: bool) -> None:
        self.expunge_all()
        tx = self._transaction
        if tx is not None:
            tx.chain()[-1].close(invalidate=invalidate)

    @classmethod
    def close_all(cls) -> None:
        """Close every session in memory (``close_all_sessions()``)."""
        close_all_sessions()

    @property
    def binds(self) -> BindMap:
        """The session's bind map (immutable: ``bind_mapper`` / ``bind_table`` replace it)."""
        return self._binds

    def bind_mapper(self, entity: type[Any], bind: Engine | Connection) -> None:
        """Send the statements of ``entity`` (a class, or a base of entity classes) to ``bind``."""
        self._binds = self._binds.with_entry(entity, bind)

    def bind_table(self, table: Table, bind: Engine | Connection) -> None:
        """Send the statements that use ``table`` to ``bind``."""
        self._binds = self._binds.with_entry(table, bind)

    def get_bind(
        self, entity: type[Any] | None = None, clause: object | None = None
    ) -> Engine | Connection:
        """The bind the statements of an entity class and/or a statement run on.

        1. The ``bind_resolver`` given to the session, if it names one.
        2. The bind map: the entity's class (else each the statement uses), then its MRO.
        3. The bind map: the entity's table, else each table the statement uses (FROMs,
           joins, the target of INSERT, UPDATE or DELETE).
        4. The session's own bind.

        Raises:
            UnboundExecutionError: if none of these gives a bind, naming what was looked for.
        """
        resolver = self._bind_resolver
        if resolver is not None:
            chosen = resolver(entity, clause)
            if chosen is not None:
                return chosen
        found = self._binds.resolve(entity, clause)
        if found is not None:
            return found
        if self.bind is None:
            what = f"mapper {mapper_of(entity)}, " if entity is not None else ""
            raise UnboundExecutionError(
                f"Could not locate a bind configured on {what}SQL expression or this "
                "Session: give the Session a bind (Session(engine)), or binds= for this "
                "entity or its table"
            )
        return self.bind

    def connection(
        self,
        entity: type[Any] | None = None,
        clause: object | None = None,
        bind: Engine | Connection | None = None,
        execution_options: Mapping[str, Any] | None = None,
    ) -> Connection:
        """The connection of the current transaction for a bind (begun on demand).

        Args:
            entity: find the bind of this entity class.
            clause: find the bind of this statement.
            bind: use this bind, rather than finding one.
            execution_options: applied when the connection is procured (ignored, with a
                warning, if the transaction already uses it).
        """
        if bind is None:
            bind = self.get_bind(entity, clause)
        return self._active_transaction().connection_for(bind, execution_options)

    def _records(self) -> lifecycle.TransactionRecords:
        return self._autobegin().records

    def _bind_for(self, mapper: Mapper[Any], token: IdentityToken = None, /) -> Engine | Connection:
        return self.get_bind(mapper.class_)

    # -- the objects ------------------------------------------------------------------------

    def _attached_elsewhere(self, state: InstanceState[Any], obj: object) -> None:
        if state.identity_map is self._identity_map:
            return
        other = state.session
        if isinstance(other, Session):
            raise ObjectStateError(
                obj,
                f"{describe(obj)} is already attached to session {other.hash_key} (this is "
                f"session {self.hash_key}); expunge it there first (other.expunge(obj)), "
                "or work with that session's copy",
            )

    def add(self, instance: object) -> None:
        """Place an object in the session: a new one becomes pending, a detached one persistent.

        Raises:
            UnmappedInstanceError: if the object is not an entity instance.
            ObjectStateError: if it belongs to another session or its row was deleted.
            InvalidRequestError: if another object with its identity is in the session.
        """
        state = instance_state(instance)
        if self._executing:
            self._warn_if_executing("add")
        imap = state.identity_map
        mine = imap is self._identity_map
        if not mine and imap is not None:
            self._attached_elsewhere(state, instance)
        if state.identity is None:
            if not mine or state not in self._new:
                if self._transaction is None:
                    self._autobegin()  # a change begins the transaction; a refusal does not
                lifecycle.to_pending(self._objects, state, instance)
                if state.mapper.relationship_keys:
                    self._cascade_add(instance)
            return
        if mine and not state.deleted:
            self._deleted.pop(state, None)  # the seed's add() takes back a pending delete
            return
        if state.deleted:
            raise ObjectStateError(
                instance,
                f"{describe(instance)} has been deleted (its DELETE was flushed); it cannot "
                "be added again. Roll back the transaction to get it back, or call "
                "make_transient(obj) to insert it as a new row",
            )
        if self._transaction is None:
            self._autobegin()
        lifecycle.attach_detached(self._objects, state, instance)
        if state.mapper.relationship_keys:
            self._cascade_add(instance)

    def _cascade_add(self, instance: object) -> None:
        """``save-update``: the objects related to one just added join the session too.

        One walk of the graph adds them all; it does not go past objects that were in
        the session already (the seed's ``halt_on``).
        """
        if self._cascading:
            return  # the walk in progress reaches what this object reaches
        imap = self._identity_map

        def in_session(obj: object) -> bool:
            return instance_state(obj).identity_map is imap

        self._cascading = True
        try:
            for related in cascade.cascade_iterator(instance, "save_update", halt=in_session):
                self.add(related)
        finally:
            self._cascading = False

    def add_all(self, instances: Iterable[object]) -> None:
        """Add each object (see ``add``); a failure leaves the earlier ones added."""
        add = self.add
        for obj in instances:
            add(obj)

    def delete(self, instance: object) -> None:
        """Mark a persistent (or detached) object for deletion at the next flush.

        Raises:
            UnmappedInstanceError: if the object is not an entity instance.
            ObjectStateError: if it has no row yet, or belongs to another session.
        """
        state: InstanceState[Any] | None = state_of(instance)
        if state is None:
            state = instance_state(instance)
        if state.identity is None:
            raise ObjectStateError(
                instance,
                f"Instance {describe(instance)} is not persisted: it has no row to delete. "
                "A pending object is discarded with session.expunge(obj); a transient one "
                "needs nothing",
            )
        if self._transaction is None:
            self._autobegin()
        if self._executing:
            self._warn_if_executing("delete")
        self._attached_elsewhere(state, instance)
        if state in self._deleted:
            return  # a flushed DELETE is marked again, as the seed does
        if state.identity_map is not self._identity_map:
            lifecycle.attach_detached(self._objects, state, instance)
        # the cascade is followed before anything is marked: a load's autoflush must not
        # DELETE this object yet, and an object reached in another session refuses all
        reached = [
            (rstate, related)
            for related in (
                cascade.cascade_iterator(instance, "delete", load=self._owner.load_related)
                if state.mapper.relationship_keys
                else ()
            )
            if (rstate := instance_state(related)).identity is not None and not rstate.deleted
        ]
        for rstate, related in reached:
            self._attached_elsewhere(rstate, related)
        self._deleted[state] = instance
        for rstate, related in reached:
            if rstate.identity_map is not self._identity_map:
                lifecycle.attach_detached(self._objects, rstate, related)
            self._deleted.setdefault(rstate, related)

    def delete_all(self, instances: Iterable[object]) -> None:
        """``delete`` each object."""
        for obj in instances:
            self.delete(obj)

    def expunge(self, instance: object) -> None:
        """Remove an object from the session; a pending one becomes transient again.

        Raises:
            ObjectStateError: if the object is not in this session.
        """
        state = instance_state(instance)
        if state.identity_map is not self._identity_map:
            raise ObjectStateError(
                instance,
                f"{describe(instance)} is not in this session, so it cannot be expunged",
            )
        lifecycle.detach(self._objects, state)
        if state.mapper.relationship_keys:
            for related in cascade.cascade_iterator(instance, "expunge"):
                if instance_state(related).identity_map is self._identity_map:
                    lifecycle.detach(self._objects, instance_state(related))

    def enable_relationship_loading(self, instance: object) -> None:
        """Let an object without a row load its relationships through this session.

        The object is not added: its many-to-one relationships load by the foreign-key
        values it holds (its collections by its key, if it has one), as they would on a
        persistent object. The seed's tool for a transient object given its keys by hand.

        Raises:
            ObjectStateError: if the object has a row (it loads its relationships anyway).
        """
        state = instance_state(instance)
        if state.identity is not None:
            raise ObjectStateError(
                instance,
                f"{describe(instance)} has a row: it loads its relationships in the session "
                "it is attached to; enable_relationship_loading() is for an object without one",
            )
        lifecycle.load_relationships_through(state, self._identity_map)

    def expunge_all(self) -> None:
        """Remove every object from the session."""
        tx = self._transaction
        chain = [] if tx is None else tx.chain()
        lifecycle.detach_all(self._objects, [s for t in chain for s in t.records.deleted])

    # -- reading ----------------------------------------------------------------------------

    def get(
        self,
        entity: type[_O],
        ident: object,
        /,
        *,
        populate_existing: bool = False,
        with_for_update: ForUpdate = None,
        identity_token: IdentityToken = None,
    ) -> _O | None:
        """The object of ``entity`` with primary key ``ident``: from the identity map, else SQL.

        ``ident`` is the key value, a tuple of values for a composite key, or a mapping
        of attribute names to values. With ``populate_existing`` or ``with_for_update``
        the row is always selected (``FOR UPDATE`` where the backend has it) and an
        object already in the session takes its values, its unflushed changes dropped.
        ``identity_token`` names the shard the row lives in (``ShardedSession``).

        Raises:
            UnmappedClassError: if ``entity`` is not an entity class.
            InvalidRequestError: if ``ident`` does not fit the primary key.
        """
        mapper: Mapper[_O] | None = _MAPPERS.get(entity)
        if mapper is None:
            mapper = _MAPPERS[entity] = mapper_of(entity)
        if not mapper.single_pk or type(ident) in _COMPOSITE_IDENT_TYPES:
            ident = mapper.normalize_identity(ident)
        if populate_existing or with_for_update:
            return self._get_fresh(mapper, ident, with_for_update, identity_token)
        if identity_token is None:
            table = self._default_tables.get(mapper)
        else:
            table = self._identity_map.table_for(mapper, identity_token)
        entry = None if table is None else table.get(ident)
        if entry is not None:
            obj: _O | None = entry()
            if obj is not None:
                if entry.__class__ is BARE:
                    return obj  # loaded and untouched since
                state: InstanceState[_O] = entry  # type: ignore[assignment]  # not bare
                expired = state.expired
                if expired is None:
                    return obj  # the hot path: loaded, in the identity map
                if not lifecycle.fully_expired(state):
                    return obj  # only some attributes expired: no SQL
                found = self._get_from_database(mapper, ident, None, identity_token)
                if found is None:  # a fully expired object whose row is gone
                    lifecycle.to_deleted(self._objects, self._autobegin().records, [state])
                return found
        return self._get_from_database(mapper, ident, None, identity_token)

    def _get_fresh(
        self, mapper: Mapper[_O], ident: Hashable, lock: ForUpdate, token: IdentityToken
    ) -> _O | None:
        state = self._identity_map.lookup(mapper, ident, token)
        obj = None if state is None else state.obj()
        if state is not None and obj is not None:
            lifecycle.expire(state, obj.__dict__)  # its values come from the row now
        found = self._get_from_database(mapper, ident, lock, token)
        if found is None and state is not None and obj is not None:
            lifecycle.to_deleted(self._objects, self._autobegin().records, [state])
        return found

    def query(self, entity: type[_O], /, *more: Never) -> Query[_O]:
        """The legacy ``Query[T]`` of one entity class, over ``select(entity)``; see ``Query``."""
        return _new_query(self, entity, *more)

    def _run(
        self, statement: Executable, params: Params, execution_options: ExecutionOptions
    ) -> Result[*tuple[Any, ...]]:
        """Autoflush, then run the statement in the transaction (``StatementMethods``)."""
        self._autoflush()
        conn = self.connection(clause=statement)
        options = loaders.eager_options(statement)
        if options or any_joined_defaults():
            statement = loaders.add_joins(statement)

        def eager(mapper: Mapper[Any], objs: list[Any]) -> None:
            if options or mapper.relationship_keys:
                loaders.eager_load(mapper, objs, options, self._connection_for_mapper)

        return loading.execute(
            conn, self._identity_map, statement, params, execution_options, after_load=eager
        )

    def _connection_for_mapper(
        self, mapper: Mapper[Any], token: IdentityToken = None
    ) -> Connection:
        return self.connection(bind=self._bind_for(mapper, token))

    def _get_from_database(
        self, mapper: Mapper[_O], ident: Hashable, lock: ForUpdate, token: IdentityToken
    ) -> _O | None:
        self._autoflush()
        conn = self._connection_for_mapper(mapper, token)
        return loading.get_by_identity(conn, self._identity_map, mapper, ident, lock, token)

    def get_one(self, entity: type[_O], ident: object, /) -> _O:
        """Like ``get``, but raise instead of returning ``None``.

        Raises:
            NoResultFound: if there is no such row.
        """
        obj = self.get(entity, ident)
        if obj is None:
            raise NoResultFound(
                f"No row was found when one was required: no {entity.__name__} with "
                f"primary key {ident!r}. Use get() to receive None instead"
            )
        return obj

    # -- flushing ---------------------------------------------------------------------------

    @property
    @contextmanager
    def no_autoflush(self) -> Iterator[Self]:
        """A context manager in which queries do not autoflush: ``with session.no_autoflush:``.

        ``session.autoflush`` is ``False`` inside the block and restored after it.
        """
        autoflush = self.autoflush
        self.autoflush = False
        try:
            yield self
        finally:
            self.autoflush = autoflush

    def _autoflush(self) -> None:
        if self.autoflush and not self._flushing and self._objects.has_changes():
            try:
                self.flush()
            except StatementError as err:
                err.add_detail(_AUTOFLUSH_DETAIL)
                raise
            except Exception as err:
                err.add_note(_AUTOFLUSH_DETAIL)
                raise

    def flush(self) -> None:
        """Write pending inserts, updates and deletes to the database, in dependency order.

        On failure the whole transaction is rolled back and the session restored from
        its snapshot; it then needs ``rollback()`` before it is used again.

        Raises:
            InvalidRequestError: if called while a flush is running.
            FlushError: if an object cannot be written as it stands.
        """
        if self._flushing:
            raise InvalidRequestError("Session is already flushing; flush() cannot nest")
        if not self._objects.has_changes():
            return
        self._flushing = True
        try:
            self._flush()
        finally:
            self._flushing = False

    def _flush(self) -> None:
        """Load, plan, check, execute, and move the objects on: the unit of work, in order."""
        objects = self._objects
        dispatch = objects.dispatch
        tx = self._transaction
        if tx is not None and tx.state is TransactionState.DEACTIVE:
            tx.assert_active()  # "needs rollback()" comes before any check of the plan
        if dispatch.before_flush.listeners:
            dispatch.before_flush(self)  # may still add, change or delete objects
        try:
            prepare.load_expired_keys(objects, self._owner.load_expired)
            deps = dependency.resolve(objects, self._owner.load_related, self.delete)
            plan = prepare.plan_with_rows_checked(
                objects, self._bind_for, self._owner.load_expired, self._records, deps
            )
        except (FlushError, ObjectDeletedError, UnboundExecutionError):
            raise  # refused before any write: the session stays usable
        except BaseException as err:  # the loads' SQL failed, or was interrupted
            tx = self._transaction
            if tx is not None and tx.is_active:
                tx.fail(err)
            raise
        for state in plan.clean:
            lifecycle.mark_clean(state)
        if plan.empty:
            return
        tx = self._active_transaction()
        try:
            self._executing = True
            try:
                outcome = execute_plan(plan, tx.connection_for)
            finally:
                self._executing = False
            if dispatch.after_flush.listeners:
                dispatch.after_flush(self, plan)
            lifecycle.after_flush(objects, tx.records, outcome)
            if dispatch.after_flush_postexec.listeners:
                dispatch.after_flush_postexec(self, plan)
        except BaseException as err:  # a listener's error or an interrupt too
            tx.fail(err)
            raise


def close_all_sessions() -> None:
    """Close every session in memory: their objects are detached, connections released."""
    for session in list(_SESSIONS.values()):
        session.close()
