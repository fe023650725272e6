"""The flush planner: which rows are written, with what, in which order. No I/O.

``plan_flush`` turns pending, modified and deleted states into a ``FlushPlan``: an ordered
tuple of frozen, named steps, each for one table on one bind — insert rows, update rows,
delete rows. (Relationships will add steps of their own here: copying parent keys into
children, post-update, rows of association tables.) Every check that can be made before
SQL is made here, so that a refused flush has changed nothing: a pending object missing a
required value, two objects claiming one identity.

Tables are ordered by their foreign keys with ``graphlib`` — referenced tables are
inserted into first and deleted from last. Within one table, rows keep the order in which
their objects were added (inserts) or marked (deletes).
"""

from __future__ import annotations

import functools
import graphlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias, final

from sqlalchemy import Table
from sqlalchemy.exc import NoReferencedTableError

from typed_session._typing import Identity, IdentityToken
from typed_session.exc import FlushError, describe

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from typed_session.identity import IdentityMap
    from typed_session.mapping.mapper import Mapper
    from typed_session.state import InstanceState

__all__ = [
    "Bind",
    "BindFor",
    "DeleteRows",
    "FlushPlan",
    "FlushStep",
    "InsertRow",
    "InsertRows",
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


#: builds an ``InsertRow`` from a ``(state, values)`` pair without a Python-level call:
#: a third of the cost of calling the class, once per pending object
_insert_row: Callable[[tuple[InstanceState[Any], dict[str, Any]]], InsertRow] = functools.partial(
    tuple.__new__, InsertRow
)


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
    """INSERT rows into one table, in the order their objects were added."""

    rows: tuple[InsertRow, ...]


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


FlushStep: TypeAlias = InsertRows | UpdateRows | DeleteRows
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
    inserts: list[InsertRow]
    updates: list[UpdateRow]
    deletes: list[InstanceState[Any]]


_WorkKey: TypeAlias = "tuple[Mapper[Any], IdentityToken]"


class _Works(dict[_WorkKey, _TableWork]):
    """Each (mapper, identity token)'s work, made on first use (no Python call per row)."""

    def __missing__(self, key: _WorkKey) -> _TableWork:
        work = self[key] = _TableWork(key[0], key[1], [], [], [])
        return work


def plan_flush(
    new: Sequence[tuple[InstanceState[Any], Any]],
    dirty: Iterable[InstanceState[Any]],
    deleted: Sequence[tuple[InstanceState[Any], Any]],
    *,
    bind_for: BindFor,
    identity_map: IdentityMap | None = None,
) -> FlushPlan:
    """Build the plan for pending, modified and deleted states.

    Args:
        new: pending states with their objects, in the order they were added.
        dirty: states written to since their last flush.
        deleted: states marked for deletion with their objects.
        bind_for: the bind of each mapper's rows.
        identity_map: the session's identity map, to refuse a pending object whose key
            a persistent object already has.

    Raises:
        FlushError: if a pending object lacks a value the database cannot supply, or
            claims an identity another object has.
    """
    works = _Works()
    # a pending object taking the key of an object being deleted: the row is kept and
    # UPDATEd to the new object's values (the seed's "row switch"), not deleted first
    by_identity = (
        {(s.mapper, s.identity_token, s.identity): s for s, _ in deleted} if deleted else {}
    )
    deleting = {id(s) for s, _ in deleted}
    switched: set[int] = set()
    claimed: dict[tuple[Mapper[Any], IdentityToken, Identity], object] = {}
    make_row = _insert_row
    make_update = _update_row
    for state, obj in new:
        d = obj.__dict__
        mapper, token = state.mapper, state.identity_token
        key = (mapper, token)
        _check_insertable(state, obj, d)
        ident = mapper.identity_of(d)
        if ident is not None:  # a key given by the user, not generated by the database
            if identity_map is not None:
                _check_identity_conflict(obj, state, ident, claimed, identity_map, deleting)
            old = by_identity.get((mapper, token, ident)) if by_identity else None
            if old is not None:
                works[key].updates.append(_switch_row(state, d, old))
                switched.add(id(old))
                continue
        works[key].inserts.append(make_row((state, d)))
    clean: list[InstanceState[Any]] = []
    for state in dirty:
        obj = state.obj()
        ident = state.identity
        if obj is None or ident is None or (deleting and id(state) in deleting):
            continue
        d = obj.__dict__
        changes = state.changes(d)
        if changes:
            works[state.mapper, state.identity_token].updates.append(
                make_update((state, d, changes, ident, None))
            )
        else:
            clean.append(state)
    for state, _obj in deleted:
        if id(state) not in switched:
            works[state.mapper, state.identity_token].deletes.append(state)
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


def _ordered_steps(works: _Works, bind_for: BindFor) -> tuple[FlushStep, ...]:
    """Saves in table order (inserts, then updates, per table), then deletes in reverse."""
    order = table_order(w.mapper.table for w in works.values())
    by_table: dict[Table, list[_TableWork]] = {}
    for w in works.values():
        by_table.setdefault(w.mapper.table, []).append(w)
    ordered = [w for t in order for w in by_table[t]]
    steps: list[FlushStep] = []
    binds = {id(w): bind_for(w.mapper, w.token) for w in ordered}
    for w in ordered:
        # UPDATEs first, as SQLAlchemy does: a row renamed away from a unique value
        # frees it for a new row of the same flush
        if w.updates:
            steps.append(UpdateRows(w.mapper.table, binds[id(w)], w.mapper, tuple(w.updates)))
        if w.inserts:
            steps.append(InsertRows(w.mapper.table, binds[id(w)], w.mapper, tuple(w.inserts)))
    for w in reversed(ordered):
        if w.deletes:
            steps.append(DeleteRows(w.mapper.table, binds[id(w)], w.mapper, tuple(w.deletes)))
    return tuple(steps)


def _check_insertable(state: InstanceState[Any], obj: object, d: dict[str, Any]) -> None:
    """Refuse, before any SQL, a pending object with a required value missing."""
    mapper = state.mapper
    for key in mapper.required_keys:
        if key in d and not (d[key] is None and key in mapper.pk_keys):
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
