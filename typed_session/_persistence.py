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

Generated keys and defaults are written into the objects' ``__dict__`` as they come back;
no lifecycle field is touched here. What each statement did is returned as a
``FlushOutcome`` for ``lifecycle.after_flush`` to move the states on. A failure part-way
is cleaned up by the transaction's rollback, which restores the session from its records.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, assert_never, final

from sqlalchemy import Column, Update, bindparam, delete, insert, update
from sqlalchemy.exc import SAWarning

from typed_session._typing import Identity
from typed_session._unitofwork import (
    AssociationClear,
    AssociationRows,
    DeleteRows,
    InsertRows,
    PostUpdateRows,
    SyncKeys,
    UpdateRows,
)
from typed_session.exc import FlushError, StaleDataError, describe

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from typed_session._mapping.mapper import Mapper
    from typed_session._state import InstanceState
    from typed_session._unitofwork import Bind, FlushPlan

__all__ = ["FlushOutcome", "execute_plan"]


@final
class FlushOutcome:
    """What a flush's statements did, state by state, for ``lifecycle.after_flush``.

    Attributes:
        inserted: states whose INSERT ran, in order.
        identities: the identity of each inserted state, position by position.
        expire: per state, attributes the database set and did not send back (an
            INSERT's defaults it could not return, an UPDATE's ``onupdate`` columns):
            they are expired, to load on the next read.
        updated: states whose UPDATE ran.
        rekeyed: states whose primary key changed: (identity before, identity after).
        deleted: states whose DELETE ran.
        switched: (pending state, deleted state) pairs: the first took over the
            second's row.
    """

    __slots__ = (
        "deleted",
        "expire",
        "identities",
        "inserted",
        "rekeyed",
        "switched",
        "updated",
    )

    def __init__(self) -> None:
        self.inserted: list[InstanceState[Any]] = []
        self.identities: list[Identity] = []
        self.expire: dict[InstanceState[Any], frozenset[str]] = {}
        self.updated: list[InstanceState[Any]] = []
        self.rekeyed: dict[InstanceState[Any], tuple[Identity, Identity]] = {}
        self.deleted: list[InstanceState[Any]] = []
        self.switched: list[tuple[InstanceState[Any], InstanceState[Any]]] = []


def execute_plan(plan: FlushPlan, connection_for: Callable[[Bind], Connection]) -> FlushOutcome:
    """Emit the plan's statements in order, on each step's bind.

    Args:
        plan: the plan.
        connection_for: the connection of the current transaction for a step's bind.

    Returns:
        What was done, for the lifecycle to record.
    """
    outcome = FlushOutcome()
    for step in plan.steps:
        match step:
            case InsertRows():
                _insert(connection_for(step.bind), step, outcome)
            case UpdateRows():
                _update(connection_for(step.bind), step, outcome)
            case DeleteRows():
                _delete(connection_for(step.bind), step, outcome)
            case SyncKeys():
                _sync_keys(step)
            case PostUpdateRows():
                _post_update(connection_for(step.bind), step)
            case AssociationRows():
                _association_rows(connection_for(step.bind), step)
            case AssociationClear():
                where = [step.table.c[col] == step.values[attr] for attr, col in step.pairs]
                connection_for(step.bind).execute(delete(step.table).where(*where))
            case _:
                assert_never(step)
    return outcome


def _sync_keys(step: SyncKeys) -> None:
    """Copy parents' just-generated keys into their children (and their pending UPDATEs)."""
    forced = step.forced
    for sync in step.syncs:
        changes = forced.get(sync.child) if forced else None
        parent, child = sync.parent_values, sync.child_values
        for parent_key, child_key in sync.pairs:
            value = parent[parent_key]
            child[child_key] = value
            if changes is not None:
                changes[child_key] = value


def _post_update(conn: Connection, step: PostUpdateRows) -> None:
    """Set the foreign keys of ``post_update`` relationships once every row exists."""
    mapper = step.mapper
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for sync in step.syncs:
        parent, child = sync.parent_values, sync.child_values
        ident = mapper.identity_of(child)
        assert ident is not None
        params = mapper.pk_params(ident)
        for parent_key, child_key in sync.pairs:
            child[child_key] = parent[parent_key]
            params["v_" + child_key] = child[child_key]
        groups.setdefault(tuple(c for _p, c in sync.pairs), []).append(params)
    for keys, params_list in groups.items():
        stmt = (
            update(mapper.table)
            .where(*mapper.pk_where)
            .values({mapper.columns[k].column: bindparam(f"v_{k}") for k in keys})
        )
        conn.execute(stmt, params_list)


def _association_rows(conn: Connection, step: AssociationRows) -> None:
    """Insert or delete rows of an association table (values read now: keys exist)."""
    params = [row.params() for row in step.rows]
    table = step.table
    if not step.delete:
        conn.execute(insert(table), params)
        return
    keys = list(params[0])
    stmt = delete(table).where(*(table.c[k] == bindparam(f"a_{k}") for k in keys))
    result = conn.execute(stmt, [{f"a_{k}": p[k] for k in keys} for p in params])
    if not _rowcount_matches(conn, len(params), result.rowcount):
        raise StaleDataError(
            f"DELETE statement on table {table.name!r} expected to delete {len(params)} "
            f"row(s); {result.rowcount} were matched. Association rows were changed "
            "outside this session: roll back, then reload the objects"
        )


def _insert(conn: Connection, step: InsertRows, outcome: FlushOutcome) -> None:
    mapper = step.mapper
    keys = mapper.column_keys
    pk_keys = mapper.pk_keys
    all_keys = mapper.column_key_set
    # rows go in the order their objects were added, neighbours with the same columns
    # in one executemany (so generated keys land where SQLAlchemy puts them)
    batch_keys: tuple[str, ...] | None = None
    start = 0
    states, values = step.states, step.values
    # the other common case: every attribute set but a generated single-column key
    generated = pk_keys[0] if mapper.single_pk else None
    but_key = tuple([k for k in keys if k != generated])
    but_key_set = frozenset(but_key)
    for i, d in enumerate(values):
        # the common cases without a Python loop (C-level set checks)
        if d.keys() >= all_keys:
            present = keys
        elif generated is not None and generated not in d and d.keys() >= but_key_set:
            present = but_key
        else:
            present = tuple([k for k in keys if k in d])
        for k in pk_keys:
            if k in d and d[k] is None:  # None for a key: let the database generate it
                present = tuple([p for p in present if p != k])
        if present != batch_keys:
            if batch_keys is not None:
                _insert_group(conn, mapper, batch_keys, states[start:i], values[start:i], outcome)
            batch_keys, start = present, i
    if batch_keys is not None:
        _insert_group(conn, mapper, batch_keys, states[start:], values[start:], outcome)


def _insert_group(
    conn: Connection,
    mapper: Mapper[Any],
    present: tuple[str, ...],
    states: Sequence[InstanceState[Any]],
    values: Sequence[dict[str, Any]],
    outcome: FlushOutcome,
) -> None:
    table = mapper.table
    attrs = mapper.columns
    params = [{k: d[k] for k in present} for d in values]
    absent = [a for k, a in attrs.items() if k not in present]
    fetch = [a for a in absent if a.database_generated]
    for a in absent:
        if not a.database_generated:
            for d in values:
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
        by_ident = {mapper.identity_of(d): d for d in values}
        n = len(pk_cols)
        for row in returned:
            ident = row[0] if n == 1 else tuple(row[:n])
            by_ident[ident].update(zip(fetch_keys, row[n:], strict=True))
    elif dialect.insert_executemany_returning and _orders_by_rowid(conn, mapper):
        _insert_sqlite_batch(conn, mapper, fetch_keys, params, values)
    elif dialect.insert_executemany_returning_sort_by_parameter_order:
        ordered = insert(table).returning(*(a.column for a in fetch), sort_by_parameter_order=True)
        rows = conn.execute(ordered, params).all()
        if len(rows) != len(values):
            raise FlushError(
                f"INSERT into {table.name} returned {len(rows)} row(s) for {len(values)} object(s)"
            )
        for d, row in zip(values, rows, strict=True):
            d.update(zip(fetch_keys, row, strict=True))
    else:
        stmt = insert(table).return_defaults(*(a.column for a in fetch))
        for state, d, p in zip(states, values, params, strict=True):
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
                else:  # set by the database, not sent back: load it on first access
                    outcome.expire[state] = outcome.expire.get(state, frozenset()) | {a.key}
    inserted = outcome.inserted
    identities = outcome.identities
    single = mapper.single_pk
    pk0 = mapper.pk_keys[0]
    for state, d in zip(states, values, strict=True):
        ident = d.get(pk0) if single else mapper.identity_of(d)
        if ident is None:
            obj = state.obj()
            raise FlushError(
                f"instance {describe(obj)} has a NULL identity key after its INSERT into "
                f"{table.name}: check that the table's primary key is generated by the "
                "database (autoincrement, a sequence or a server default) or that the "
                "object is given its primary-key values before flushing",
                instance=obj,
            )
        inserted.append(state)
        identities.append(ident)


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
    values: Sequence[dict[str, Any]],
) -> None:
    table = mapper.table
    pk_col: Column[Any] = mapper.primary_key[0].column
    others = [mapper.columns[k].column for k in fetch_keys if k != mapper.pk_keys[0]]
    result = conn.execute(insert(table).returning(pk_col, *others), params)
    rows: list[Any]
    if others:
        rows = sorted(result.all(), key=lambda r: r[0])
        first, last = (rows[0][0], rows[-1][0]) if rows else (0, -1)
    else:
        rows = sorted(result.scalars().all())
        first, last = (rows[0], rows[-1]) if rows else (0, -1)
    n = len(rows)
    if n != len(values) or last - first != n - 1:
        raise FlushError(
            f"INSERT into {table.name} returned keys that are not one contiguous ascending "
            "run, so they cannot be matched to the objects; SQLite gives out rowids this "
            "way unless the table's largest rowid has reached the maximum"
        )
    pk_key = mapper.pk_keys[0]
    other_keys = [k for k in fetch_keys if k != pk_key]
    if other_keys:
        for d, row in zip(values, rows, strict=True):
            d[pk_key] = row[0]
            d.update(zip(other_keys, row[1:], strict=True))
    else:
        for d, ident in zip(values, rows, strict=True):
            d[pk_key] = ident


def _rowcount_matches(conn: Connection, expected: int, matched: int) -> bool:
    """Whether a row count is as planned, or the dialect cannot tell reliably."""
    dialect = conn.dialect
    sane = dialect.supports_sane_multi_rowcount if expected > 1 else dialect.supports_sane_rowcount
    return not sane or matched == expected


def _update(conn: Connection, step: UpdateRows, outcome: FlushOutcome) -> None:
    mapper = step.mapper
    if mapper.version_key is not None:
        _update_versioned(conn, step, outcome)
        return
    table = mapper.table
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    pk_keys = mapper.pk_keys
    single_pk_param = mapper.pk_param_names[0] if mapper.single_pk else None
    pk_params = mapper.pk_params
    onupdate_keys = mapper.onupdate_keys
    updated = outcome.updated
    # rows are unpacked, not read by field name: a tuple unpack costs less per row; the
    # outcome is filled as the parameters are (it is read only if every statement runs)
    for state, _d, changes, where, takes_over in step.rows:
        if single_pk_param is not None:
            p: dict[str, object] = {single_pk_param: where}
        else:
            p = pk_params(where)
        for k, v in changes.items():
            p["v_" + k] = v
        group = tuple(changes) if len(changes) <= 1 else tuple(sorted(changes))
        groups.setdefault(group, []).append(p)
        if takes_over is not None:
            outcome.switched.append((state, takes_over))
            continue
        updated.append(state)
        if onupdate_keys:
            stale = onupdate_keys.difference(changes)
            if stale:
                outcome.expire[state] = stale
        if not changes.keys().isdisjoint(pk_keys):
            outcome.rekeyed[state] = (where, mapper.identity_changed(where, changes))
    for changed, params in groups.items():
        if not changed:
            continue  # a row switch with nothing but the key: the row is already right
        stmt = (
            update(table)
            .where(*mapper.pk_where)
            .values({mapper.columns[k].column: bindparam(f"v_{k}") for k in changed})
        )
        result = conn.execute(stmt, params)
        if not _rowcount_matches(conn, len(params), result.rowcount):
            raise StaleDataError(
                f"UPDATE statement on table {table.name!r} expected to update "
                f"{len(params)} row(s); {result.rowcount} were matched. The rows were "
                "deleted or their keys changed outside this session: roll back, then "
                "reload the objects"
            )


def _delete(conn: Connection, step: DeleteRows, outcome: FlushOutcome) -> None:
    mapper = step.mapper
    table = mapper.table
    if mapper.version_key is not None:
        _delete_versioned(conn, step, outcome)
        return
    if mapper.single_pk:
        name = mapper.pk_param_names[0]
        params = [{name: s.identity} for s in step.states]
    else:
        params = [mapper.pk_params(s.identity) for s in step.states]
    result = conn.execute(delete(table).where(*mapper.pk_where), params)
    if not _rowcount_matches(conn, len(params), result.rowcount):
        warnings.warn(
            f"DELETE statement on table {table.name!r} expected to delete {len(params)} "
            f"row(s); {result.rowcount} were matched. Some rows were already deleted, "
            "outside this session or by an earlier flush",
            SAWarning,
            stacklevel=4,
        )
    outcome.deleted.extend(step.states)


# -- versioned rows: one statement each, so that a row count names the stale object ------


def _expected_version(
    state: InstanceState[Any], d: dict[str, Any], key: str, takes_over: InstanceState[Any] | None
) -> object:
    """The version the row must still have: as loaded (a version the user assigned is new)."""
    if takes_over is not None:  # a row switch: the row is the deleted object's
        old = takes_over.obj()
        return None if old is None else old.__dict__.get(key)
    committed = state.committed
    if committed is not None and key in committed:
        return committed[key]
    return d.get(key)


def _check_version(
    conn: Connection,
    verb: str,
    table_name: str,
    matched: int,
    state: InstanceState[Any],
    expected: object,
) -> None:
    """Raise ``StaleDataError`` unless the versioned statement matched its one row."""
    if matched == 1:
        return
    if not conn.dialect.supports_sane_rowcount:
        warnings.warn(
            f"Dialect {conn.dialect.name} does not support updated rowcount - versioning "
            "cannot be verified.",
            SAWarning,
            stacklevel=5,
        )
        return
    obj = state.obj()
    raise StaleDataError(
        f"{verb} statement on table {table_name!r} expected to {verb.lower()} 1 row(s); "
        f"{matched} were matched. {describe(obj)} expected version {expected!r} of its row, "
        "which another transaction has changed or deleted since it was loaded: nothing of "
        "this flush was written. Roll back, then reload the object and apply the change again",
        instance=obj,
        expected_version=expected,
    )


def _note_update(
    outcome: FlushOutcome,
    mapper: Mapper[Any],
    state: InstanceState[Any],
    changes: dict[str, object],
    where: Identity,
    takes_over: InstanceState[Any] | None,
) -> None:
    """Record one row's UPDATE in the outcome, as ``_update`` does in its loop."""
    if takes_over is not None:
        outcome.switched.append((state, takes_over))
        return
    outcome.updated.append(state)
    stale = mapper.onupdate_keys.difference(changes)
    if stale:
        outcome.expire[state] = stale
    if not changes.keys().isdisjoint(mapper.pk_keys):
        outcome.rekeyed[state] = (where, mapper.identity_changed(where, changes))


def _update_versioned(conn: Connection, step: UpdateRows, outcome: FlushOutcome) -> None:
    """UPDATE ... WHERE key AND version = the expected one, SET the next version."""
    mapper = step.mapper
    table = mapper.table
    key = mapper.version_key
    assert key is not None
    generator = mapper.version_generator
    checked = mapper.columns[key].column == bindparam("version_0")
    statements: dict[tuple[str, ...], Update] = {}
    for state, d, changes, where, takes_over in step.rows:
        expected = _expected_version(state, d, key, takes_over)
        values = dict(changes)
        # the next version, unless the user assigned one; a row switch continues the
        # deleted object's versions (the new object's first version is not its row's)
        if generator is not None and (key not in values or takes_over is not None):
            values[key] = generator(expected)  # type: ignore[arg-type]  # an int, as mapped
        _note_update(outcome, mapper, state, changes, where, takes_over)
        if generator is None:  # the database sets it: load it again
            outcome.expire[state] = outcome.expire.get(state, frozenset()) | {key}
        if not values:
            continue
        names = tuple(sorted(values))
        stmt = statements.get(names)
        if stmt is None:
            stmt = statements[names] = (
                update(table)
                .where(*mapper.pk_where, checked)
                .values({mapper.columns[k].column: bindparam(f"v_{k}") for k in names})
            )
        params = mapper.pk_params(where)
        params["version_0"] = expected
        for k, v in values.items():
            params[f"v_{k}"] = v
        result = conn.execute(stmt, params)
        _check_version(conn, "UPDATE", table.name, result.rowcount, state, expected)
        if generator is not None:
            d[key] = values[key]


def _delete_versioned(conn: Connection, step: DeleteRows, outcome: FlushOutcome) -> None:
    """DELETE ... WHERE key AND version = the expected one, row by row."""
    mapper = step.mapper
    key = mapper.version_key
    assert key is not None
    stmt = delete(mapper.table).where(
        *mapper.pk_where, mapper.columns[key].column == bindparam("version_0")
    )
    for state in step.states:
        obj = state.obj()
        expected = None if obj is None else _expected_version(state, obj.__dict__, key, None)
        assert state.identity is not None
        params = mapper.pk_params(state.identity)
        params["version_0"] = expected
        result = conn.execute(stmt, params)
        _check_version(conn, "DELETE", mapper.table.name, result.rowcount, state, expected)
    outcome.deleted.extend(step.states)


# -- bulk operations (planned by ``typed_session._bulk``: no objects, no outcome) ---------


def bulk_insert(
    conn: Connection,
    mapper: Mapper[Any],
    rows: Sequence[Mapping[str, Any]],
    fetch: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """INSERT rows that all hold the same keys, in one ``executemany``.

    Args:
        conn: the connection.
        mapper: the rows' mapper.
        rows: the values by attribute key (the keys are the table's column keys).
        fetch: attribute keys to send back per row (generated keys, server defaults):
            through RETURNING in row order where the backend has it, else one INSERT
            per row (what the database does not send back is left out).

    Returns:
        For each row, the fetched values by key (empty without ``fetch``).
    """
    table = mapper.table
    if not fetch:
        conn.execute(insert(table), rows)
        return []
    columns = [mapper.columns[k].column for k in fetch]
    if conn.dialect.insert_executemany_returning_sort_by_parameter_order:
        stmt = insert(table).returning(*columns, sort_by_parameter_order=True)
        return [dict(zip(fetch, row, strict=True)) for row in conn.execute(stmt, rows)]
    out: list[dict[str, Any]] = []
    one = insert(table).return_defaults(*columns)
    for row in rows:
        result = conn.execute(one, row)
        got: dict[str, Any] = {}
        pk_values = result.inserted_primary_key or ()
        for attr, value in zip(mapper.primary_key, pk_values, strict=False):
            if attr.key in fetch and value is not None:
                got[attr.key] = value
        defaults = result.returned_defaults
        if defaults is not None:
            got.update((k, v) for k, v in defaults._mapping.items() if k in fetch)
        out.append(got)
    return out


def bulk_update(conn: Connection, mapper: Mapper[Any], params: list[dict[str, Any]]) -> None:
    """UPDATE rows by primary key in one ``executemany``; every row sets the same columns.

    Each parameter set holds the primary key under ``mapper.pk_param_names`` (the WHERE)
    and the new values under their attribute keys (the SET, which Core derives from them);
    for a versioned entity, the version the row must have under ``version_0``.

    Raises:
        StaleDataError: if the row count says some rows were not there.
    """
    table = mapper.table
    stmt = update(table).where(*mapper.pk_where)
    key = mapper.version_key
    if key is not None:  # each parameter set holds the version it expects, as version_0
        stmt = stmt.where(mapper.columns[key].column == bindparam("version_0"))
    result = conn.execute(stmt, params)
    if not _rowcount_matches(conn, len(params), result.rowcount):
        raise StaleDataError(
            f"UPDATE statement on table {table.name!r} expected to update {len(params)} "
            f"row(s); {result.rowcount} were matched. Some rows do not exist (deleted, or "
            "their keys changed) or another writer changed their version first: the whole "
            "bulk operation was rolled back"
        )
