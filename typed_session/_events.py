"""Typed event hooks: every event the seed dispatches, as an attribute a type checker knows.

``session.events.after_commit.listen(fn)`` registers ``fn``; mypy and pyright check ``fn``
against the hook's signature (``Hook[P]`` is generic in a ``ParamSpec``), so a misspelled
hook or a listener with the wrong parameters is a type error, not a surprise at run time.
``listen`` returns the function, so it works as a decorator; ``remove`` takes it away.

Hooks live on three levels, each a ``SessionEvents``: ``session_events`` (every session),
a ``sessionmaker``'s ``events`` (every session it makes) and ``session.events`` (one
session). A level's hook fires the listeners of the levels above it first, then its own.
Each hook keeps the resulting tuple of listeners ready (``listeners``), rebuilt when any
level changes, so that firing a hook nobody listens to is one attribute test.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, ParamSpec, final

from sqlalchemy.engine import Connection
from sqlalchemy.exc import InvalidRequestError

from typed_session._records import NoPublicConstructor, internal_constructor

if TYPE_CHECKING:
    from typed_session._session import Session
    from typed_session._transaction import SessionTransaction
    from typed_session._unitofwork import FlushPlan

__all__ = ["Hook", "SessionEvents", "session_events"]

P = ParamSpec("P")


@final
class Hook(
    Generic[P],
    metaclass=NoPublicConstructor,
    obtained_by="read one from session.events (session.events.before_flush)",
):
    """One event: its listeners, those of the levels above it, and how to fire them."""

    __slots__ = ("__weakref__", "_children", "_level", "_own", "_parent", "listeners", "name")

    def __init__(
        self, name: str, parent: Hook[P] | None = None, level: SessionEvents | None = None
    ) -> None:
        self.name: str = name
        self._parent = parent
        #: the events object this hook belongs to, told when the listeners change
        self._level = None if level is None else weakref.ref(level)
        self._own: tuple[Callable[P, object], ...] = ()
        self._children: weakref.WeakSet[Hook[P]] = weakref.WeakSet()
        #: every listener to call, the levels above first: empty when nobody listens
        self.listeners: tuple[Callable[P, object], ...] = () if parent is None else parent.listeners
        if parent is not None:
            parent._children.add(self)

    def listen(self, fn: Callable[P, object], /) -> Callable[P, object]:
        """Call ``fn`` whenever the event happens; returns ``fn`` (a decorator, too)."""
        self._own = (*self._own, fn)
        self._refresh()
        return fn

    def remove(self, fn: Callable[P, object], /) -> None:
        """Stop calling ``fn``.

        Raises:
            InvalidRequestError: if ``fn`` is not listening on this hook at this level.
        """
        if fn not in self._own:
            raise InvalidRequestError(
                f"No listener {fn!r} is registered on {self.name} at this level; remove "
                "it from the events object it was listened on"
            )
        own = list(self._own)
        own.remove(fn)
        self._own = tuple(own)
        self._refresh()

    def _refresh(self) -> None:
        above = () if self._parent is None else self._parent.listeners
        self.listeners = (*above, *self._own)
        level = None if self._level is None else self._level()
        if level is not None:
            level._count_listeners()
        for child in list(self._children):
            child._refresh()

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Fire the event: call every listener, the levels above first."""
        for fn in self.listeners:
            fn(*args, **kwargs)

    def __bool__(self) -> bool:
        return bool(self.listeners)

    def __repr__(self) -> str:
        return f"<Hook {self.name}: {len(self.listeners)} listener(s)>"


_new_hook = internal_constructor(Hook)


@final
class SessionEvents:
    """The hooks of one level (global, one ``sessionmaker``, or one session).

    Transaction events, in the order they happen: ``after_transaction_create``,
    ``after_begin`` (a connection joins the transaction), ``before_commit``,
    ``after_commit``, ``after_rollback`` (the database rolled back),
    ``after_soft_rollback`` (``rollback()`` returned), ``after_transaction_end``.
    Flush events: ``before_flush``, ``after_flush`` (SQL sent, objects not moved yet),
    ``after_flush_postexec`` (objects moved on). Object events: ``before_attach``,
    ``after_attach`` and one per lifecycle transition, fired from the one place the
    transition happens.
    """

    __slots__ = (
        "__weakref__",
        "after_attach",
        "after_begin",
        "after_commit",
        "after_flush",
        "after_flush_postexec",
        "after_rollback",
        "after_soft_rollback",
        "after_transaction_create",
        "after_transaction_end",
        "before_attach",
        "before_commit",
        "before_flush",
        "deleted_to_detached",
        "deleted_to_persistent",
        "detached_to_persistent",
        "objects_listened",
        "pending_to_persistent",
        "pending_to_transient",
        "persistent_to_deleted",
        "persistent_to_detached",
        "persistent_to_transient",
        "transient_to_pending",
    )

    def __init__(self, parent: SessionEvents | None = None) -> None:
        #: whether any object hook of this level (or above) has a listener: the one test
        #: the lifecycle makes per transition when nobody listens
        self.objects_listened: bool = False

        def hook(name: str) -> Hook[...]:  # the same name above, or none at the top
            return _new_hook(name, None if parent is None else getattr(parent, name), self)

        # transactions
        self.after_transaction_create: Hook[[Session, SessionTransaction]] = hook(
            "after_transaction_create"
        )
        self.after_transaction_end: Hook[[Session, SessionTransaction]] = hook(
            "after_transaction_end"
        )
        self.after_begin: Hook[[Session, SessionTransaction, Connection]] = hook("after_begin")
        self.before_commit: Hook[[Session]] = hook("before_commit")
        self.after_commit: Hook[[Session]] = hook("after_commit")
        self.after_rollback: Hook[[Session]] = hook("after_rollback")
        self.after_soft_rollback: Hook[[Session, SessionTransaction]] = hook("after_soft_rollback")
        # flushes
        self.before_flush: Hook[[Session]] = hook("before_flush")
        self.after_flush: Hook[[Session, FlushPlan]] = hook("after_flush")
        self.after_flush_postexec: Hook[[Session, FlushPlan]] = hook("after_flush_postexec")
        # objects
        self.before_attach: Hook[[Session, object]] = hook("before_attach")
        self.after_attach: Hook[[Session, object]] = hook("after_attach")
        self.transient_to_pending: Hook[[Session, object]] = hook("transient_to_pending")
        self.pending_to_transient: Hook[[Session, object]] = hook("pending_to_transient")
        self.pending_to_persistent: Hook[[Session, object]] = hook("pending_to_persistent")
        self.persistent_to_transient: Hook[[Session, object]] = hook("persistent_to_transient")
        self.persistent_to_detached: Hook[[Session, object]] = hook("persistent_to_detached")
        self.detached_to_persistent: Hook[[Session, object]] = hook("detached_to_persistent")
        self.persistent_to_deleted: Hook[[Session, object]] = hook("persistent_to_deleted")
        self.deleted_to_persistent: Hook[[Session, object]] = hook("deleted_to_persistent")
        self.deleted_to_detached: Hook[[Session, object]] = hook("deleted_to_detached")
        self._count_listeners()

    def _count_listeners(self) -> None:
        self.objects_listened = any(getattr(self, name, None) for name in _OBJECT_HOOKS)

    def __repr__(self) -> str:
        active = [name for name in _ALL_HOOKS if getattr(self, name)]
        return f"<SessionEvents listened: {', '.join(active) or 'none'}>"


_OBJECT_HOOKS = (
    "before_attach",
    "after_attach",
    "transient_to_pending",
    "pending_to_transient",
    "pending_to_persistent",
    "persistent_to_transient",
    "persistent_to_detached",
    "detached_to_persistent",
    "persistent_to_deleted",
    "deleted_to_persistent",
    "deleted_to_detached",
)
_ALL_HOOKS = tuple(
    name for name in SessionEvents.__slots__ if name not in ("objects_listened", "__weakref__")
)

session_events: SessionEvents = SessionEvents()
"""The hooks of every session: listeners here fire for all of them."""
