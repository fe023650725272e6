"""Every move of an object through its lifecycle, and the records a transaction keeps of them.

The seed's five states (transient, pending, persistent, deleted, detached) are derived from
a few fields of ``InstanceState``: ``identity``, ``identity_map``, ``deleted``, ``strong``,
``expired`` and the change history (``committed`` / ``modified``). This module is the only
code that assigns them (a test in ``tests/unit/test_architecture_rules.py`` keeps it so),
which gives every transition exactly one function: the place where its lifecycle event
will fire, and the one place to read to know what a transition does.

Two containers are kept here besides the functions:

* ``SessionObjects``: a session's objects — its identity map, its pending objects and the
  objects marked for deletion.
* ``TransactionRecords``: what one transaction (or SAVEPOINT) did to objects — inserted,
  updated, deleted, re-keyed — so that its rollback can restore the session as the seed's
  ``_restore_snapshot`` does, its commit can finish the objects' lifecycles
  (``_remove_snapshot``), and a released SAVEPOINT can hand its records to its parent.
  ``Snapshot`` is the same record as an immutable value.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

from sqlalchemy.exc import InvalidRequestError, SAWarning

from typed_session._events import Hook, SessionEvents, session_events
from typed_session._records import NoPublicConstructor, internal_constructor
from typed_session._state import STATE_ATTR, InstanceState, RelatedChange, StateExtra
from typed_session._typing import MISSING, Identity, IdentityToken
from typed_session.exc import describe

if TYPE_CHECKING:
    from typed_session._identity import Entry, IdentityMap
    from typed_session._mapping.relationships import Relationship
    from typed_session._persistence import FlushOutcome

__all__ = [
    "SessionObjects",
    "Snapshot",
    "TransactionRecords",
    "after_flush",
    "attach_detached",
    "detach",
    "detach_all",
    "expire",
    "expire_all",
    "load_relationships_through",
    "mark_clean",
    "mark_loaded",
    "mark_loaded_keys",
    "record_change",
    "record_related",
    "refuse_lazy",
    "release_into",
    "remove_snapshot",
    "restore_snapshot",
    "set_has_parent",
    "to_deleted",
    "to_detached_from_transient",
    "to_pending",
    "to_shard",
    "to_transient",
    "unexpire",
]

_State = InstanceState[Any]


@final
class SessionObjects:
    """The objects of one session: its identity map, pending objects, objects to delete.

    Attributes:
        identity_map: persistent objects by identity (weakly held).
        new: pending objects, in the order they were added (held strongly).
        deleted: objects marked for deletion, not yet flushed (held strongly).
        dispatch: the event hooks the transitions fire (the session's, or the level
            above it while the session has no listeners of its own).
    """

    __slots__ = ("_session", "deleted", "dispatch", "identity_map", "new")

    def __init__(
        self,
        identity_map: IdentityMap,
        dispatch: SessionEvents | None = None,
        session: object | None = None,
    ) -> None:
        self.identity_map: IdentityMap = identity_map
        self.new: dict[_State, object] = {}
        self.deleted: dict[_State, object] = {}
        self.dispatch: SessionEvents = session_events if dispatch is None else dispatch
        self._session = None if session is None else weakref.ref(session)

    @property
    def session(self) -> object | None:
        """The session whose objects these are, passed to event listeners."""
        ref = self._session
        return None if ref is None else ref()

    def has_changes(self) -> bool:
        """Whether a flush has anything to do (or to check)."""
        return bool(self.new or self.deleted or self.identity_map.modified)

    def owns(self, state: _State) -> bool:
        """Whether the state is pending or persistent (not flushed-deleted) here."""
        imap = self.identity_map
        return state.identity_map is imap and (
            state in self.new
            or (state.identity is not None and not state.deleted and imap.holds(state))
        )


@final
@dataclass(frozen=True, slots=True)
class Snapshot(metaclass=NoPublicConstructor, obtained_by="the session takes one per transaction"):
    """What a transaction has done to objects so far, as an immutable value.

    Attributes:
        inserted: states whose INSERT was flushed in the transaction.
        deleted: states whose DELETE was flushed in the transaction.
        rekeyed: states whose primary key changed, with their identity before.
        dirty: persistent states whose UPDATE was flushed in the transaction.
    """

    inserted: frozenset[_State]
    deleted: frozenset[_State]
    rekeyed: tuple[tuple[_State, Identity], ...]
    dirty: frozenset[_State] = frozenset()


_new_snapshot = internal_constructor(Snapshot)


@final
class TransactionRecords:
    """The objects one transaction boundary (the root, or a SAVEPOINT) has changed rows of.

    The seed's ``_new``, ``_dirty``, ``_deleted`` and ``_key_switches``. Dictionaries keep
    the order in which states were recorded; re-keyed states map to their first identity
    in the transaction.
    """

    __slots__ = ("deleted", "dirty", "inserted", "rekeyed")

    def __init__(self) -> None:
        self.inserted: dict[_State, None] = {}
        self.dirty: dict[_State, None] = {}
        self.deleted: dict[_State, None] = {}
        self.rekeyed: dict[_State, Identity] = {}

    def snapshot(self) -> Snapshot:
        """The records as an immutable value."""
        return _new_snapshot(
            frozenset(self.inserted),
            frozenset(self.deleted),
            tuple(self.rekeyed.items()),
            frozenset(self.dirty),
        )

    def clear(self) -> None:
        """Forget everything recorded."""
        self.inserted.clear()
        self.dirty.clear()
        self.deleted.clear()
        self.rekeyed.clear()


# -- change history --------------------------------------------------------------------


def record_change(state: _State, obj: object, d: dict[str, Any], key: str) -> None:
    """Remember the first old value of ``key`` and mark the object modified.

    Called by the instrumented ``__setattr__`` before the new value is stored. A modified
    object is held strongly (``state.strong``) until it is flushed, so that the weak
    identity map cannot lose its changes.
    """
    committed = state.committed
    if committed is None:
        committed = state.committed = {}
    if key not in committed:
        committed[key] = d.get(key, MISSING)
    if not state.modified:
        _mark_modified(state, obj)


def record_related(state: _State, obj: object, key: str) -> RelatedChange:
    """The change record of relationship ``key``; the object is marked modified.

    The caller records what joined or left the relationship in the returned record.
    """
    related = state.related
    if related is None:
        related = state.related = {}
    change = related.get(key)
    if change is None:
        change = related[key] = RelatedChange()
    if not state.modified:
        _mark_modified(state, obj)
    return change


def set_has_parent(state: _State, relationship: Relationship, *, has_parent: bool) -> None:
    """Record whether the object has a parent through a one-to-many relationship now.

    Only ``delete-orphan`` relationships read it (their orphans are found by it): for the
    others nothing is recorded, which spares a dict per child.
    """
    if not relationship.cascade.delete_orphan:
        return
    extra = _extra(state)
    parents = extra.parents
    if parents is None:
        parents = extra.parents = {}
    parents[relationship] = has_parent


def refuse_lazy(state: _State, keys: frozenset[str]) -> None:
    """Lazy loads of these relationships of the object raise (a ``raiseload()`` option)."""
    extra = _extra(state)
    extra.no_lazy = keys if extra.no_lazy is None else extra.no_lazy | keys


def load_relationships_through(state: _State, identity_map: IdentityMap | None) -> None:
    """An object without a row loads its relationships through this session's map."""
    _extra(state).loads_through = identity_map


def _mark_modified(state: _State, obj: object) -> None:
    """The object has changes to flush: hold it strongly and begin the transaction."""
    state.modified = True
    imap = state.identity_map
    if imap is not None and not state.deleted:  # a flushed DELETE: no row to update
        state.strong = obj
        imap.modified[state] = None
        if not imap.transaction_begun:  # a change begins the transaction (2.x)
            owner = imap.owner
            if owner is not None:
                owner.autobegin()


def _extra(state: _State) -> StateExtra:
    """The state's record of rarely needed parts, made on first need."""
    extra = state.extra
    if extra is None:
        extra = state.extra = StateExtra()
    return extra


def mark_clean(state: _State) -> None:
    """Forget the change history: what the object holds is now what the row holds."""
    state.committed = None
    state.related = None
    state.strong = None
    if state.modified:
        state.modified = False
        imap = state.identity_map
        if imap is not None:
            imap.modified.pop(state, None)


# -- expiry and loading ----------------------------------------------------------------


def expire(state: _State, d: dict[str, Any], keys: Iterable[str] | None = None) -> None:
    """Discard loaded values so that the next read reloads them from the database.

    Args:
        state: the object's state.
        d: the object's ``__dict__``.
        keys: the attributes to expire; every column attribute when ``None``.
    """
    if keys is None:
        mark_clean(state)
        mapper = state.mapper
        if len(d) == mapper.dict_size_when_loaded and d.keys() >= mapper.column_key_set:
            # every column loaded and nothing else stored: start afresh
            d.clear()
            d[STATE_ATTR] = state
        else:
            for key in mapper.column_keys:
                d.pop(key, None)
            for key in mapper.relationship_keys:  # relationships load again on access
                d.pop(key, None)
        # the mapper's own frozenset, shared: expire_on_commit allocates nothing per
        # object, and its identity marks a whole-object expiry (get() reloads those)
        state.expired = mapper.column_key_set
        return
    keys = tuple(keys)
    relationship_keys = state.mapper.relationship_keys
    if relationship_keys and not relationship_keys.isdisjoint(keys):
        for key in relationship_keys.intersection(keys):
            d.pop(key, None)  # loaded again on access; not a column to reload
            if state.related:
                state.related.pop(key, None)
        keys = tuple(k for k in keys if k not in relationship_keys)
        if not keys:
            return
    committed = state.committed
    if committed:
        for key in keys:
            committed.pop(key, None)
    pop = d.pop
    for key in keys:
        pop(key, None)
    whole = fully_expired(state)
    expired = frozenset(keys) if not state.expired else state.expired.union(keys)
    if whole:  # expiring more of a whole-object expiry keeps it whole
        mapper = state.mapper
        expired = (
            mapper.column_key_set if expired >= mapper.column_key_set else WholeExpiry(expired)
        )
    state.expired = expired


def expire_all(objects: SessionObjects) -> None:
    """Expire every persistent object of a session.

    The common case — an unmodified object holding exactly its loaded columns — is done
    here without a call per object (``expire_on_commit`` runs this over every object).
    """
    for state in objects.identity_map.all_states():
        obj = state.obj()
        if obj is None:
            continue
        d = obj.__dict__
        mapper = state.mapper
        if (
            not state.modified
            and state.committed is None
            and state.related is None
            and len(d) == mapper.dict_size_when_loaded
            and d.keys() >= mapper.column_key_set
        ):
            d.clear()
            d[STATE_ATTR] = state
            state.strong = None
            state.expired = mapper.column_key_set
        else:
            expire(state, d)


@final
class WholeExpiry(frozenset[str]):
    """What is left of a whole-object expiry once some attributes were assigned.

    The object still counts as expired as a whole (``get()`` reloads it, as SQLAlchemy's
    ``state.expired`` stays set after an assignment); a partial ``expire(obj, names)``
    does not.
    """

    __slots__ = ()


def fully_expired(state: _State) -> bool:
    """Whether the whole object was expired (not just some attributes) and not reloaded."""
    expired = state.expired
    return expired is state.mapper.column_key_set or type(expired) is WholeExpiry


def unexpire(state: _State, key: str) -> None:
    """An expired attribute was assigned: it is loaded again."""
    expired = state.expired
    if expired and key in expired:
        rest = expired - {key}
        if rest and fully_expired(state):
            rest = WholeExpiry(rest)
        state.expired = rest or None


def mark_loaded_keys(state: _State, keys: frozenset[str]) -> None:
    """These attributes were given their row's values (a merge without load)."""
    expired = state.expired
    if expired:
        state.expired = expired - keys or None


def mark_loaded(state: _State) -> None:
    """The loader has filled every expired attribute from a row."""
    state.expired = None


# -- transitions -----------------------------------------------------------------------


def _fire(hook: Hook[...], objects: SessionObjects, states: Iterable[_State]) -> None:
    """Fire a lifecycle hook for each live object (callers test ``hook.listeners`` first)."""
    _fire_objects(hook, objects, [state.obj() for state in states])


def _fire_objects(hook: Hook[...], objects: SessionObjects, objs: Iterable[object]) -> None:
    """Fire a lifecycle hook for objects the caller holds (they may have no other holder)."""
    session = objects.session
    if session is None:
        return
    for obj in objs:
        if obj is not None:
            hook(session, obj)


def to_pending(objects: SessionObjects, state: _State, obj: object) -> None:
    """Transient -> pending: the object is inserted at the next flush."""
    dispatch = objects.dispatch
    if not dispatch.objects_listened:  # the common case: one test, no hook looked at
        state.identity_map = objects.identity_map
        objects.new[state] = obj
        return
    attach = state.identity_map is not objects.identity_map
    if attach and dispatch.before_attach.listeners:
        _fire(dispatch.before_attach, objects, (state,))
    state.identity_map = objects.identity_map
    objects.new[state] = obj
    if attach and dispatch.after_attach.listeners:
        _fire(dispatch.after_attach, objects, (state,))
    hook = dispatch.transient_to_pending
    if hook.listeners:
        _fire(hook, objects, (state,))


def to_shard(state: _State, token: IdentityToken) -> None:
    """A pending object is given the identity token of the shard its row goes to."""
    state.identity_token = token


def attach_detached(objects: SessionObjects, state: _State, obj: object) -> None:
    """Detached -> persistent: index the object under its identity again.

    Raises:
        InvalidRequestError: if another object with its identity is in the session.
    """
    imap = objects.identity_map
    dispatch = objects.dispatch
    if dispatch.before_attach.listeners:
        _fire(dispatch.before_attach, objects, (state,))
    existing = imap.add(state)
    if existing is not None:
        raise InvalidRequestError(
            f"Can't attach instance {describe(obj)}; another instance with key {state.key} "
            f"is already present in this session ({describe(existing.obj())}). Work with "
            "that object instead, or expunge it first"
        )
    state.identity_map = imap
    if state.modified:
        state.strong = obj
        imap.modified[state] = None
    if dispatch.after_attach.listeners:
        _fire(dispatch.after_attach, objects, (state,))
    hook = dispatch.detached_to_persistent
    if hook.listeners:
        _fire(hook, objects, (state,))


def _leaving_hook(objects: SessionObjects, state: _State) -> Hook[...]:
    """The hook of an object leaving the session, by where it stands."""
    dispatch = objects.dispatch
    if state.identity is None:
        return dispatch.pending_to_transient
    return dispatch.deleted_to_detached if state.deleted else dispatch.persistent_to_detached


def _unlink(objects: SessionObjects, state: _State) -> None:
    objects.new.pop(state, None)
    objects.deleted.pop(state, None)
    objects.identity_map.discard(state)
    state.identity_map = None
    state.strong = None


def detach(objects: SessionObjects, state: _State) -> None:
    """Pending -> transient, or persistent / deleted -> detached: leave the session."""
    if not objects.dispatch.objects_listened:
        _unlink(objects, state)
        return
    hook = _leaving_hook(objects, state)
    _unlink(objects, state)
    if hook.listeners:
        _fire(hook, objects, (state,))


def detach_all(objects: SessionObjects, flushed_deletes: Iterable[_State]) -> None:
    """Every object leaves the session (``expunge_all``, ``close``)."""
    imap = objects.identity_map
    listened = objects.dispatch.objects_listened
    # a bare entry's object only has to be forgotten (unless a hook wants to see it go)
    held = imap.all_states() if listened else imap.made_states()
    leaving = [*objects.new, *held, *objects.deleted, *flushed_deletes]
    hooks = [(_leaving_hook(objects, s), s) for s in leaving] if listened else []
    for state in leaving:
        state.identity_map = None
        state.strong = None
    imap.clear()
    objects.new.clear()
    objects.deleted.clear()
    for hook, state in hooks:
        if hook.listeners:
            _fire(hook, objects, (state,))


def to_transient(objects: SessionObjects | None, state: _State) -> None:
    """Any state -> transient: no session, no identity, no history (``make_transient``).

    Loaded values stay; expired ones are forgotten.
    """
    if objects is not None:
        dispatch = objects.dispatch
        hook = (
            dispatch.pending_to_transient
            if state.identity is None
            else (dispatch.persistent_to_transient)
        )
        _unlink(objects, state)
        if hook.listeners:
            _fire(hook, objects, (state,))
    state.identity_map = None
    state.identity = None
    state.identity_token = None
    state.deleted = False
    state.expired = None
    mark_clean(state)


def to_detached_from_transient(state: _State, identity: Identity) -> None:
    """Transient -> detached under ``identity`` (``make_transient_to_detached``).

    The attributes the object does not hold are expired, so that they load once it is
    added to a session.
    """
    state.identity = identity
    state.deleted = False
    mark_clean(state)
    state.expired = state.unloaded() or None


def after_flush(
    objects: SessionObjects, records: TransactionRecords, outcome: FlushOutcome
) -> None:
    """Move every state a successful flush wrote on, and record it in the transaction.

    Pending -> persistent (in bulk), re-keyed states re-indexed, persistent -> deleted,
    and the seed's row switch (a pending object taking over a deleted object's row).
    """
    imap = objects.identity_map
    new = objects.new
    inserted = outcome.inserted
    persisted = objects.dispatch.pending_to_persistent
    # the pending list may hold the only reference: keep the objects for the listeners
    held = list(new.values()) if persisted.listeners else None
    if len(inserted) == len(new):
        new.clear()
    else:
        for state in inserted:
            del new[state]
    # re-keyed rows first: a key one of them left may be the key a new row takes
    _rekey(imap, {state: new for state, (_old, new) in outcome.rekeyed.items()})
    for state, (old, _new) in outcome.rekeyed.items():
        records.rekeyed.setdefault(state, old)
    tables: dict[tuple[Any, IdentityToken], dict[Identity, Entry]] = {}
    for state, ident in zip(inserted, outcome.identities, strict=True):
        where = (state.mapper, state.identity_token)
        table = tables.get(where)
        if table is None:
            table = tables[where] = imap.table_for(*where)
        state.identity = ident
        stale = table.get(ident)
        if stale is not None and stale is not state:
            stale = imap.state_at(table, ident, stale, state.mapper, state.identity_token)
        else:
            stale = None
        table[ident] = state
        if stale is not None:
            _displaced(objects, stale, state)
        if state.committed is not None or state.related is not None:
            mark_clean(state)
    imap.note_added(len(inserted))
    records.inserted.update(dict.fromkeys(inserted))
    for state in outcome.updated:
        mark_clean(state)
    records.dirty.update(dict.fromkeys(outcome.updated))
    for state, keys in outcome.expire.items():
        obj = state.obj()
        if obj is not None:  # values the database set and did not send back
            expire(state, obj.__dict__, keys)
    to_deleted(objects, records, [*outcome.deleted, *(old for _new, old in outcome.switched)])
    _switch_rows(objects, records, outcome.switched)
    if held is not None:
        _fire(persisted, objects, [*inserted, *(state for state, _old in outcome.switched)])
        del held


def _displaced(objects: SessionObjects, stale: _State, state: _State) -> None:
    """Persistent -> detached: a newly flushed row took the identity ``stale`` held.

    A detached object re-attached with the key of a row that was rolled back can meet a
    new row the database gives that key; the new row wins, as in SQLAlchemy, and the old
    object leaves the session so that it can no longer write over the new row.
    """
    warnings.warn(
        f"Identity map already had an identity for {state.key}, replacing it with "
        f"newly flushed object {describe(state.obj())}; the object that held it, "
        f"{describe(stale.obj())}, is detached",
        SAWarning,
        stacklevel=5,
    )
    detach(objects, stale)


def _rekey(imap: IdentityMap, identities: dict[_State, Identity]) -> None:
    """Give states new identities, re-indexing those attached to ``imap``.

    Every state leaves the index before any is indexed again, so that keys rotated among
    several objects (1 -> 2, 2 -> 1) all end up indexed.
    """
    attached = [s for s in identities if s.identity_map is imap]
    for state in attached:
        imap.discard(state)
    for state, identity in identities.items():
        state.identity = identity
    for state in attached:
        imap.add(state)


def to_deleted(objects: SessionObjects, records: TransactionRecords, states: list[_State]) -> None:
    """Persistent -> deleted: its DELETE was flushed, or its row was found gone.

    The transaction is still open: its rollback brings the objects back.
    """
    imap = objects.identity_map
    for state in states:
        objects.deleted.pop(state, None)
        imap.discard(state)
        mark_clean(state)
        state.deleted = True
        records.deleted[state] = None
    hook = objects.dispatch.persistent_to_deleted
    if hook.listeners:
        _fire(hook, objects, states)


def _switch_rows(
    objects: SessionObjects,
    records: TransactionRecords,
    switched: Sequence[tuple[_State, _State]],
) -> None:
    """Pending -> persistent under a deleted object's identity (the seed's row switch)."""
    imap = objects.identity_map
    for state, old in switched:
        del objects.new[state]
        state.identity = old.identity
        imap.add(state)
        mark_clean(state)
        # the row keeps values for what the new object did not set: load them on access
        obj = state.obj()
        if obj is not None:
            d = obj.__dict__
            unset = frozenset(k for k in state.mapper.column_keys if k not in d)
            if unset:
                state.expired = unset
        records.inserted[state] = None


# -- transaction boundaries ------------------------------------------------------------


def remove_snapshot(
    objects: SessionObjects, records: TransactionRecords, *, expire_objects: bool
) -> None:
    """After a commit: deleted objects leave the session; every object expires if asked.

    The seed's ``_remove_snapshot`` for the root transaction.
    """
    for state in records.deleted:
        state.identity_map = None
        state.strong = None
    hook = objects.dispatch.deleted_to_detached
    if hook.listeners:
        _fire(hook, objects, records.deleted)
    if expire_objects:
        expire_all(objects)


def restore_snapshot(
    objects: SessionObjects, records: TransactionRecords, *, dirty_only: bool = False
) -> None:
    """After a rollback: put objects back as they were when the boundary began.

    The seed's ``_restore_snapshot``: objects inserted (or still pending) become
    transient, re-keyed ones take back their old key, deleted ones return, marks for
    deletion are dropped, and persistent objects are expired — all of them, or with
    ``dirty_only`` (a SAVEPOINT) only those changed since or inside the boundary.
    """
    imap = objects.identity_map
    inserted = records.inserted
    dispatch = objects.dispatch
    # persistent (its row was inserted in the boundary) or pending -> transient
    back = (
        [
            (
                dispatch.pending_to_transient
                if s in objects.new
                else dispatch.persistent_to_transient,
                s.obj(),  # held here: unlinking may drop the pending list's reference
            )
            for s in [*inserted, *objects.new]
            if s.identity_map is imap
        ]
        if dispatch.objects_listened
        else []
    )
    for state in [*inserted, *objects.new]:
        _unlink(objects, state)
        state.identity = None
        state.identity_token = None  # a shard is chosen again at the next flush
        mark_clean(state)
    # a re-keyed state whose row was inserted in the boundary stays transient
    _rekey(imap, {s: old for s, old in records.rekeyed.items() if s not in inserted})
    undeleted = []
    for state in records.deleted:
        state.deleted = False  # the DELETE is undone, whether or not still attached
        if state.identity_map is imap:  # not expunged since
            undeleted.append(state)
            displaced = imap.replace(state)  # whatever took its key meanwhile leaves
            if displaced is not None:
                detach(objects, displaced)
    objects.deleted.clear()
    for hook, obj in back:
        if hook.listeners:
            _fire_objects(hook, objects, (obj,))
    if dispatch.deleted_to_persistent.listeners:
        _fire(dispatch.deleted_to_persistent, objects, undeleted)
    # an object whose DELETE is undone may have been changed before it (its UPDATE was
    # never planned, its history cleared by the delete): it is reloaded too
    dirty = {*records.dirty, *undeleted}
    # a bare entry's object is clean: a dirty-only expiry passes it by
    for state in imap.made_states() if dirty_only else imap.all_states():
        if dirty_only and not (state.modified or state in dirty):
            continue
        obj = state.obj()
        if obj is not None:
            expire(state, obj.__dict__)


def release_into(parent: TransactionRecords, child: TransactionRecords) -> None:
    """A released SAVEPOINT hands what it did to its parent (first identities kept)."""
    parent.inserted.update(child.inserted)
    parent.dirty.update(child.dirty)
    parent.deleted.update(child.deleted)
    for state, old in child.rekeyed.items():
        parent.rekeyed.setdefault(state, old)
