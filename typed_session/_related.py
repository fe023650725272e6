"""What happens in memory when a relationship changes: both sides, history, cascade, orphans.

Appending ``child`` to ``parent.children``, assigning ``child.parent = parent`` or
replacing a whole collection all come here, through the tracked collections and the
relationship attribute. Each change is

* recorded in the owner's history (``lifecycle.record_related``), for the flush;
* mirrored on the other side named by ``back_populates`` (``child.parent`` follows
  ``parent.children.append(child)`` and the other way round), without looping back;
* followed by the ``save-update`` cascade: an object appended to a collection of an
  object in a session joins the session (as in SQLAlchemy 2.x, an assignment that only
  reaches a session through the other side does not);
* and, for a ``delete-orphan`` relationship, a pending object removed from its parent is
  expunged at once, as in SQLAlchemy.

Nothing here sends SQL except through the owner protocol: replacing a persistent
object's unloaded collection, or a one-to-one's unloaded value, loads it first (the
objects leaving it must be known).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from typed_session import _lifecycle as lifecycle
from typed_session._collections import TrackedList, TrackedSet, loaded_collection
from typed_session._mapping.relationships import Direction, Relationship
from typed_session._state import InstanceState, instance_state
from typed_session._typing import MISSING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["RelationshipHooks", "hooks_for", "replace_collection", "set_scalar"]


@final
class RelationshipHooks:
    """The collection hooks of one relationship (one object, shared by its collections)."""

    __slots__ = ("relationship",)

    def __init__(self, relationship: Relationship) -> None:
        self.relationship: Relationship = relationship

    def check(self, item: object, /) -> None:
        """Refuse, before the collection changes, an object of the wrong class."""
        check_type(self.relationship, item)

    def appended(self, owner: object, item: object, /) -> None:
        """An object joined the owner's collection (the user appended it)."""
        joined(self.relationship, owner, item, mirror=True)

    def removed(self, owner: object, item: object, /) -> None:
        """An object left the owner's collection (the user removed it)."""
        left(self.relationship, owner, item, mirror=True)


_HOOKS: dict[Relationship, RelationshipHooks] = {}


def hooks_for(relationship: Relationship) -> RelationshipHooks:
    """The hooks of a relationship's collections."""
    hooks = _HOOKS.get(relationship)
    if hooks is None:
        hooks = _HOOKS[relationship] = RelationshipHooks(relationship)
    return hooks


def check_type(relationship: Relationship, value: object) -> None:
    """Refuse a related object of the wrong class.

    Raises:
        TypeError: naming the attribute, the class it takes and the class it was given.
    """
    target = relationship.target.class_
    if not isinstance(value, target):
        raise TypeError(
            f"{relationship} takes {target.__name__} objects, not "
            f"{type(value).__name__} ({value!r}); nothing was changed"
        )


def empty_collection(
    relationship: Relationship, owner: object
) -> TrackedList[Any] | TrackedSet[Any]:
    """A new, empty tracked collection for ``owner``'s relationship."""
    kind = relationship.collection_class
    assert kind is not None
    return loaded_collection(kind, owner, hooks_for(relationship), ())


def joined(relationship: Relationship, owner: object, item: object, *, mirror: bool) -> None:
    """``item`` joined ``owner``'s collection: record it, mirror it, cascade it.

    History is kept for objects with a row only: the flush writes a new object's
    relationships from their values as they stand.
    """
    owner_state = instance_state(owner)
    item_state = instance_state(item)
    if mirror and relationship.back_populates is not None:
        _mirror_join(relationship.back_populates, item, owner)
    if owner_state.identity is not None:
        lifecycle.record_related(owner_state, owner, relationship.key).add(item_state, item)
    if relationship.direction is Direction.ONE_TO_MANY:
        lifecycle.set_has_parent(item_state, relationship, has_parent=True)
    if mirror:
        _cascade_add(relationship, owner_state, item)


def left(relationship: Relationship, owner: object, item: object, *, mirror: bool) -> None:
    """``item`` left ``owner``'s collection: record it, mirror it, expunge a pending orphan."""
    owner_state = instance_state(owner)
    item_state = instance_state(item)
    if mirror and relationship.back_populates is not None:
        _mirror_leave(relationship.back_populates, item, owner)
    if owner_state.identity is not None:
        lifecycle.record_related(owner_state, owner, relationship.key).remove(item_state, item)
    if relationship.direction is Direction.ONE_TO_MANY:
        lifecycle.set_has_parent(item_state, relationship, has_parent=False)
        _discard_pending_orphan(relationship, owner_state, item_state, item)


def set_scalar(
    relationship: Relationship, obj: object, value: object, *, mirrored_from: object = None
) -> None:
    """Assign a many-to-one or one-to-one attribute (``child.parent = parent``).

    Args:
        relationship: the relationship.
        obj: the object assigned to.
        value: the related object, or ``None``.
        mirrored_from: the object on the other side whose change this mirrors (it is
            not told back).

    Raises:
        TypeError: if ``value`` is not an object of the related class (nothing changes).
    """
    if value is not None and mirrored_from is None:  # a mirrored value is the other side's
        check_type(relationship, value)
    state = instance_state(obj)
    d = obj.__dict__
    old = d.get(relationship.key, MISSING)
    if old is MISSING:
        old = _current_value(relationship, state, obj)
    if value is old:
        return
    d[relationship.key] = value
    back = relationship.back_populates
    if back is not None:
        if old is not None and old is not MISSING and old is not mirrored_from:
            _mirror_leave(back, old, obj)
        if value is not None and value is not mirrored_from:
            # a new object whose old value was known (and was not ``value``) is not in its
            # list: only a persistent one can be, through a list loaded before a change
            _mirror_join(
                back, value, obj, may_be_there=old is MISSING or state.identity is not None
            )
    change = (
        None if state.identity is None else lifecycle.record_related(state, obj, relationship.key)
    )
    if old is not None and old is not MISSING:
        old_state = instance_state(old)
        if change is not None:
            change.remove(old_state, old)
        if relationship.direction is Direction.ONE_TO_MANY:  # a one-to-one's old child
            lifecycle.set_has_parent(old_state, relationship, has_parent=False)
            _discard_pending_orphan(relationship, state, old_state, old)
    if value is not None:
        value_state = instance_state(value)
        if change is not None:
            change.add(value_state, value)
        if relationship.direction is Direction.ONE_TO_MANY:
            lifecycle.set_has_parent(value_state, relationship, has_parent=True)
    if back is not None and back.direction is Direction.ONE_TO_MANY:
        lifecycle.set_has_parent(state, back, has_parent=value is not None)
    if mirrored_from is None and value is not None:
        _cascade_add(relationship, state, value)


def replace_collection(relationship: Relationship, obj: object, values: Iterable[object]) -> None:
    """Assign a whole collection (``parent.children = [a, b]``).

    Raises:
        TypeError: if an object is not of the related class (nothing changes).
    """
    items = list(values)
    for item in items:
        check_type(relationship, item)
    state = instance_state(obj)
    d = obj.__dict__
    current = d.get(relationship.key)
    old: list[Any] | set[Any]
    if current is None:
        loaded = _current_value(relationship, state, obj)
        old = loaded if isinstance(loaded, list | set) else []
    else:
        assert isinstance(current, list | set)
        old = current
    if old is current and list(old) == items:
        return  # ``p.children = p.children``
    kind = relationship.collection_class
    assert kind is not None
    new = loaded_collection(kind, obj, hooks_for(relationship), items)
    d[relationship.key] = new
    old_ids = {id(o) for o in old}
    new_ids = {id(o) for o in new}
    for item in list(old):
        if id(item) not in new_ids:
            left(relationship, obj, item, mirror=True)
    for item in list(new):
        if id(item) not in old_ids:
            joined(relationship, obj, item, mirror=True)
    if state.identity is not None and (not state.related or relationship.key not in state.related):
        lifecycle.record_related(state, obj, relationship.key)  # a new collection object


def _current_value(relationship: Relationship, state: InstanceState[Any], obj: object) -> object:
    """The value a persistent object's unloaded relationship has, without SQL if possible.

    A many-to-one is looked up in the identity map by the object's foreign key; a
    collection or a one-to-one is loaded (the objects leaving it must be known);
    a transient or pending object has nothing yet.
    """
    if state.identity is None:
        return None if relationship.collection_class is None else MISSING
    if relationship.direction is Direction.MANY_TO_ONE and relationship.loads_by_target_key():
        d = obj.__dict__
        keys = relationship.target_identity_keys()
        if any(k not in d for k in keys):
            return MISSING
        values = [d[k] for k in keys]
        if None in values:
            return None
        imap = state.identity_map
        if imap is None:
            return MISSING
        ident = values[0] if len(values) == 1 else tuple(values)
        found = imap.lookup(relationship.target, ident)
        related = None if found is None else found.obj()
        return MISSING if related is None else related
    owner = state.owner
    if owner is None or relationship.direction is Direction.MANY_TO_ONE:
        return MISSING
    return owner.load_related(state, relationship)


def _mirror_join(
    back: Relationship, item: object, owner: object, *, may_be_there: bool = True
) -> None:
    """Make ``owner`` appear in ``item``'s side ``back`` (no report back to ``owner``).

    ``may_be_there=False``: the caller knows ``owner`` is not in the list, which spares
    a scan of it (``child.parent = p`` on a parent with n loaded children).
    """
    if back.collection_class is None:
        set_scalar(back, item, owner, mirrored_from=owner)
        return
    d = item.__dict__
    collection = d.get(back.key)
    if collection is None and instance_state(item).identity is None:
        collection = d[back.key] = empty_collection(back, item)
    if isinstance(collection, list):
        if not may_be_there or not any(o is owner for o in collection):
            list.append(collection, owner)
    elif isinstance(collection, set):
        set.add(collection, owner)
    joined(back, item, owner, mirror=False)


def _mirror_leave(back: Relationship, item: object, owner: object) -> None:
    """Make ``owner`` leave ``item``'s side ``back`` (no report back to ``owner``)."""
    d = item.__dict__
    if back.collection_class is None:
        current = d.get(back.key, MISSING)
        if current is owner or current is MISSING:
            set_scalar(back, item, None, mirrored_from=owner)
        return
    collection = d.get(back.key)
    if isinstance(collection, list):
        for i, o in enumerate(collection):
            if o is owner:
                list.__delitem__(collection, i)
                break
    elif isinstance(collection, set):
        set.discard(collection, owner)
    left(back, item, owner, mirror=False)


def _cascade_add(relationship: Relationship, owner_state: InstanceState[Any], item: object) -> None:
    """``save-update``: an object joining a relationship of an object in a session joins it."""
    if not relationship.cascade.save_update:
        return
    owner = owner_state.owner
    if owner is not None:
        owner.cascade_add(item)


def _discard_pending_orphan(
    relationship: Relationship,
    parent_state: InstanceState[Any],
    state: InstanceState[Any],
    obj: object,
) -> None:
    """A pending object removed from a ``delete-orphan`` parent leaves the session at once."""
    if not relationship.cascade.delete_orphan or state.identity is not None:
        return
    owner = state.owner
    if owner is not None and parent_state.session is owner.session:
        owner.discard_pending(obj)
