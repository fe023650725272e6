"""``InstanceState[T]``: the one typed record the session keeps per tracked object.

The record is a weak reference to the object with declared slots only: nothing is added
to or deleted from it at run time, and the reference and the bookkeeping are one object.
The object holds its state in its ``__dict__`` (under ``STATE_ATTR``), so the state lives
exactly as long as the object does and a state never keeps an object alive through a
global table. A loaded object that nothing has asked about yet holds an int there
instead: the mark of the identity map that holds it by a bare weak reference
(``_identity``); ``state_in`` makes its state from the map on first need.
The object's lifecycle (transient, pending, persistent, deleted, detached) is not stored
but derived from those fields, so it cannot disagree with them, and only
``_lifecycle.py`` writes those fields. Attribute values live in the object's
``__dict__`` too, which is what keeps a loaded read as cheap as a plain attribute read;
the state holds only what the session needs besides: the identity, the first old value
of each changed attribute, which attributes are expired, and whether the deletion has
been flushed.
"""

from __future__ import annotations

import enum
import weakref
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, final

from typed_session._identity import BARE, MARKED, IdentityKey
from typed_session._mapping.mapper import MAPPER_ATTR, Mapper
from typed_session._records import NoPublicConstructor
from typed_session._typing import MISSING, Identity, IdentityToken
from typed_session.exc import UnmappedInstanceError

if TYPE_CHECKING:
    from typed_session._identity import IdentityMap
    from typed_session._lifecycle import SessionObjects
    from typed_session._mapping.relationships import Relationship


__all__ = [
    "STATE_ATTR",
    "InstanceState",
    "ObjectState",
    "RelatedChange",
    "StateExtra",
    "StateOwner",
    "instance_state",
    "new_instance_state",
    "state_in",
    "state_of",
    "unmark",
]

_O = TypeVar("_O")

#: the key under which an entity instance's ``__dict__`` holds its state
STATE_ATTR: Final = "_ts_state"


@final
class ObjectState(enum.Enum):
    """Where an object stands relative to a session and the database (the seed's five)."""

    TRANSIENT = "transient"
    """Not in a session, no row: a freshly constructed object."""
    PENDING = "pending"
    """Added to a session, not yet inserted."""
    PERSISTENT = "persistent"
    """In a session and backed by a row."""
    DELETED = "deleted"
    """Its DELETE has been flushed; the transaction that did it is still open."""
    DETACHED = "detached"
    """Backed by a row (or was), but in no session."""


class StateOwner(Protocol):
    """What a state needs from the session it is attached to: loading what it lacks.

    The session implements it (through a small adapter, not its private methods); an
    asynchronous session implements it by refusing implicit I/O with a clear message.
    """

    @property
    def session(self) -> object | None:
        """The session, as ``object_session()`` returns it; ``None`` once it is gone."""
        ...

    @property
    def objects(self) -> SessionObjects:
        """The session's objects (``make_transient`` takes an object out of them)."""
        ...

    def autobegin(self) -> None:
        """Begin the session's transaction if it has none: an object was changed."""
        ...

    def load_expired(self, state: InstanceState[Any], key: str | None = None, /) -> None:
        """Load the state's expired attributes into its object.

        ``key`` names the attribute whose read asked for the load (``None`` when the
        session itself loads, as a flush does): an owner may refuse an implicit load.

        Raises:
            ObjectDeletedError: if the row is gone.
        """
        ...

    def load_related(self, state: InstanceState[Any], relationship: Relationship, /) -> object:
        """Load a relationship of the state's object (a lazy load), store and return it."""
        ...

    def cascade_add(self, obj: object, /) -> None:
        """Add an object reached through a ``save-update`` cascade (a related object)."""
        ...

    def discard_pending(self, obj: object, /) -> None:
        """Expunge a pending object that became an orphan of a ``delete-orphan`` parent."""
        ...


@final
class RelatedChange:
    """What happened to one relationship of an object since its last flush.

    A collection's appended and removed objects, or a scalar's new value (added) and
    the value it replaced (removed). An object removed and added back cancels out.
    Objects are held strongly until the flush: they must be written.
    """

    __slots__ = ("added", "removed")

    def __init__(self) -> None:
        self.added: dict[InstanceState[Any], object] = {}
        self.removed: dict[InstanceState[Any], object] = {}

    def add(self, state: InstanceState[Any], obj: object) -> None:
        """Record an object joining the relationship."""
        if self.removed.pop(state, None) is None:
            self.added[state] = obj

    def remove(self, state: InstanceState[Any], obj: object) -> None:
        """Record an object leaving the relationship."""
        if self.added.pop(state, None) is None:
            self.removed[state] = obj


@final
class StateExtra:
    """The parts of an object's state few objects have, kept apart from the record."""

    __slots__ = ("loads_through", "no_lazy", "parents")

    def __init__(self) -> None:
        self.parents: dict[Relationship, bool] | None = None
        self.no_lazy: frozenset[str] | None = None
        self.loads_through: IdentityMap | None = None


@final
class InstanceState(
    weakref.ref[_O], metaclass=NoPublicConstructor, obtained_by="call instance_state(obj)"
):
    """The session's bookkeeping for one entity instance.

    Attributes:
        mapper: the mapper of the object's class.
        obj: the object, or ``None`` once it is gone (the state *is* a weak reference
            to it: calling ``state.obj()`` or ``state()`` reads it).
        identity: the primary key as the identity map keys it (a bare value, or a tuple
            for a composite key); ``None`` until the row exists.
        identity_token: which shard or database the row lives in (``None``: the only one).
        identity_map: the identity map of the session the object is attached to.
        committed: the value each changed attribute had when last loaded or flushed.
        expired: attribute keys whose values were discarded and must be reloaded.
        modified: whether an attribute was written since the last flush.
        deleted: whether the object's DELETE has been flushed in the open transaction.
        strong: the object itself while it is modified, so that the weak identity map
            cannot lose unflushed changes.
        related: the changes to its relationships since the last flush, by key.
        extra: what few objects need (``StateExtra``): read it through ``parents``,
            ``no_lazy`` and ``loads_through``; one slot instead of three keeps the record
            small for every loaded row.
    """

    __slots__ = (
        "committed",
        "deleted",
        "expired",
        "extra",
        "identity",
        "identity_map",
        "identity_token",
        "mapper",
        "modified",
        "related",
        "strong",
    )

    mapper: Mapper[_O]
    identity: Identity | None
    identity_token: IdentityToken
    identity_map: IdentityMap | None
    committed: dict[str, object] | None
    expired: frozenset[str] | None
    modified: bool
    deleted: bool
    strong: _O | None
    related: dict[str, RelatedChange] | None
    extra: StateExtra | None

    # a record, not a reference: hashed and compared by identity (``weakref.ref`` would
    # hash and compare the objects)
    if TYPE_CHECKING:

        def __hash__(self) -> int: ...
        def __eq__(self, other: object, /) -> bool: ...
        def __ne__(self, other: object, /) -> bool: ...
        def obj(self) -> _O | None:
            """The object, or ``None`` once it is gone."""
            ...

    else:
        __hash__ = object.__hash__
        __eq__ = object.__eq__
        __ne__ = object.__ne__
        obj = weakref.ref.__call__

    @property
    def parents(self) -> dict[Relationship, bool] | None:
        """Per delete-orphan relationship: whether the object has a parent there now."""
        extra = self.extra
        return None if extra is None else extra.parents

    @property
    def no_lazy(self) -> frozenset[str] | None:
        """Relationship keys a ``raiseload()`` option refused lazy loads of."""
        extra = self.extra
        return None if extra is None else extra.no_lazy

    @property
    def loads_through(self) -> IdentityMap | None:
        """The map an object without a row loads its relationships through, if any.

        Set by ``Session.enable_relationship_loading``.
        """
        extra = self.extra
        return None if extra is None else extra.loads_through

    def __repr__(self) -> str:
        return (
            f"<InstanceState of {self.mapper.class_.__name__} identity={self.identity!r} "
            f"{self.object_state.value}>"
        )

    @property
    def owner(self) -> StateOwner | None:
        """The owner (a live session) the object is attached to, if any."""
        imap = self.identity_map
        if imap is None:
            return None
        owner = imap.owner
        return None if owner is None or owner.session is None else owner

    @property
    def session(self) -> object | None:
        """The session the object is attached to, if any (``object_session()`` is typed)."""
        owner = self.owner
        return None if owner is None else owner.session

    @property
    def key(self) -> IdentityKey[_O] | None:
        """The object's identity key, or ``None`` before its row exists."""
        ident = self.identity
        if ident is None:
            return None
        pk = ident if isinstance(ident, tuple) else (ident,)
        return IdentityKey(self.mapper.class_, pk, self.identity_token)

    @property
    def object_state(self) -> ObjectState:
        """The lifecycle state, derived from the record."""
        attached = self.owner is not None
        if self.identity is None:
            return ObjectState.PENDING if attached else ObjectState.TRANSIENT
        if not attached:
            return ObjectState.DETACHED
        return ObjectState.DELETED if self.deleted else ObjectState.PERSISTENT

    @property
    def transient(self) -> bool:
        """Whether the object is transient."""
        return self.object_state is ObjectState.TRANSIENT

    @property
    def pending(self) -> bool:
        """Whether the object is pending."""
        return self.object_state is ObjectState.PENDING

    @property
    def persistent(self) -> bool:
        """Whether the object is persistent."""
        return self.object_state is ObjectState.PERSISTENT

    @property
    def detached(self) -> bool:
        """Whether the object is detached."""
        return self.object_state is ObjectState.DETACHED

    @property
    def was_deleted(self) -> bool:
        """Whether the object's DELETE was flushed (deleted, or detached after the commit)."""
        return self.deleted

    def unloaded(self) -> frozenset[str]:
        """The mapped attributes that have no value in the object right now."""
        obj = self.obj()
        if obj is None:
            return frozenset(self.mapper.column_keys)
        d = obj.__dict__
        return frozenset(k for k in self.mapper.column_keys if k not in d)

    def changes(self, d: dict[str, Any]) -> dict[str, object]:
        """The attributes whose current value differs from the committed one."""
        committed = self.committed
        if not committed:
            return {}
        out: dict[str, object] = {}
        for key, old in committed.items():
            if key in d:
                new = d[key]
                if new is not old and (old is MISSING or new != old):
                    out[key] = new
        return out


_ref_new = weakref.ref.__new__


def new_instance_state(
    mapper: Mapper[_O],
    obj: _O,
    identity: Identity | None = None,
    token: IdentityToken = None,
    imap: IdentityMap | None = None,
) -> InstanceState[_O]:
    """Make an object's state and store it in the object (the one way the package does).

    A loaded row's state is born persistent, with its identity, token and map filled in.
    """
    state: InstanceState[_O] = _ref_new(InstanceState, obj)
    state.mapper = mapper
    state.identity = identity
    state.identity_token = token
    state.identity_map = imap
    state.committed = None
    state.expired = None
    state.modified = False
    state.deleted = False
    state.strong = None
    state.related = None
    state.extra = None
    obj.__dict__[STATE_ATTR] = state
    return state


def state_in(obj: _O, d: dict[str, Any]) -> InstanceState[_O] | None:
    """The state of an object whose ``__dict__`` is ``d``; ``None`` if it has none yet.

    An object loaded and not asked about since holds its map's mark instead
    (``_identity``): its state is made now, from that map while it still holds the
    object, else detached (the session let it go, or is gone).
    """
    state = d.get(STATE_ATTR)
    if state.__class__ is int:
        return unmark(obj, d, state)
    return state


def unmark(obj: _O, d: dict[str, Any], mark: int) -> InstanceState[_O]:
    """The state of a marked object (see ``state_in``), made now.

    It runs once for each loaded object that is changed, deleted or asked about, so it
    is written flat: the last lines are ``IdentityMap.state_at``'s, inline (through the
    call it measured 0.15 us slower per object).
    """
    mapper: Mapper[_O] = type(obj).__dict__[MAPPER_ATTR]
    ident = d.get(mapper.pk_keys[0]) if mapper.single_pk else mapper.identity_of(d)
    ref = MARKED.get(mark)
    imap = None if ref is None else ref()
    table = None if imap is None else imap.default_tables.get(mapper)
    if table is not None:
        entry = table.get(ident)
        if entry is not None and entry() is obj:
            if entry.__class__ is not BARE:
                return entry  # type: ignore[return-value]  # a state (the only other kind)
            state = table[ident] = new_instance_state(mapper, obj, ident, None, imap)
            return state
    return new_instance_state(mapper, obj, ident)  # detached: a row, no session


def state_of(obj: object) -> InstanceState[Any] | None:
    """The object's state, or ``None`` if it has none yet (none is made for a new object)."""
    d: dict[str, Any] | None = getattr(obj, "__dict__", None)
    return None if d is None else state_in(obj, d)


def instance_state(instance: _O) -> InstanceState[_O]:
    """Return the state record of an entity instance, creating it for a new object.

    Raises:
        UnmappedInstanceError: if the object is not an instance of an entity.
    """
    try:
        state: InstanceState[_O] | int | None = instance.__dict__.get(STATE_ATTR)
    except AttributeError:  # no __dict__: no entity either
        state = None
    if state is not None:  # only an entity instance has one
        if state.__class__ is int:
            return unmark(instance, instance.__dict__, state)
        return state  # type: ignore[return-value]
    mapper: Mapper[_O] | None = type(instance).__dict__.get(MAPPER_ATTR)
    if mapper is None:
        raise UnmappedInstanceError(instance)
    return new_instance_state(mapper, instance)
