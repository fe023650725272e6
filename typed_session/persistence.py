"""Carry out a ``FlushPlan`` through Core: batched INSERT, UPDATE and DELETE.

* INSERT is one ``executemany`` per table and set of supplied columns. Generated keys and
  server-side defaults come back through RETURNING where the backend has it, in parameter
  order: Core's ``sort_by_parameter_order`` on PostgreSQL and MariaDB; on SQLite, whose
  rows Core will only order one statement per row, the batch is sent unordered and the
  rows are put back in order by their ascending integer key, since SQLite hands out
  rowids in insertion order within a statement (checked: the keys must be contiguous).
* UPDATE sends only changed columns, one ``executemany`` per set of changed columns,
  checked against the row count.
* DELETE is one ``executemany`` per table, by primary key.

States are updated as statements succeed; a failure part-way is cleaned up by the
transaction's rollback, which restores the session from its snapshot.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, bindparam, delete, insert, update
from sqlalchemy.exc import SAWarning

from typed_session.exc import FlushError, StaleDataError, describe
from typed_session.state import STATE_ATTR

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from typed_session.mapping.mapper import Mapper
    from typed_session.state import InstanceState
    from typed_session.unitofwork import FlushPlan, MapperWork

__all__ = ["FlushOutcome", "execute_plan"]


class FlushOutcome:
    """What the flush did to which states, for the session and transaction to record."""

    __slots__ = ("deleted", "inserted", "rekeyed", "switched", "updated")

    def __init__(self) -> None:
        self.inserted: list[InstanceState[Any]] = []
        self.updated: list[InstanceState[Any]] = []
        self.deleted: list[InstanceState[Any]] = []
        #: state -> its identity before a primary-key change
        self.rekeyed: dict[InstanceState[Any], object] = {}
        #: (pending state, deleted state) pairs where the first took over the second's row
        self.switched: list[tuple[InstanceState[Any], InstanceState[Any]]] = []


def execute_plan(
    plan: FlushPlan,
    connection_for: Callable[[Mapper[Any]], Connection],
    outcome: FlushOutcome,
) -> None:
    """Emit the plan's statements in order, recording progress in ``outcome``."""
    for work in plan.saves:
        conn = connection_for(work.mapper)
        if work.inserts:
            _insert(conn, work, outcome)
        if work.updates or work.switches:
            _update(conn, work, outcome)
    for work in plan.deletes:
        _delete(connection_for(work.mapper), work, outcome)


def _insert(conn: Connection, work: MapperWork, outcome: FlushOutcome) -> None:
    mapper = work.mapper
    keys = mapper.attribute_keys
    pk_keys = mapper.pk_keys
    groups: dict[tuple[str, ...], list[tuple[InstanceState[Any], dict[str, Any]]]] = {}
    all_keys = mapper.all_keys
    for state, d in work.inserts:
        # the common case without a Python loop: every attribute set (a C-level check)
        present = keys if d.keys() >= all_keys else tuple([k for k in keys if k in d])
        for k in pk_keys:
            if k in d and d[k] is None:  # None for a key: let the database generate it
                present = tuple([p for p in present if p != k])
        groups.setdefault(present, []).append((state, d))
    for present, items in groups.items():
        _insert_group(conn, mapper, present, items, outcome)


def _insert_group(
    conn: Connection,
    mapper: Mapper[Any],
    present: tuple[str, ...],
    items: list[tuple[InstanceState[Any], dict[str, Any]]],
    outcome: FlushOutcome,
) -> None:
    table = mapper.table
    attrs = mapper.attributes
    params = [{k: d[k] for k in present} for _, d in items]
    absent = [a for k, a in attrs.items() if k not in present]
    fetch = [a for a in absent if a.database_generated]
    for a in absent:
        if not a.database_generated:
            for _, d in items:
                d[a.key] = None  # nullable, no default: the row holds NULL
    pk_generated = any(k not in present for k in mapper.pk_keys)
    dialect = conn.dialect
    fetch_keys = [a.key for a in fetch]
    if not fetch:
        conn.execute(insert(table), params)
    elif dialect.insert_returning and not pk_generated:
        # keys known: return them with the defaults and match rows up by key
        pk_cols = [a.column for a in mapper.primary_key]
        returned = conn.execute(
            insert(table).returning(*pk_cols, *(a.column for a in fetch)), params
        )
        by_ident = {mapper.identity_of(d): d for _, d in items}
        n = len(pk_cols)
        for row in returned:
            ident = row[0] if n == 1 else tuple(row[:n])
            by_ident[ident].update(zip(fetch_keys, row[n:], strict=True))
    elif dialect.insert_executemany_returning and _orders_by_rowid(conn, mapper):
        _insert_sqlite_batch(conn, mapper, fetch_keys, params, items)
    elif dialect.insert_executemany_returning_sort_by_parameter_order:
        ordered = insert(table).returning(*(a.column for a in fetch), sort_by_parameter_order=True)
        rows = conn.execute(ordered, params).all()
        if len(rows) != len(items):
            raise FlushError(
                f"INSERT into {table.name} returned {len(rows)} row(s) for {len(items)} object(s)"
            )
        for (_, d), row in zip(items, rows, strict=True):
            d.update(zip(fetch_keys, row, strict=True))
    else:
        stmt = insert(table).return_defaults(*(a.column for a in fetch))
        for (_, d), p in zip(items, params, strict=True):
            result = conn.execute(stmt, p)
            pk_values = result.inserted_primary_key or ()
            for attr, value in zip(mapper.primary_key, pk_values, strict=False):
                if attr.key not in present:
                    d[attr.key] = value
            defaults_row = result.returned_defaults
            defaults = {} if defaults_row is None else defaults_row._mapping
            for a in fetch:
                if a.key in d:
                    continue
                if a.column.key in defaults:
                    d[a.key] = defaults[a.column.key]
                else:
                    state = d[STATE_ATTR]
                    state.expired = (state.expired or frozenset()) | {a.key}
    for state, d in items:
        ident = mapper.identity_of(d)
        if ident is None:
            obj = state.obj()
            raise FlushError(
                f"instance {describe(obj)} has a NULL identity key after its INSERT into "
                f"{table.name}: check that the table's primary key is generated by the "
                "database (autoincrement, a sequence or a server default) or that the "
                "object is given its primary-key values before flushing",
                instance=obj,
            )
        state.identity = ident
        outcome.inserted.append(state)


def _orders_by_rowid(conn: Connection, mapper: Mapper[Any]) -> bool:
    """Whether generated keys can be put in parameter order by sorting (SQLite rowids)."""
    if conn.dialect.name != "sqlite" or not mapper.single_pk:
        return False
    col = mapper.primary_key[0].column
    return col is col.table.autoincrement_column


def _insert_sqlite_batch(
    conn: Connection,
    mapper: Mapper[Any],
    fetch_keys: Sequence[str],
    params: list[dict[str, Any]],
    items: list[tuple[InstanceState[Any], dict[str, Any]]],
) -> None:
    table = mapper.table
    pk_col: Column[Any] = mapper.primary_key[0].column
    others = [mapper.attributes[k].column for k in fetch_keys if k != mapper.pk_keys[0]]
    result = conn.execute(insert(table).returning(pk_col, *others), params)
    rows: list[Any]
    if others:
        rows = sorted(result.all(), key=lambda r: r[0])
        first, last = (rows[0][0], rows[-1][0]) if rows else (0, -1)
    else:
        rows = sorted(result.scalars().all())
        first, last = (rows[0], rows[-1]) if rows else (0, -1)
    n = len(rows)
    if n != len(items) or last - first != n - 1:
        raise FlushError(
            f"INSERT into {table.name} returned keys that are not one contiguous ascending "
            "run, so they cannot be matched to the objects; SQLite gives out rowids this "
            "way unless the table's largest rowid has reached the maximum"
        )
    pk_key = mapper.pk_keys[0]
    other_keys = [k for k in fetch_keys if k != pk_key]
    if other_keys:
        for (_, d), row in zip(items, rows, strict=True):
            d[pk_key] = row[0]
            d.update(zip(other_keys, row[1:], strict=True))
    else:
        for (_, d), ident in zip(items, rows, strict=True):
            d[pk_key] = ident


def _pk_where(mapper: Mapper[Any]) -> list[Any]:
    return [a.column == bindparam(f"pk_{a.key}") for a in mapper.primary_key]


def _pk_params(mapper: Mapper[Any], identity: object) -> dict[str, object]:
    if mapper.single_pk:
        return {f"pk_{mapper.pk_keys[0]}": identity}
    assert isinstance(identity, tuple)
    return {f"pk_{k}": v for k, v in zip(mapper.pk_keys, identity, strict=True)}


def _rowcount_matches(conn: Connection, expected: int, matched: int) -> bool:
    """Whether a row count is as planned, or the dialect cannot tell reliably."""
    dialect = conn.dialect
    sane = dialect.supports_sane_multi_rowcount if expected > 1 else dialect.supports_sane_rowcount
    return not sane or matched == expected


def _update(conn: Connection, work: MapperWork, outcome: FlushOutcome) -> None:
    mapper = work.mapper
    table = mapper.table
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    pk_keys = mapper.pk_keys
    single_pk_param = f"pk_{pk_keys[0]}" if mapper.single_pk else None
    for state, _d, changes in work.updates:
        if single_pk_param is not None:
            p: dict[str, object] = {single_pk_param: state.identity}
        else:
            p = _pk_params(mapper, state.identity)
        for k, v in changes.items():
            p["v_" + k] = v
        group = tuple(changes) if len(changes) == 1 else tuple(sorted(changes))
        groups.setdefault(group, []).append(p)
        for k in pk_keys:
            if k in changes:
                outcome.rekeyed[state] = state.identity
                break
    outcome.updated.extend(state for state, _d, _c in work.updates)
    for new_state, d, old_state in work.switches:
        p = _pk_params(mapper, old_state.identity)
        values = sorted(k for k in mapper.attribute_keys if k in d and k not in pk_keys)
        for k in values:
            p["v_" + k] = d[k]
        groups.setdefault(tuple(values), []).append(p)
        outcome.switched.append((new_state, old_state))
    for changed, params in groups.items():
        if not changed:
            continue  # a row switch with nothing but the key: the row is already right
        stmt = (
            update(table)
            .where(*_pk_where(mapper))
            .values({mapper.attributes[k].column: bindparam(f"v_{k}") for k in changed})
        )
        result = conn.execute(stmt, params)
        if not _rowcount_matches(conn, len(params), result.rowcount):
            raise StaleDataError(
                f"UPDATE statement on table {table.name!r} expected to update "
                f"{len(params)} row(s); {result.rowcount} were matched. The rows were "
                "deleted or their keys changed outside this session: roll back, then "
                "reload the objects"
            )
    for state, d, _changes in work.updates:
        if state in outcome.rekeyed:
            state.identity = mapper.identity_of(d)


def _delete(conn: Connection, work: MapperWork, outcome: FlushOutcome) -> None:
    mapper = work.mapper
    table = mapper.table
    if mapper.single_pk:
        name = f"pk_{mapper.pk_keys[0]}"
        params = [{name: s.identity} for s in work.deletes]
    else:
        params = [_pk_params(mapper, s.identity) for s in work.deletes]
    result = conn.execute(delete(table).where(*_pk_where(mapper)), params)
    if not _rowcount_matches(conn, len(params), result.rowcount):
        warnings.warn(
            f"DELETE statement on table {table.name!r} expected to delete {len(params)} "
            f"row(s); only {result.rowcount} were matched: some rows were already deleted "
            "outside this session",
            SAWarning,
            stacklevel=4,
        )
    outcome.deleted.extend(work.deletes)
