"""The flush planner: which rows are written, with what, in which order. No I/O.

``plan_flush`` turns pending, modified and deleted states into a ``FlushPlan``: an ordered
tuple of frozen, named steps, each for one table on one bind — insert rows, update rows,
delete rows — and, for relationships (``dependency.Dependencies``), the steps that copy a
parent's generated key into its children, the second UPDATE of ``post_update``, and the
rows of association tables. Every check that can be made before SQL is made here, so
that a refused flush has changed nothing: a pending object missing a required value, two
objects claiming one identity, a cycle between rows.

Tables are ordered by their foreign keys with ``graphlib`` — referenced tables are
inserted into first and deleted from last. Within one table, rows keep the order in which
their objects were added (inserts) or marked (deletes), except that rows of a
self-referential table go level by level: every parent's batch before its children's
(and children's deletes before their parents').
"""

from __future__ import annotations

import functools
import graphlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias, final

from sqlalchemy import Table
from sqlalchemy.exc import NoReferencedTableError

from typed_session._dependency import AssociationRow, Dependencies, Sync
from typed_session._mapping.relationships import Direction
from typed_session._typing import Identity, IdentityToken
from typed_session.exc import FlushError, describe

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from typed_session._identity import IdentityMap
    from typed_session._mapping.mapper import Mapper
    from typed_session._state import InstanceState

__all__ = [
    "AssociationClear",
    "AssociationRows",
    "Bind",
    "BindFor",
    "DeleteRows",
    "FlushPlan",
    "FlushStep",
    "InsertRow",
    "InsertRows",
    "PostUpdateRows",
    "SyncKeys",
    "TableStep",
    "UpdateRow",
    "UpdateRows",
    "plan_flush",
    "table_order",
]

Bind: TypeAlias = "Engine | Connection"
"""Where a step's statements run."""

BindFor: TypeAlias = Callable[["Mapper[Any]", IdentityToken], Bind]
"""Which bind a mapper's rows with an identity token go to (the session's ``get_bind``, or
the shard the token names in a sharded session)."""


class InsertRow(NamedTuple):
    """One pending object to INSERT.

    A ``NamedTuple`` rather than a frozen dataclass: one is made per row, and building a
    tuple costs a fraction of a dataclass's ``__init__`` (``bench/attr_read.py``).
    """

    state: InstanceState[Any]
    #: the object's ``__dict__``: the values to insert, and where generated values go
    values: dict[str, Any]


class UpdateRow(NamedTuple):
    """One row to UPDATE: a modified persistent object, or a row switch."""

    state: InstanceState[Any]
    #: the object's ``__dict__`` (its new primary key, after a key change, is read there)
    values: dict[str, Any]
    #: the columns to set, by attribute key
    changes: dict[str, object]
    #: the identity the row has before the UPDATE (the WHERE clause)
    where: Identity
    #: for a row switch, the deleted object whose row the pending ``state`` takes over
    takes_over: InstanceState[Any] | None = None


#: the same for an ``UpdateRow``, from all five fields
_update_row: Callable[
    [
        tuple[
            InstanceState[Any],
            dict[str, Any],
            dict[str, object],
            Identity,
            InstanceState[Any] | None,
        ]
    ],
    UpdateRow,
] = functools.partial(tuple.__new__, UpdateRow)


@dataclass(frozen=True, slots=True)
class TableStep:
    """What every step is keyed by: one table, on one bind (the mapper names its rows)."""

    table: Table
    bind: Bind
    mapper: Mapper[Any]


@final
@dataclass(frozen=True, slots=True)
class InsertRows(TableStep):
    """INSERT rows into one table, in the order their objects were added.

    The states and their values are two parallel tuples, not a tuple of pairs: a pair
    per pending object would be one more object for the cyclic collector per row.
    """

    states: tuple[InstanceState[Any], ...]
    #: each object's ``__dict__``: the values to insert, and where generated values go
    values: tuple[dict[str, Any], ...]

    @property
    def rows(self) -> tuple[InsertRow, ...]:
        """The (state, values) pairs, for reading the plan (not used by the flush)."""
        return tuple(InsertRow(s, v) for s, v in zip(self.states, self.values, strict=True))


@final
@dataclass(frozen=True, slots=True)
class UpdateRows(TableStep):
    """UPDATE rows of one table, each by the identity it had before the flush."""

    rows: tuple[UpdateRow, ...]


@final
@dataclass(frozen=True, slots=True)
class DeleteRows(TableStep):
    """DELETE rows of one table by primary key, in the order they were marked."""

    states: tuple[InstanceState[Any], ...]


@final
@dataclass(frozen=True, slots=True)
class SyncKeys:
    """Copy parents' keys, generated by the INSERT just run, into their children (no SQL).

    A persistent child's pending UPDATE changes (in ``forced``, by child) are filled as
    well.
    """

    syncs: tuple[Sync, ...]
    forced: dict[InstanceState[Any], dict[str, object]]


@final
@dataclass(frozen=True, slots=True)
class PostUpdateRows(TableStep):
    """The second UPDATE of ``post_update``: children's foreign keys once every row exists."""

    syncs: tuple[Sync, ...]


@final
@dataclass(frozen=True, slots=True)
class AssociationRows:
    """INSERT or DELETE rows of a many-to-many's association table."""

    table: Table
    bind: Bind
    rows: tuple[AssociationRow, ...]
    delete: bool


@final
@dataclass(frozen=True, slots=True)
class AssociationClear:
    """DELETE every association row of a deleted object."""

    table: Table
    bind: Bind
    pairs: tuple[tuple[str, str], ...]
    values: dict[str, Any]


FlushStep: TypeAlias = (
    InsertRows
    | UpdateRows
    | DeleteRows
    | SyncKeys
    | PostUpdateRows
    | AssociationRows
    | AssociationClear
)
"""One step of a flush plan."""


@final
@dataclass(frozen=True, slots=True)
class FlushPlan:
    """An ordered flush: saves parents-first, then deletes children-first.

    Attributes:
        steps: the statements to run, in order.
        clean: modified states whose values turned out unchanged (no SQL; history reset).
    """

    steps: tuple[FlushStep, ...]
    clean: tuple[InstanceState[Any], ...]

    @property
    def empty(self) -> bool:
        """Whether the plan emits no SQL."""
        return not self.steps


def table_order(tables: Iterable[Table]) -> list[Table]:
    """Order tables so that each comes after the tables its foreign keys reference.

    Self-references are ignored (rows of one table keep their own order); tables that
    reference each other in a cycle keep the order they were given in.
    """
    given = list(dict.fromkeys(tables))
    position = {t: i for i, t in enumerate(given)}
    graph: dict[Table, set[Table]] = {
        t: {r for r in _referenced(t) if r in position and r is not t} for t in given
    }
    while True:
        try:
            return list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as err:
            # replace the cycle's own edges by a chain in the given order: each member
            # comes after the one given before it. Every round removes at least one edge
            # pointing against the given order, so this ends.
            cycle = sorted(set(err.args[1]), key=position.__getitem__)
            members = set(cycle)
            for table in cycle:
                graph[table] -= members
            for earlier, later in itertools.pairwise(cycle):
                graph[later].add(earlier)


def _referenced(table: Table) -> Iterator[Table]:
    """The tables ``table``'s foreign keys reference, where they can be resolved."""
    for fk in table.foreign_keys:
        try:
            yield fk.column.table
        except NoReferencedTableError:
            continue  # a table outside the MetaData (e.g. managed by migrations)


@dataclass(slots=True)
class _TableWork:
    """What the planner gathers for one mapper's table (on one shard) before the steps."""

    mapper: Mapper[Any]
    token: IdentityToken
    insert_states: list[InstanceState[Any]]
    insert_values: list[dict[str, Any]]
    updates: list[UpdateRow]
    deletes: list[InstanceState[Any]]


_WorkKey: TypeAlias = "tuple[Mapper[Any], IdentityToken]"


class _Works(dict[_WorkKey, _TableWork]):
    """Each (mapper, identity token)'s work, made on first use (no Python call per row)."""

    def __missing__(self, key: _WorkKey) -> _TableWork:
        work = self[key] = _TableWork(key[0], key[1], [], [], [], [])
        return work


def plan_flush(
    new: Mapping[InstanceState[Any], Any],
    dirty: Iterable[InstanceState[Any]],
    deleted: Mapping[InstanceState[Any], Any],
    *,
    bind_for: BindFor,
    identity_map: IdentityMap | None = None,
    dependencies: Dependencies | None = None,
) -> FlushPlan:
    """Build the plan for pending, modified and deleted states.

    Args:
        new: pending states with their objects, in the order they were added (the
            session's own dict: a list of pairs would be a tuple per object).
        dirty: states written to since their last flush.
        deleted: states marked for deletion with their objects (the session's dict).
        bind_for: the bind of each mapper's rows.
        identity_map: the session's identity map, to refuse a pending object whose key
            a persistent object already has.
        dependencies: what the objects' relationships require (``dependency.resolve``).

    Raises:
        FlushError: if a pending object lacks a value the database cannot supply,
            claims an identity another object has, or its row is in a cycle.
    """
    deps = dependencies if dependencies is not None and not dependencies.empty else None
    supplied = None if dependencies is None else dependencies.supplied
    works = _Works()
    # a pending object taking the key of an object being deleted: the row is kept and
    # UPDATEd to the new object's values (the seed's "row switch"), not deleted first
    by_identity = (
        {(s.mapper, s.identity_token, s.identity): s for s in deleted} if deleted and new else {}
    )
    deleting = {id(s) for s in deleted}
    switched: set[int] = set()
    claimed: dict[tuple[Mapper[Any], IdentityToken, Identity], object] = {}
    make_update = _update_row
    for state, obj in new.items():
        d = obj.__dict__
        mapper, token = state.mapper, state.identity_token
        work = (mapper, token)
        _check_insertable(state, obj, d, supplied.get(state) if supplied else None)
        ident = mapper.identity_of(d)
        if ident is not None:  # a key given by the user, not generated by the database
            if identity_map is not None:
                _check_identity_conflict(obj, state, ident, claimed, identity_map, deleting)
            old = by_identity.get((mapper, token, ident)) if by_identity else None
            if old is not None:
                works[work].updates.append(_switch_row(state, d, old))
                switched.add(id(old))
                continue
        table_work = works[work]
        table_work.insert_states.append(state)
        table_work.insert_values.append(d)
    clean: list[InstanceState[Any]] = []
    for state in dirty:
        obj = state.obj()
        ident = state.identity
        if obj is None or ident is None or (deleting and id(state) in deleting):
            continue
        d = obj.__dict__
        changes = state.changes(d)
        if deps is not None and state in deps.forced:
            for key in deps.forced[state]:
                changes[key] = d.get(key)
        if changes:
            check = state.mapper.check_values
            if check is not None:
                check(obj, d, changes)
            works[state.mapper, state.identity_token].updates.append(
                make_update((state, d, changes, ident, None))
            )
        else:
            clean.append(state)
    for state in deleted:
        if id(state) not in switched:
            works[state.mapper, state.identity_token].deletes.append(state)
    if dependencies is not None and (
        deps is not None or any(w.deletes and w.mapper.relationship_keys for w in works.values())
    ):
        return FlushPlan(_steps_with_dependencies(works, bind_for, dependencies), tuple(clean))
    return FlushPlan(_ordered_steps(works, bind_for), tuple(clean))


def _switch_row(state: InstanceState[Any], d: dict[str, Any], old: InstanceState[Any]) -> UpdateRow:
    """The UPDATE by which a pending object takes over a deleted object's row."""
    mapper = state.mapper
    pk_keys = mapper.pk_keys
    changes: dict[str, object] = {
        k: d[k] for k in sorted(mapper.column_keys) if k in d and k not in pk_keys
    }
    assert old.identity is not None
    return UpdateRow(state, d, changes, old.identity, old)


def _in_table_order(
    works: _Works, bind_for: BindFor
) -> tuple[list[_TableWork], dict[int, Bind], dict[Table, int]]:
    """The works in foreign-key order of their tables, each one's bind, each table's place."""
    order = table_order(w.mapper.table for w in works.values())
    by_table: dict[Table, list[_TableWork]] = {}
    for w in works.values():
        by_table.setdefault(w.mapper.table, []).append(w)
    ordered = [w for t in order for w in by_table[t]]
    binds = {id(w): bind_for(w.mapper, w.token) for w in ordered}
    return ordered, binds, {t: i for i, t in enumerate(order)}


def _ordered_steps(works: _Works, bind_for: BindFor) -> tuple[FlushStep, ...]:
    """Saves in table order (inserts, then updates, per table), then deletes in reverse."""
    ordered, binds, _position = _in_table_order(works, bind_for)
    steps: list[FlushStep] = []
    for w in ordered:
        # UPDATEs first, as SQLAlchemy does: a row renamed away from a unique value
        # frees it for a new row of the same flush
        if w.updates:
            steps.append(UpdateRows(w.mapper.table, binds[id(w)], w.mapper, tuple(w.updates)))
        if w.insert_states:
            steps.append(
                InsertRows(
                    w.mapper.table,
                    binds[id(w)],
                    w.mapper,
                    tuple(w.insert_states),
                    tuple(w.insert_values),
                )
            )
    for w in reversed(ordered):
        if w.deletes:
            steps.append(DeleteRows(w.mapper.table, binds[id(w)], w.mapper, tuple(w.deletes)))
    return tuple(steps)


def _check_insertable(
    state: InstanceState[Any], obj: object, d: dict[str, Any], supplied: frozenset[str] | None
) -> None:
    """Refuse, before any SQL, a pending object with a required value missing (or invalid).

    ``supplied`` are the foreign keys a parent inserted in the same flush fills in.
    """
    mapper = state.mapper
    if mapper.check_values is not None:
        mapper.check_values(obj, d, mapper.column_keys)
    for key in mapper.required_keys:
        if key in d and not (d[key] is None and key in mapper.pk_keys):
            continue
        if supplied and key in supplied:
            continue
        attr = mapper.columns[key]
        what = "primary-key column" if attr.column.primary_key else "NOT NULL column"
        raise FlushError(
            f"cannot insert {describe(obj)}: {type(obj).__name__}.{key} has no value, and "
            f"its {what} {attr.column.table.name}.{attr.column.name} has no default the "
            "database could supply. Assign a value before flushing, or give column() a "
            "default (or server_default)",
            instance=obj,
        )


def _moves_away(state: InstanceState[Any], identity: Identity) -> bool:
    """Whether a persistent object is being given another key by this flush."""
    obj = state.obj()
    if obj is None or not state.modified:
        return False
    return state.mapper.identity_of(obj.__dict__) not in (identity, None)


def _check_identity_conflict(
    obj: object,
    state: InstanceState[Any],
    ident: Identity,
    claimed: dict[tuple[Mapper[Any], IdentityToken, Identity], object],
    imap: IdentityMap,
    deleting: set[int],
) -> None:
    """Refuse, before any SQL, a pending object whose row another object has or claims.

    Rows of one identity on different shards (identity tokens) do not conflict.
    """
    mapper, token = state.mapper, state.identity_token
    first = claimed.setdefault((mapper, token, ident), obj)
    if first is not obj:
        raise FlushError(
            f"new objects {describe(first)} and {describe(obj)} both have identity "
            f"{ident!r}; only one row can have it: give one of them another key, or "
            "expunge one",
            instance=obj,
        )
    existing = imap.lookup(mapper, ident, token)
    if existing is not None and _moves_away(existing, ident):
        existing = None  # its key changes in this flush: its UPDATE goes first
    if existing is not None and id(existing) not in deleting:
        raise FlushError(
            f"new object {describe(obj)} has identity {ident!r}, which conflicts with "
            f"persistent object {describe(existing.obj())} in this session; give the "
            "new object another key, or change the existing object instead",
            instance=obj,
            existing=existing.obj(),
        )


def _levels(
    rows: Sequence[InstanceState[Any]], before: dict[InstanceState[Any], list[InstanceState[Any]]]
) -> list[list[InstanceState[Any]]]:
    """Group rows of one table so that each row's predecessors are in an earlier group.

    Raises:
        FlushError: if rows depend on each other in a cycle.
    """
    if not before or not any(state in before for state in rows):
        return [list(rows)] if rows else []  # no row of this table waits for another
    members = set(rows)
    level: dict[InstanceState[Any], int] = {}
    visiting: set[InstanceState[Any]] = set()

    def depth(state: InstanceState[Any], path: list[InstanceState[Any]]) -> int:
        known = level.get(state)
        if known is not None:
            return known
        if state in visiting:
            cycle = [*path[path.index(state) :], state]
            raise FlushError(
                "Circular dependency detected between rows "
                + " -> ".join(describe(s.obj()) for s in cycle)
                + ": each needs the other's key first. Set post_update=True on one of the "
                "relationships to write that key with a second UPDATE"
            )
        visiting.add(state)
        preds = [p for p in before.get(state, ()) if p in members and p is not state]
        result = 1 + max((depth(p, [*path, state]) for p in preds), default=-1)
        visiting.discard(state)
        level[state] = result
        return result

    for state in rows:
        depth(state, [])
    groups: list[list[InstanceState[Any]]] = [
        [] for _ in range(max(level.values(), default=-1) + 1)
    ]
    for state in rows:  # the given order within a level
        groups[level[state]].append(state)
    return groups


def _delete_predecessors(
    states: Sequence[InstanceState[Any]],
) -> dict[InstanceState[Any], list[InstanceState[Any]]]:
    """For rows of a self-referential table: each parent row waits for its children's."""
    before: dict[InstanceState[Any], list[InstanceState[Any]]] = {}
    if not states:
        return before
    mapper = states[0].mapper
    rels = [
        r
        for r in (mapper.relationships.values() if mapper.relationship_keys else ())
        if r.target.table is mapper.table and r.direction is not Direction.MANY_TO_MANY
    ]
    if not rels:
        return before
    by_identity = {
        (s.identity if isinstance(s.identity, tuple) else (s.identity,)): s for s in states
    }
    for rel in rels:
        ref_keys = tuple(a for a, _c in rel.key_pairs)
        if ref_keys != mapper.pk_keys:
            continue
        for child in states:
            obj = child.obj()
            if obj is None:
                continue
            key = tuple(obj.__dict__.get(c) for _a, c in rel.key_pairs)
            parent = by_identity.get(key)
            if parent is not None and parent is not child:
                before.setdefault(parent, []).append(child)
    return before


def _steps_with_dependencies(
    works: _Works, bind_for: BindFor, deps: Dependencies
) -> tuple[FlushStep, ...]:
    """``_ordered_steps`` with the relationships' steps and row order woven in."""
    ordered, binds, position = _in_table_order(works, bind_for)
    before: dict[InstanceState[Any], list[InstanceState[Any]]] = {}
    for (child_table, parent_table), (child, parent) in deps.table_edges.items():
        if position.get(parent_table, -1) > position.get(child_table, -1):
            raise FlushError(
                f"Circular dependency detected between rows {describe(child.obj())} and "
                f"{describe(parent.obj())}: their tables reference each other. Set "
                "post_update=True on one of the relationships to write that key with a "
                "second UPDATE"
            )
    for child, parent in deps.edges:
        before.setdefault(child, []).append(parent)
    syncs_after: dict[InstanceState[Any], list[Sync]] = {}
    for sync in deps.deferred:
        syncs_after.setdefault(sync.parent, []).append(sync)
    forced_changes: dict[InstanceState[Any], dict[str, object]] = {}
    steps: list[FlushStep] = []
    for w in ordered:
        table, bind, mapper = w.mapper.table, binds[id(w)], w.mapper
        waiting = [u for u in w.updates if u.state in deps.forced]
        for u in waiting:
            forced_changes[u.state] = u.changes
        ready = [u for u in w.updates if u.state not in deps.forced]
        if ready:
            steps.append(UpdateRows(table, bind, mapper, tuple(ready)))
        values_of = dict(zip(w.insert_states, w.insert_values, strict=True))
        for group in _levels(list(values_of), before):
            steps.append(
                InsertRows(table, bind, mapper, tuple(group), tuple(values_of[s] for s in group))
            )
            syncs = [sync for s in group for sync in syncs_after.get(s, ())]
            if syncs:
                steps.append(SyncKeys(tuple(syncs), forced_changes))
        if waiting:
            steps.append(UpdateRows(table, bind, mapper, tuple(waiting)))
    # a persistent child whose UPDATE came before its parent's INSERT cannot be: the
    # planner placed it after every insert of its table; its changes are filled by now
    for table, assoc_rows in deps.association_deletes.items():
        steps.append(
            AssociationRows(
                table, _association_bind(bind_for, deps, table), tuple(assoc_rows), delete=True
            )
        )
    for table, assoc_rows in deps.association_inserts.items():
        steps.append(
            AssociationRows(
                table, _association_bind(bind_for, deps, table), tuple(assoc_rows), delete=False
            )
        )
    post: dict[_WorkKey, list[Sync]] = {}
    for sync in deps.post:
        post.setdefault((sync.child.mapper, sync.child.identity_token), []).append(sync)
    for (mapper, token), syncs_ in post.items():
        steps.append(PostUpdateRows(mapper.table, bind_for(mapper, token), mapper, tuple(syncs_)))
    for table, pairs, values, _state in deps.association_clears:
        steps.append(
            AssociationClear(table, _association_bind(bind_for, deps, table), pairs, values)
        )
    for w in reversed(ordered):
        if w.deletes:
            groups = _levels(w.deletes, _delete_predecessors(w.deletes))
            for group in groups:
                steps.append(DeleteRows(w.mapper.table, binds[id(w)], w.mapper, tuple(group)))
    return tuple(steps)


def _association_bind(bind_for: BindFor, deps: Dependencies, table: Table) -> Bind:
    """An association table's rows go where the mappers it links go."""
    for rows in (deps.association_inserts.get(table), deps.association_deletes.get(table)):
        if rows:
            state = rows[0].left_state
            return bind_for(state.mapper, state.identity_token)
    for clear_table, _pairs, _values, state in deps.association_clears:
        if clear_table is table:
            return bind_for(state.mapper, state.identity_token)
    raise AssertionError(table)
