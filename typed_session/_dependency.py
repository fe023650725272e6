"""Relationship rules for the flush: whose foreign key comes from whom, orphans, associations.

Before the planner orders rows, every relationship of the objects being flushed is read:

* a child's foreign key is copied from its parent's key — now, when the parent's key is
  known, or, when the database will generate it in this same flush, right after the
  parent's INSERT (a ``Sync`` the planner places there; the child's row waits for it);
* a child removed from a parent's collection gets a NULL foreign key, unless it is
  deleted; a NOT NULL or primary-key foreign key is refused before any SQL;
* the children of a deleted parent are deleted (``delete`` cascade) or released (their
  key set NULL), or left to the database with ``passive_deletes``;
* orphans of a ``delete-orphan`` relationship are deleted when persistent and refused
  when pending (the seed's "is an orphan" ``FlushError``);
* rows of a many-to-many's association table are inserted and deleted.

The loads this needs (children of a deleted parent) go through the callable the session
passes in; the objects' values change only through ``lifecycle``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, final

from sqlalchemy import Table

from typed_session import _lifecycle as lifecycle
from typed_session._mapping.registry import any_relationships
from typed_session._mapping.relationships import Direction, Relationship
from typed_session._state import InstanceState, instance_state
from typed_session._typing import MISSING
from typed_session.exc import FlushError, describe

if TYPE_CHECKING:
    from typed_session._mapping.mapper import Mapper

__all__ = ["AssociationRow", "Dependencies", "Sync", "resolve"]

_State = InstanceState[Any]
LoadRelated = Callable[[_State, Relationship], object]
Delete = Callable[[object], None]


class Sync(NamedTuple):
    """Copy a parent's key into a child's foreign key, once the parent's row exists."""

    parent: _State
    parent_values: dict[str, Any]
    child: _State
    child_values: dict[str, Any]
    #: ``(parent attribute, child attribute)`` pairs
    pairs: tuple[tuple[str, str], ...]


#: builds a ``Sync`` without the Python-level ``__new__`` of a ``NamedTuple`` (one is
#: made per child of a new parent)
_new_sync: Callable[[tuple[_State, dict[str, Any], _State, dict[str, Any], Any]], Sync] = (
    functools.partial(tuple.__new__, Sync)
)


def _all_given(values: dict[str, Any], pairs: tuple[tuple[str, str], ...]) -> bool:
    """Whether the parent's side of every pair has a value (no generator per call)."""
    for attr, _child in pairs:  # noqa: SIM110 - all(genexpr) is a generator per call
        if values.get(attr) is None:
            return False
    return True


class AssociationRow(NamedTuple):
    """One row of a many-to-many's association table; values read when it is written."""

    left: dict[str, Any]
    left_pairs: tuple[tuple[str, str], ...]
    right: dict[str, Any]
    right_pairs: tuple[tuple[str, str], ...]
    #: the left object's state: its mapper and shard choose the bind
    left_state: _State

    def params(self) -> dict[str, object]:
        """The row's column values, by association column key."""
        out = {col: self.left[attr] for attr, col in self.left_pairs}
        out.update({col: self.right[attr] for attr, col in self.right_pairs})
        return out


@final
@dataclass(slots=True)
class Dependencies:
    """What the relationships of a flush's objects require of its plan.

    Attributes:
        deferred: foreign keys to copy after a parent's INSERT.
        post: foreign keys written by a second UPDATE (``post_update``).
        edges: ``(child, parent)`` of one table: the child's row is written after the
            parent's.
        table_edges: for rows of two tables, one ``(child, parent)`` sample per
            ``(child table, parent table)``: the parent's table is written first.
        forced: foreign-key attributes of persistent children filled by a deferred
            copy: their UPDATE sets them whatever they hold now.
        supplied: foreign-key attributes a pending child gets from its parent (the NOT
            NULL check counts them as given).
        association_inserts: association rows to insert, by table.
        association_deletes: association rows to delete, by table.
        association_clears: ``(table, pairs, values, state)``: every association row of
            a deleted object (``state``: that object's).
    """

    deferred: list[Sync] = field(default_factory=list)
    post: list[Sync] = field(default_factory=list)
    edges: list[tuple[_State, _State]] = field(default_factory=list)
    table_edges: dict[tuple[Table, Table], tuple[_State, _State]] = field(default_factory=dict)
    forced: dict[_State, set[str]] = field(default_factory=dict)
    supplied: dict[_State, frozenset[str]] = field(default_factory=dict)
    association_inserts: dict[Table, list[AssociationRow]] = field(default_factory=dict)
    association_deletes: dict[Table, list[AssociationRow]] = field(default_factory=dict)
    association_clears: list[tuple[Table, tuple[tuple[str, str], ...], dict[str, Any], _State]] = (
        field(default_factory=list)
    )

    @property
    def empty(self) -> bool:
        """Whether the plan needs nothing beyond its rows."""
        return not (
            self.deferred
            or self.post
            or self.edges
            or self.table_edges
            or self.association_inserts
            or self.association_deletes
            or self.association_clears
        )


class _Context:
    """One resolution: the flush's objects and what is being deleted."""

    def __init__(self, objects: lifecycle.SessionObjects, load: LoadRelated) -> None:
        self.objects = objects
        self.load = load
        self.deps = Dependencies()
        self.seen_pairs: set[tuple[Table, int, int, bool]] = set()
        #: one int per link seen, (parent, child, pairs) packed: a tuple each would be one
        #: more object per row for the collector (ids are below 2**64; both sides of a
        #: ``back_populates`` pair share one pairs tuple, ``Relationship.key_pairs``)
        self.seen_syncs: set[int] = set()
        #: the child's foreign-key attributes of each relationship's pairs
        self.fk_keys: dict[tuple[tuple[str, str], ...], frozenset[str]] = {}

    def deleting(self, state: _State) -> bool:
        return state in self.objects.deleted or state.deleted


def resolve(objects: lifecycle.SessionObjects, load: LoadRelated, delete: Delete) -> Dependencies:
    """Read the relationships of the objects to flush (see the module docstring).

    Args:
        objects: the session's objects (pending, modified, marked for deletion).
        load: loads a relationship of a persistent object.
        delete: marks an object for deletion, with its ``delete`` cascade.

    Raises:
        FlushError: for a pending orphan, or a foreign key that cannot be set NULL.
    """
    ctx = _Context(objects, load)
    if not any_relationships():
        return ctx.deps
    _delete_orphans(ctx, delete)
    for state in list(objects.deleted):
        _deleted_parent(ctx, state, delete)
    new = objects.new
    # states only (a list of pairs would allocate a tuple per object), and only those
    # whose class has relationships: the rest of a large flush costs one check each
    for state in [s for s in new if s.mapper.relationship_keys]:
        if not ctx.deleting(state):
            _pending(ctx, state, new[state])
    for state in list(objects.identity_map.modified):
        if ctx.deleting(state):
            continue
        obj = state.obj()
        if obj is None:
            continue
        if state.related:
            _changed(ctx, state, obj)
        if state.committed and state.mapper.relationship_keys:
            _key_changed(ctx, state, obj)
    return ctx.deps


# -- orphans ----------------------------------------------------------------------------


_ORPHAN_RULES: dict[Mapper[Any], tuple[int, list[Relationship]]] = {}


def _orphan_rules(mapper: Mapper[Any]) -> list[Relationship]:
    """The delete-orphan relationships whose children are of ``mapper``'s class."""
    count = len(mapper.registry)
    cached = _ORPHAN_RULES.get(mapper)
    if cached is not None and cached[0] == count:
        return cached[1]
    rules = [
        rel
        for other in mapper.registry.mappers
        if other.relationship_keys
        for rel in other.relationships.values()
        if rel.cascade.delete_orphan and rel.target is mapper
    ]
    _ORPHAN_RULES[mapper] = (count, rules)
    return rules


def _orphaned_by(state: _State, rules: list[Relationship]) -> Relationship | None:
    """The delete-orphan relationship the object has no parent in, if any."""
    parents = state.parents or {}
    for rel in rules:
        has = parents.get(rel)
        if has is False or (has is None and state.identity is None):
            return rel
    return None


def _delete_orphans(ctx: _Context, delete: Delete) -> None:
    objects = ctx.objects
    rules: dict[Mapper[Any], list[Relationship]] = {}
    for mapper in {s.mapper for s in objects.new}:
        rules[mapper] = _orphan_rules(mapper)
    candidates: list[tuple[_State, object]] = []
    if any(rules.values()):
        candidates += [(s, o) for s, o in objects.new.items() if rules[s.mapper]]
    candidates += [(s, s.obj()) for s in objects.identity_map.modified if s.parents]
    for state, obj in candidates:
        mapper = state.mapper
        mapper_rules = rules.get(mapper)
        if mapper_rules is None:
            mapper_rules = rules[mapper] = _orphan_rules(mapper)
        if obj is None or not mapper_rules or ctx.deleting(state):
            continue
        rel = _orphaned_by(state, mapper_rules)
        if rel is None:
            continue
        if state.identity is None:
            raise FlushError(
                f"Instance {describe(obj)} is an unsaved, pending instance and is an orphan "
                f"(is not attached to any parent '{rel.parent.class_.__name__}' instance via "
                f"that classes' '{rel.key}' attribute): append it to a parent's "
                f"{rel.key}, or expunge it",
                instance=obj,
            )
        delete(obj)


# -- saves ------------------------------------------------------------------------------


def _pending(ctx: _Context, state: _State, obj: object) -> None:
    d = obj.__dict__
    for key in state.mapper.relationship_keys:
        if key not in d:
            continue
        rel = state.mapper.relationships[key]
        value = d[key]
        if rel.direction is Direction.MANY_TO_ONE:
            if value is not None:
                _sync(ctx, rel, instance_state(value), value, state, obj)
        elif rel.direction is Direction.ONE_TO_MANY:
            back = rel.back_populates
            back_key = None if back is None or back.uselist else back.key
            for child in _items(value):
                cstate = instance_state(child)
                if (
                    back_key is not None
                    and cstate.identity is None
                    and child.__dict__.get(back_key) is obj
                ):
                    continue  # a pending child syncs itself through its own many-to-one
                if not ctx.deleting(cstate):
                    _sync(ctx, rel, state, obj, cstate, child)
        else:
            for other in _items(value):
                _associate(ctx, rel, obj, other, insert=True)


def _changed(ctx: _Context, state: _State, obj: object) -> None:
    related = state.related
    assert related is not None
    d = obj.__dict__
    for key, change in related.items():
        rel = state.mapper.relationships[key]
        if rel.direction is Direction.MANY_TO_ONE:
            value = d.get(key, MISSING)
            if value is None:
                _null(ctx, rel, state, obj)
            elif value is not MISSING:
                _sync(ctx, rel, instance_state(value), value, state, obj)
        elif rel.direction is Direction.ONE_TO_MANY:
            for cstate, child in change.removed.items():
                if not ctx.deleting(cstate) and not _moved_elsewhere(rel, state, child):
                    _null(ctx, rel, cstate, child)
            for cstate, child in change.added.items():
                if not ctx.deleting(cstate):
                    _sync(ctx, rel, state, obj, cstate, child)
        else:
            for _ostate, other in change.removed.items():
                _associate(ctx, rel, obj, other, insert=False)
            for _ostate, other in change.added.items():
                _associate(ctx, rel, obj, other, insert=True)


def _moved_elsewhere(rel: Relationship, parent: _State, child: object) -> bool:
    """Whether a child removed from ``parent`` now has another parent (it is re-keyed)."""
    back = rel.back_populates
    if back is None:
        return False
    current = child.__dict__.get(back.key, MISSING)
    return current is not MISSING and current is not None and current is not parent.obj()


def _sync(
    ctx: _Context,
    rel: Relationship,
    parent: _State,
    parent_obj: object,
    child: _State,
    child_obj: object,
) -> None:
    """The child's foreign key takes the parent's key (now, after its INSERT, or post-update)."""
    pairs = rel.key_pairs  # (the "one" side's attribute, the "many" side's): parent, child
    mark = (((id(parent) << 64) | id(child)) << 64) | id(pairs)
    if mark in ctx.seen_syncs:  # the same link, read from its other side
        return
    ctx.seen_syncs.add(mark)
    pd = parent_obj.__dict__
    cd = child_obj.__dict__
    deps = ctx.deps
    if rel.post_update:
        deps.post.append(_new_sync((parent, pd, child, cd, pairs)))
        return
    if parent.identity is not None:
        _copy(child, child_obj, cd, [(_key_value(parent, pd, a), c) for a, c in pairs])
        return
    if parent in ctx.objects.new:
        table = child.mapper.table
        if table is parent.mapper.table:  # rows of one table: ordered row by row
            deps.edges.append((child, parent))
        else:  # tables: ordered as tables, so one sample per pair to check the order
            deps.table_edges.setdefault((table, parent.mapper.table), (child, parent))
    if _all_given(pd, pairs):  # a key given, not generated
        _copy(child, child_obj, cd, [(pd[a], c) for a, c in pairs])
        return
    deps.deferred.append(_new_sync((parent, pd, child, cd, pairs)))
    fk_keys = ctx.fk_keys.get(pairs)
    if fk_keys is None:
        fk_keys = ctx.fk_keys[pairs] = frozenset(c for _a, c in pairs)
    if child.identity is None:
        given = deps.supplied.get(child)
        deps.supplied[child] = fk_keys if given is None else given | fk_keys
    else:
        for key in fk_keys:
            if key not in (child.committed or {}):
                lifecycle.record_change(child, child_obj, cd, key)
        deps.forced.setdefault(child, set()).update(fk_keys)


def _key_value(parent: _State, values: dict[str, Any], key: str) -> object:
    """A parent's key attribute: loaded, or read from its identity when expired."""
    if key in values:
        return values[key]
    mapper = parent.mapper
    identity = parent.identity
    if identity is not None and key in mapper.pk_keys:
        return identity[mapper.pk_keys.index(key)] if isinstance(identity, tuple) else identity
    obj = parent.obj()
    return getattr(obj, key)  # an expired attribute that is no key: loaded on access


def _copy(
    child: _State, child_obj: object, cd: dict[str, Any], values: Iterable[tuple[object, str]]
) -> None:
    for value, key in values:
        if cd.get(key, MISSING) is value or (key in cd and cd[key] == value):
            continue
        if child.identity is not None:
            lifecycle.record_change(child, child_obj, cd, key)
        cd[key] = value


def _null(ctx: _Context, rel: Relationship, child: _State, child_obj: object) -> None:
    """A child leaves its parent: its foreign key becomes NULL (if it can)."""
    many = rel.foreign_key_side
    cd = child_obj.__dict__
    for _a, key in rel.key_pairs:
        column = many.columns[key].column
        if column.primary_key or not column.nullable:
            what = "primary-key" if column.primary_key else "NOT NULL"
            raise FlushError(
                f"Dependency rule tried to blank-out {what} column "
                f"'{column.table.name}.{column.name}' on instance {describe(child_obj)}: it "
                f"left {rel} and cannot be without a parent. Delete it too ({_orphan_advice(rel)}"
                "session.delete()), or give it another parent",
                instance=child_obj,
            )
    _copy(child, child_obj, cd, [(None, key) for _a, key in rel.key_pairs])


def _orphan_advice(rel: Relationship) -> str:
    """Where ``delete-orphan`` would go: the one-to-many side of the link, if it has one."""
    one_to_many = rel if rel.direction is Direction.ONE_TO_MANY else rel.back_populates
    if one_to_many is None or one_to_many.direction is not Direction.ONE_TO_MANY:
        return ""
    return f"cascade='all, delete-orphan' on {one_to_many}, or "


def _associate(
    ctx: _Context, rel: Relationship, obj: object, other: object, *, insert: bool
) -> None:
    """One association row between ``obj`` and ``other`` (each pair once, from either side)."""
    assert rel.secondary is not None
    low, high = sorted((id(obj), id(other)))
    mark = (rel.secondary, low, high, insert)
    if mark in ctx.seen_pairs:
        return
    ctx.seen_pairs.add(mark)
    row = AssociationRow(
        obj.__dict__, rel.key_pairs, other.__dict__, rel.target_key_pairs, instance_state(obj)
    )
    target = ctx.deps.association_inserts if insert else ctx.deps.association_deletes
    target.setdefault(rel.secondary, []).append(row)


def _key_changed(ctx: _Context, state: _State, obj: object) -> None:
    """A parent's primary key changes: its children follow (the seed's key switches).

    With ``passive_updates`` (the default) the database's ``ON UPDATE CASCADE`` updates
    the rows, and the loaded children only take the new key in memory; without it, the
    children are loaded and UPDATEd by the flush, after their parent.
    """
    committed = state.committed
    assert committed is not None
    d = obj.__dict__
    mapper = state.mapper
    if all(k not in committed or committed[k] == d.get(k) for k in mapper.pk_keys):
        return
    for rel in mapper.relationships.values():
        if rel.direction is not Direction.ONE_TO_MANY:
            continue
        if rel.passive_updates:
            children = _items(d.get(rel.key))
        elif rel.key in d:
            children = _items(d[rel.key])
        else:  # loaded by the key the rows still hold: the old one
            new_key = {k: d[k] for k in mapper.pk_keys}
            d.update({k: committed[k] for k in mapper.pk_keys if k in committed})
            try:
                children = _items(ctx.load(state, rel))
            finally:
                d.update(new_key)
        for child in children:
            cstate = instance_state(child)
            if ctx.deleting(cstate) or cstate.identity is None:
                continue
            values = [(d[a], c) for a, c in rel.key_pairs]
            if rel.passive_updates:
                child.__dict__.update((c, v) for v, c in values)  # the database did it
            else:
                _copy(cstate, child, child.__dict__, values)


# -- deletes ----------------------------------------------------------------------------


def _deleted_parent(ctx: _Context, state: _State, delete: Delete) -> None:
    obj = state.obj()
    if obj is None or not state.mapper.relationship_keys:
        return
    d = obj.__dict__
    for rel in state.mapper.relationships.values():
        if rel.direction is Direction.MANY_TO_ONE or rel.passive_deletes:
            continue
        if rel.direction is Direction.MANY_TO_MANY:
            assert rel.secondary is not None
            ctx.deps.association_clears.append((rel.secondary, rel.key_pairs, d, state))
            continue
        value = d[rel.key] if rel.key in d else ctx.load(state, rel)
        for child in _items(value):
            cstate = instance_state(child)
            if ctx.deleting(cstate) or cstate.identity is None:
                continue
            if rel.cascade.delete or rel.cascade.delete_orphan:
                delete(child)
            else:
                _null(ctx, rel, cstate, child)


def _items(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, list | set):
        return list(value)
    return [value]
