"""``SessionOwner``: the session as its states and its transactions see it.

States load expired attributes through it (``StateOwner``); transactions flush, end and
report what happened to it (``TransactionOwner``). It is the session's own adapter, kept
beside ``_session.py`` so that the facade stays small: it is the one place that turns
those protocol calls into the session's work, and transaction events into its hooks.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias, assert_never, final

from sqlalchemy.engine import Connection
from sqlalchemy.exc import InvalidRequestError

from typed_session import _lifecycle as lifecycle
from typed_session import _loaders as loaders
from typed_session import _loading as loading
from typed_session._state import InstanceState
from typed_session._transaction import SessionTransaction, TransactionEvent
from typed_session.exc import FlushError

if TYPE_CHECKING:
    from typed_session._mapping.mapper import Mapper
    from typed_session._mapping.relationships import Relationship
    from typed_session._session import Session

__all__ = ["IOGuard", "SessionOwner"]

_FLUSH_LIMIT = 100

IOGuard: TypeAlias = Callable[[InstanceState[Any], str, bool], Exception | None]
"""Asked before an implicit load (state, attribute, whether a relationship): the error to
raise if the load may send no SQL now, else ``None``."""


@final
class SessionOwner:
    """The session as its states and its transaction see it (``StateOwner``, ``TransactionOwner``).

    The session and its transactions hold it; it holds the session and the identity map
    holds it weakly, so no reference cycle keeps a session alive: when the user drops
    the session, its objects are detached at once. It holds the session's objects
    strongly, so that a transaction the user kept can still roll back and restore them.
    """

    __slots__ = ("__weakref__", "_session", "io_guard", "objects")

    def __init__(self, session: Session) -> None:
        self._session = weakref.ref(session)
        #: set by the session once its objects exist (they need this owner first)
        self.objects: lifecycle.SessionObjects
        #: consulted before an implicit load (an attribute read, not a session method):
        #: the AsyncSession's refuses one outside a greenlet, naming the attribute
        self.io_guard: IOGuard | None = None

    @property
    def session(self) -> Session | None:
        """The session, while it lives."""
        return self._session()

    def _live(self) -> Session:
        session = self._session()
        if session is None:
            raise InvalidRequestError(
                "the Session this transaction or object belonged to no longer exists; "
                "keep a reference to the session while you use its objects"
            )
        return session

    @property
    def expire_on_commit(self) -> bool:
        """See ``TransactionOwner.expire_on_commit``."""
        return self._live().expire_on_commit

    def load_expired(self, state: InstanceState[Any], key: str | None = None, /) -> None:
        """Autoflush, then load the state's expired attributes (``StateOwner``)."""
        session = self._live()
        guard = self.io_guard
        if guard is not None and key is not None:
            refused = guard(state, key, False)  # noqa: FBT003  # a positional protocol call
            if refused is not None:
                raise refused
        loading.require_identity(state)  # before an autoflush: no SQL for a pending object
        session._autoflush()
        bind = session._bind_for(state.mapper, state.identity_token)
        loading.load_expired(state, session.connection(bind=bind))

    def load_related(self, state: InstanceState[Any], relationship: Relationship, /) -> object:
        """Autoflush, then lazy-load a relationship of the state's object (``StateOwner``)."""
        session = self._live()
        guard = self.io_guard
        refused = None if guard is None else guard(state, relationship.key, True)  # noqa: FBT003
        if refused is not None:
            # no SQL now: a many-to-one already in the identity map is all that can load
            if state.expired:
                raise refused

            def no_connection(mapper: Mapper[Any]) -> Connection:
                raise refused

            return loaders.lazy_load(state, relationship, no_connection)
        if state.expired:
            self.load_expired(state)  # the keys the load is made by
        session._autoflush()

        def connection_for(mapper: Mapper[Any]) -> Connection:
            return session.connection(mapper.class_)

        return loaders.lazy_load(state, relationship, connection_for)

    def cascade_add(self, obj: object, /) -> None:
        """Add an object a ``save-update`` cascade reached (``StateOwner``)."""
        self._live().add(obj)

    def discard_pending(self, obj: object, /) -> None:
        """Expunge a pending orphan (``StateOwner``)."""
        session = self._live()
        if obj in session.new:
            session.expunge(obj)

    def flush_before_commit(self) -> None:
        """Flush until clean; at most 100 rounds, as the seed guards."""
        session = self._live()
        for _ in range(_FLUSH_LIMIT):
            if not self.objects.has_changes():
                return
            session.flush()
        raise FlushError(
            f"over {_FLUSH_LIMIT} consecutive flushes happened within commit(); something "
            "keeps creating or changing objects while the session flushes"
        )

    def transaction_ended(self, transaction: SessionTransaction, /) -> None:
        """The session's current transaction becomes the ended one's parent."""
        session = self._session()
        if session is not None and session._transaction is transaction:
            session._transaction = transaction.parent
            session._identity_map.transaction_begun = transaction.parent is not None

    def transaction_event(
        self,
        event: TransactionEvent,
        transaction: SessionTransaction,
        connection: Connection | None = None,
        /,
    ) -> None:
        """Fire the event hook of what happened, if anyone listens."""
        session = self._session()
        dispatch = self.objects.dispatch
        if session is None or not getattr(dispatch, event.value).listeners:
            return
        match event:
            case TransactionEvent.CREATED:
                dispatch.after_transaction_create(session, transaction)
            case TransactionEvent.BEGUN:
                assert connection is not None
                dispatch.after_begin(session, transaction, connection)
            case TransactionEvent.BEFORE_COMMIT:
                dispatch.before_commit(session)
            case TransactionEvent.COMMITTED:
                dispatch.after_commit(session)
            case TransactionEvent.ROLLED_BACK:
                dispatch.after_rollback(session)
            case TransactionEvent.SOFT_ROLLED_BACK:
                dispatch.after_soft_rollback(session, transaction)
            case TransactionEvent.ENDED:
                dispatch.after_transaction_end(session, transaction)
            case _:
                assert_never(event)

    def context_entered(self, transaction: SessionTransaction, /) -> None:
        """Remember the ``with`` block (work after its transaction ended is refused)."""
        session = self._session()
        if session is not None:
            session._context_blocks.append(transaction)

    def context_exited(self, transaction: SessionTransaction, /) -> None:
        """Forget the ``with`` block."""
        session = self._session()
        if session is not None and transaction in session._context_blocks:
            session._context_blocks.remove(transaction)

    def autobegin(self) -> None:
        """Begin the session's transaction if it has none (``StateOwner``)."""
        session = self._session()
        if session is not None:
            session._autobegin()
