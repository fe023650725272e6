"""The flush planner: which states are written, with what, in which order. No I/O.

Tables are ordered by their foreign keys with ``graphlib`` — referenced tables are
inserted into first and deleted from last — so that rows of related tables can be
flushed together even before relationships exist. Within one table, rows keep the order
in which their objects were added (inserts) or marked (deletes).
"""

from __future__ import annotations

import graphlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, final

from sqlalchemy import Table
from sqlalchemy.exc import NoReferencedTableError

from typed_session.exc import FlushError, describe

if TYPE_CHECKING:
    from typed_session.mapping.mapper import Mapper
    from typed_session.state import InstanceState

__all__ = ["FlushPlan", "MapperWork", "plan_flush", "table_order"]


@final
@dataclass(slots=True)
class MapperWork:
    """Everything one flush does to one mapper's table."""

    mapper: Mapper[Any]
    inserts: list[tuple[InstanceState[Any], dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[InstanceState[Any], dict[str, Any], dict[str, object]]] = field(
        default_factory=list
    )
    deletes: list[InstanceState[Any]] = field(default_factory=list)
    #: (pending state, its values, the deleted state whose row it takes over)
    switches: list[tuple[InstanceState[Any], dict[str, Any], InstanceState[Any]]] = field(
        default_factory=list
    )


@final
@dataclass(frozen=True, slots=True)
class FlushPlan:
    """An ordered flush: saves parents-first, then deletes children-first.

    Attributes:
        saves: per mapper, inserts then updates, referenced tables first.
        deletes: per mapper, deletes, referencing tables first.
        clean: modified states whose values turned out unchanged (no SQL; history reset).
    """

    saves: tuple[MapperWork, ...]
    deletes: tuple[MapperWork, ...]
    clean: tuple[InstanceState[Any], ...]

    @property
    def empty(self) -> bool:
        """Whether the plan emits no SQL."""
        return not self.saves and not self.deletes


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


def plan_flush(
    new: Sequence[tuple[InstanceState[Any], Any]],
    dirty: Iterable[InstanceState[Any]],
    deleted: Sequence[tuple[InstanceState[Any], Any]],
) -> FlushPlan:
    """Build the plan for pending, modified and deleted states.

    Args:
        new: pending states with their objects, in the order they were added.
        dirty: states written to since their last flush.
        deleted: states marked for deletion with their objects.

    Raises:
        FlushError: if a pending object lacks a value the database cannot supply.
    """
    works: dict[Mapper[Any], MapperWork] = {}

    def work_for(mapper: Mapper[Any]) -> MapperWork:
        w = works.get(mapper)
        if w is None:
            w = works[mapper] = MapperWork(mapper)
        return w

    # a pending object taking the key of an object being deleted: the row is kept and
    # UPDATEd to the new object's values (the seed's "row switch"), not deleted first
    by_identity = {(s.mapper, s.identity): s for s, _ in deleted} if deleted else {}
    switched: set[int] = set()
    for state, obj in new:
        d = obj.__dict__
        _check_insertable(state, obj, d)
        if by_identity:
            old = by_identity.get((state.mapper, state.mapper.identity_of(d)))
            if old is not None:
                work_for(state.mapper).switches.append((state, d, old))
                switched.add(id(old))
                continue
        work_for(state.mapper).inserts.append((state, d))
    deleting = {id(s) for s, _ in deleted}
    clean: list[InstanceState[Any]] = []
    for state in dirty:
        obj = state.obj()
        if obj is None or id(state) in deleting or state.identity is None:
            continue
        d = obj.__dict__
        changes = state.changes(d)
        if changes:
            work_for(state.mapper).updates.append((state, d, changes))
        else:
            clean.append(state)
    for state, _obj in deleted:
        if id(state) not in switched:
            work_for(state.mapper).deletes.append(state)
    order = table_order(w.mapper.table for w in works.values())
    by_table: dict[Table, list[MapperWork]] = {}
    for w in works.values():
        by_table.setdefault(w.mapper.table, []).append(w)
    ordered = [w for t in order for w in by_table[t]]
    saves = tuple(w for w in ordered if w.inserts or w.updates or w.switches)
    deletes = tuple(w for w in reversed(ordered) if w.deletes)
    return FlushPlan(saves, deletes, tuple(clean))


def _check_insertable(state: InstanceState[Any], obj: object, d: dict[str, Any]) -> None:
    """Refuse, before any SQL, a pending object with a required value missing."""
    mapper = state.mapper
    for key in mapper.required_keys:
        if key in d and not (d[key] is None and key in mapper.pk_keys):
            continue
        attr = mapper.attributes[key]
        what = "primary-key column" if attr.column.primary_key else "NOT NULL column"
        raise FlushError(
            f"cannot insert {describe(obj)}: {type(obj).__name__}.{key} has no value, and "
            f"its {what} {attr.column.table.name}.{attr.column.name} has no default the "
            "database could supply. Assign a value before flushing, or give column() a "
            "default (or server_default)",
            instance=obj,
        )
