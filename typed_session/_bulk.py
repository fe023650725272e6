"""Bulk INSERT and UPDATE, the seed's ``bulk_save_objects`` and ``bulk_*_mappings``.

The seed's bulk operations trade the unit of work for speed: rows are grouped into as
few ``executemany`` statements as their columns allow and sent at once, without the
identity map, history, events or cascades. This module plans them (grouping, the checks
made before any SQL) and hands each group to ``persistence``; the session inherits the
public methods from ``BulkMethods``, as it inherits the statement methods.

What the seed does, kept here:

* objects with an identity are UPDATEd, the others INSERTed; the objects are not added
  to the session and no state is set on them, except the generated key (and server
  defaults) with ``return_defaults``, which makes a transient object detached;
* ``update_changed_only`` SETs the attributes assigned since the object was loaded,
  otherwise every loaded attribute; ``preserve_order=False`` groups the objects of one
  class and kind together, for larger batches;
* a ``None`` value in an INSERT leaves the column out (its default applies), unless
  ``render_nulls``; rows are batched while their columns stay the same;
* a failure rolls the transaction back, as a failed flush does; the session then needs
  ``rollback()``.

Refused before any SQL, where the seed would ignore or fail later: a mapping key that is
no mapped attribute, an UPDATE mapping without its full primary key (or, for a versioned
entity, its version), a value a ``validate=True`` entity refuses, and (in
``bulk_save_objects``) an object pending in a session, which its flush would insert again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy.exc import ArgumentError

from typed_session import _lifecycle as lifecycle
from typed_session import _persistence as persistence
from typed_session._mapping.mapper import Mapper, mapper_of, mapper_of_instance
from typed_session._state import InstanceState, instance_state, state_of
from typed_session.exc import ObjectStateError, describe

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from typed_session._transaction import SessionTransaction

__all__ = ["BulkMethods"]

_E = TypeVar("_E")
_State = InstanceState[Any]
#: an object to save: the object, its ``__dict__``, its state if it has one
_Row = tuple[object, dict[str, Any], "_State | None"]


class BulkMethods:
    """The seed's bulk operations, for the session; see the module docstring."""

    __slots__ = ()

    def _active_transaction(self) -> SessionTransaction:
        raise NotImplementedError  # the session implements it

    def _bind_for(self, mapper: Mapper[Any]) -> Engine | Connection:
        raise NotImplementedError  # the session implements it

    def bulk_save_objects(
        self,
        objects: Iterable[object],
        *,
        return_defaults: bool = False,
        update_changed_only: bool = True,
        preserve_order: bool = True,
    ) -> None:
        """INSERT the transient objects and UPDATE the others, in batches, bypassing the session.

        Args:
            objects: entity instances: transient (INSERT), or with a row (UPDATE by
                the key they were loaded with): detached, or persistent here.
            return_defaults: fetch each inserted row's generated key and server
                defaults into its object, which becomes detached (as if loaded and
                then expunged); without it, objects keep no trace of the INSERT.
            update_changed_only: SET only the attributes assigned since the object
                was loaded (else every loaded attribute but the key).
            preserve_order: send the rows in the order given; ``False`` groups each
                class's INSERTs and UPDATEs together, for fewer statements.

        Raises:
            UnmappedInstanceError: an object that is no entity instance.
            ObjectStateError: an object pending in a session, or whose DELETE was
                flushed (before any SQL).
            StaleDataError: an UPDATE found fewer rows than objects (rolled back).
        """
        groups: dict[tuple[Mapper[Any], bool], list[_Row]] = {}
        ordered: list[tuple[Mapper[Any], bool, list[_Row]]] = []
        last: tuple[Mapper[Any], bool] | None = None
        mappers: dict[type[Any], Mapper[Any]] = {}
        for obj in objects:
            cls = type(obj)
            mapper = mappers.get(cls)
            if mapper is None:
                mapper = mappers[cls] = mapper_of_instance(obj)
            d = obj.__dict__
            # no state is made for a transient object that has none (the common case)
            state: _State | None = state_of(obj)
            if state is not None:
                _check_savable(state, obj)
            key = (mapper, state is not None and state.identity is not None)
            if preserve_order:
                if key != last:
                    ordered.append((*key, []))
                    last = key
                ordered[-1][2].append((obj, d, state))
            elif key in groups:
                groups[key].append((obj, d, state))
            else:
                groups[key] = rows = [(obj, d, state)]
                ordered.append((*key, rows))
        connections = {mapper: self._bulk_connection(mapper) for mapper, _, _ in ordered}
        try:
            for mapper, is_update, rows in ordered:
                conn = connections[mapper]
                if is_update:
                    _update_objects(conn, mapper, rows, changed_only=update_changed_only)
                else:
                    _insert_objects(conn, mapper, rows, return_defaults=return_defaults)
        except BaseException as err:
            self._active_transaction().fail(err)
            raise

    def bulk_insert_mappings(
        self,
        entity: type[_E],
        mappings: Iterable[Mapping[str, Any]],
        *,
        return_defaults: bool = False,
        render_nulls: bool = False,
    ) -> None:
        """INSERT rows given as mappings of attribute names to values, in batches.

        A ``TypedDict`` of the entity's attributes types the mappings for the checkers.

        Args:
            entity: the entity class whose table the rows go into.
            mappings: one mapping per row; rows with the same keys (in a run) share one
                ``executemany``.
            return_defaults: write each row's generated key and server defaults back
                into its mapping (which must then be mutable), fetched through
                RETURNING in one statement where the backend has it.
            render_nulls: send ``None`` as NULL instead of leaving the column out, so
                that rows batch together; a column's default is then not applied.

        Raises:
            ArgumentError: a key that is no mapped attribute of ``entity`` (before SQL).
        """
        mapper = mapper_of(entity)
        known = mapper.column_key_set
        rows = list(mappings)
        batches: list[list[Mapping[str, Any]]] = []
        batch: list[Mapping[str, Any]] = []
        previous: object = None
        version = mapper.version_key if mapper.version_generator is not None else None
        for index, given in enumerate(rows):
            row = given
            if version is not None and version not in given:
                row = {**given, version: _first_version(mapper)}
            if not render_nulls and None in row.values():
                if not (given.keys() <= known):  # an unknown key, even with None, is refused
                    raise _unknown_keys(mapper, given, index, "bulk_insert_mappings")
                row = {k: v for k, v in row.items() if v is not None}
            keys = row.keys()
            if keys != previous:  # a new run of keys: check them once for the run
                if not (keys <= known):
                    raise _unknown_keys(mapper, row, index, "bulk_insert_mappings")
                batch = []
                batches.append(batch)
                previous = keys
            if return_defaults and not isinstance(given, MutableMapping):
                raise ArgumentError(
                    f"bulk_insert_mappings({entity.__name__}, return_defaults=True) writes "
                    f"the generated values into each mapping; mapping #{index} is a "
                    f"{type(given).__name__}, which cannot take them: pass dicts"
                )
            batch.append(row)
        if not batches:
            return
        check = mapper.check_values
        if check is not None:  # validate=True: every row, before any SQL
            for batch in batches:
                for row in batch:
                    check(row, row, row.keys())
        conn = self._bulk_connection(mapper)
        try:
            for batch, targets in _with_targets(batches, rows):
                fetch = _to_fetch(mapper, batch[0]) if return_defaults else ()
                fetched = persistence.bulk_insert(conn, mapper, batch, fetch)
                if not return_defaults:
                    continue
                for target, sent, values in zip(
                    targets, batch, fetched or [{}] * len(batch), strict=True
                ):
                    if isinstance(target, MutableMapping):  # checked above
                        if version is not None:  # the first version, given here
                            target.setdefault(version, sent[version])
                        target.update(values)
        except BaseException as err:
            self._active_transaction().fail(err)
            raise

    def bulk_update_mappings(self, entity: type[_E], mappings: Iterable[Mapping[str, Any]]) -> None:
        """UPDATE rows given as mappings holding the primary key and the values to set.

        Args:
            entity: the entity class whose table holds the rows.
            mappings: one mapping per row: every primary-key attribute (the WHERE) and
                the attributes to set; rows setting the same attributes (in a run) share
                one ``executemany``.

        Raises:
            ArgumentError: a key that is no mapped attribute, or a primary-key attribute
                missing (before any SQL).
            StaleDataError: fewer rows matched than mappings given (rolled back).
        """
        mapper = mapper_of(entity)
        known = mapper.column_key_set
        pk_keys = mapper.pk_keys
        names = mapper.pk_param_names
        rows = mappings if isinstance(mappings, list) else list(mappings)
        every = list(map(dict, rows))  # the parameters: each mapping, its key renamed
        check = mapper.check_values
        if check is not None:  # validate=True: every row, before any SQL
            for row in rows:
                if not (row.keys() <= known):
                    raise _unknown_keys(mapper, row, rows.index(row), "bulk_update_mappings")
                check(row, row, row.keys())
        if mapper.version_key is not None:
            _check_versions(mapper, rows, every)
        try:
            if mapper.single_pk:
                pk = pk_keys[0]
                for params in every:
                    params["pk_0"] = params.pop(pk)
            else:
                for params in every:
                    for key, name in zip(pk_keys, names, strict=True):
                        params[name] = params.pop(key)
        except KeyError:
            index = next(i for i, r in enumerate(rows) if not all(k in r for k in pk_keys))
            raise _missing_key(mapper, rows[index], index) from None
        width = len(pk_keys)  # a row that sets nothing holds only its key: skipped
        batches: list[list[dict[str, Any]]] = []
        first = every[0].keys() if every else None
        if first is not None and all(map(first.__eq__, map(dict.keys, every))):
            if not (rows[0].keys() <= known):  # one set of keys (the common case)
                raise _unknown_keys(mapper, rows[0], 0, "bulk_update_mappings")
            if len(first) > width:
                batches.append(every)
        else:
            batch: list[dict[str, Any]] = []
            previous: object = None
            for index, params in enumerate(every):
                keys = params.keys()
                if keys != previous:  # a new run of keys: check them once for the run
                    if not (rows[index].keys() <= known):
                        raise _unknown_keys(mapper, rows[index], index, "bulk_update_mappings")
                    batch = []
                    if len(keys) > width:
                        batches.append(batch)
                    previous = keys
                batch.append(params)
        if not batches:
            return
        conn = self._bulk_connection(mapper)
        try:
            for batch in batches:
                persistence.bulk_update(conn, mapper, batch)
        except BaseException as err:
            self._active_transaction().fail(err)
            raise

    def _bulk_connection(self, mapper: Mapper[Any]) -> Connection:
        """The transaction's connection for a mapper's rows (the transaction begun on demand)."""
        return self._active_transaction().connection_for(self._bind_for(mapper))


def _check_savable(state: _State, obj: object) -> None:
    """Refuse, before any SQL, what ``bulk_save_objects`` would write twice or cannot write."""
    if state.identity is None and state.identity_map is not None:
        raise ObjectStateError(
            obj,
            f"bulk_save_objects() cannot insert {describe(obj)}: it is pending in a "
            "session, whose flush would insert it again. Flush that session instead, or "
            "expunge the object from it first",
        )
    if state.deleted:
        raise ObjectStateError(
            obj,
            f"bulk_save_objects() cannot update {describe(obj)}: its DELETE was flushed, "
            "so it has no row. Roll back to get it back, or make_transient(obj) to insert it",
        )


def _first_version(mapper: Mapper[Any]) -> int:
    generator = mapper.version_generator
    assert generator is not None
    return generator(None)


def _check_versions(
    mapper: Mapper[Any], rows: Sequence[Mapping[str, Any]], every: list[dict[str, Any]]
) -> None:
    """Move each mapping's version to the WHERE and set the next one (a versioned entity)."""
    key = mapper.version_key
    assert key is not None
    generator = mapper.version_generator
    for index, params in enumerate(every):
        if key not in params:
            raise ArgumentError(
                f"bulk_update_mappings({mapper.class_.__name__}): mapping #{index} lacks "
                f"the version attribute {key!r}, which the UPDATE checks (the version the "
                f"row was read with): {dict(rows[index])!r}"
            )
        expected = params["version_0"] = params.pop(key)
        if generator is not None:
            params[key] = generator(expected)


def _missing_key(mapper: Mapper[Any], row: Mapping[str, Any], index: int) -> ArgumentError:
    missing = [k for k in mapper.pk_keys if k not in row]
    return ArgumentError(
        f"bulk_update_mappings({mapper.class_.__name__}): mapping #{index} lacks "
        f"primary-key attribute(s) {missing}, which say which row to update: {dict(row)!r}"
    )


def _unknown_keys(
    mapper: Mapper[Any], row: Mapping[str, Any], index: int, method: str
) -> ArgumentError:
    unknown = sorted(k for k in row if k not in mapper.column_key_set)
    return ArgumentError(
        f"{method}({mapper.class_.__name__}): mapping #{index} has key(s) {unknown}, which "
        f"are not mapped attributes of {mapper.class_.__name__} (those are "
        f"{list(mapper.column_keys)}); nothing was written"
    )


def _with_targets(
    batches: list[list[Mapping[str, Any]]], rows: Sequence[Mapping[str, Any]]
) -> Iterable[tuple[list[Mapping[str, Any]], Sequence[Mapping[str, Any]]]]:
    """Each batch with the caller's own mappings it was made from (for ``return_defaults``)."""
    start = 0
    for batch in batches:
        yield batch, rows[start : start + len(batch)]
        start += len(batch)


def _to_fetch(mapper: Mapper[Any], row: Mapping[str, Any]) -> tuple[str, ...]:
    """The attributes an INSERT of ``row``'s keys leaves for the database to generate."""
    return tuple(
        a.key for a in mapper.columns.values() if a.key not in row and a.database_generated
    )


def _insert_objects(
    conn: Connection, mapper: Mapper[Any], rows: list[_Row], *, return_defaults: bool
) -> None:
    """INSERT objects of one class, in runs of the same loaded columns."""
    known = mapper.column_key_set
    run: list[_Row] = []
    run_values: list[dict[str, Any]] = []
    previous: object = None
    for row in rows:
        d = row[1]
        if d.keys() <= known and None not in d.values():
            values = d  # only column values, none None: sent as it is (Core only reads it)
        else:
            values = {k: v for k, v in d.items() if v is not None and k in known}
        keys = values.keys()
        if keys != previous and run:
            _insert_run(conn, mapper, run, run_values, return_defaults=return_defaults)
            run, run_values = [], []
        previous = keys
        run.append(row)
        run_values.append(values)
    _insert_run(conn, mapper, run, run_values, return_defaults=return_defaults)


def _insert_run(
    conn: Connection,
    mapper: Mapper[Any],
    run: list[_Row],
    values: list[dict[str, Any]],
    *,
    return_defaults: bool,
) -> None:
    fetch = _to_fetch(mapper, values[0]) if return_defaults else ()
    fetched = persistence.bulk_insert(conn, mapper, values, fetch)
    if not return_defaults:
        return
    for (obj, d, _state), got in zip(run, fetched or [{}] * len(run), strict=True):
        d.update(got)
        identity = mapper.identity_of(d)
        if identity is not None:
            lifecycle.to_detached_from_transient(instance_state(obj), identity)


def _update_objects(
    conn: Connection, mapper: Mapper[Any], rows: list[_Row], *, changed_only: bool
) -> None:
    """UPDATE objects of one class by the key they were loaded with, in runs of one SET."""
    keys = mapper.column_keys
    pk_keys = frozenset(mapper.pk_keys)
    batch: list[dict[str, Any]] = []
    previous: object = None
    version = mapper.version_key
    written: list[tuple[_State, dict[str, Any], dict[str, Any]]] = []
    for _obj, d, state in rows:
        assert state is not None  # grouped as an UPDATE for having an identity
        if changed_only:
            committed = state.committed or {}
            values = {k: d[k] for k in keys if k in committed and k in d}
        else:
            values = {k: d[k] for k in keys if k in d and k not in pk_keys}
        if not values:
            continue  # nothing to set, as the seed skips it
        assert state.identity is not None
        params = mapper.pk_params(state.identity)
        params.update(values)
        if version is not None:
            _next_version(mapper, state, d, params)
            written.append((state, d, params))
        if params.keys() != previous and batch:
            persistence.bulk_update(conn, mapper, batch)
            batch = []
        previous = params.keys()
        batch.append(params)
    if batch:
        persistence.bulk_update(conn, mapper, batch)
    for state, d, params in written:  # every statement ran: the objects have the new version
        assert version is not None
        if version in params:
            d[version] = params[version]
        else:  # set by the database: loaded on next access
            lifecycle.expire(state, d, [version])


def _next_version(
    mapper: Mapper[Any], state: _State, d: dict[str, Any], params: dict[str, Any]
) -> None:
    """Put an object's expected version in the WHERE and its next one in the SET."""
    key = mapper.version_key
    assert key is not None
    committed = state.committed
    expected = committed[key] if committed and key in committed else d.get(key)
    params["version_0"] = expected
    generator = mapper.version_generator
    if generator is not None and key not in (committed or ()):
        params[key] = generator(cast("int | None", expected))
    elif generator is None:
        params.pop(key, None)
