"""Rows -> instances, always through the identity map: one object per row identity.

The per-row loop is the hot path of every query. It does what
``../shared/bench/FLOORS.md`` shows to be the floor and nothing more: one dictionary
lookup for the identity, and for a new row ``__new__``, one ``__dict__.update`` from the
row, one slotted state record and one index entry. Core has already converted the
values (its result processors), so no value is touched twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypeVar, final

from sqlalchemy import CompoundSelect, Delete, FromClause, Insert, Row, Select, Update, UpdateBase
from sqlalchemy.engine import Result
from sqlalchemy.exc import InvalidRequestError

from typed_session._core import annotations_of, object_result, raw_columns, returning_columns
from typed_session._identity import BARE
from typed_session._lifecycle import mark_loaded
from typed_session._mapping.mapper import ENTITY_ANNOTATION, Mapper
from typed_session._state import STATE_ATTR, InstanceState, new_instance_state
from typed_session._typing import Identity, IdentityToken
from typed_session.exc import ObjectDeletedError, describe

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, CursorResult
    from sqlalchemy.sql import Executable

    from typed_session._identity import IdentityMap

__all__ = [
    "EntityColumns",
    "entity_columns",
    "execute",
    "get_by_identity",
    "load_expired",
    "load_instances",
    "make_block",
    "require_identity",
    "whole_row",
    "wrap_result",
    "yield_per_of",
]

_O = TypeVar("_O")

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
ExecutionOptions = Mapping[str, Any] | None


#: the Core annotation that marks the columns a ``joinedload`` added to a SELECT
JOINED_ANNOTATION = "typed_session_joined"


class JoinedStep(Protocol):
    """A ``joinedload`` step: which relationship of which block the joined columns fill."""

    @property
    def parent_step(self) -> JoinedStep | None:
        """The step whose objects are the parents here (``None``: a selected entity's)."""
        ...

    @property
    def parent_mapper(self) -> Mapper[Any]:
        """The mapper of the parents."""
        ...

    def populate(self, parents: Sequence[Any], children: Sequence[Any], /) -> None:
        """Store the related objects of each row (``children[i]`` of ``parents[i]``)."""
        ...


@final
@dataclass(frozen=True, slots=True)
class EntityColumns:
    """Where one entity's columns sit in a result row."""

    mapper: Mapper[Any]
    offset: int
    #: positions of the mapped attributes inside the block, in ``mapper.load_keys`` order
    positions: tuple[int, ...]
    width: int
    #: positions of the primary-key values in the whole row
    pk_positions: tuple[int, ...]
    #: whether the row is exactly the mapper's attributes in ``load_keys`` order
    full: bool
    #: the ``joinedload`` step these columns were added for (not part of the result)
    joined: JoinedStep | None = None


#: rows pulled from Core per call when a whole result is loaded: one Python call per
#: batch instead of three per row, while only a batch of Core's rows is alive at once
#: (fetching every row first leaves them all for the cyclic collector to walk)
_FETCH_BATCH = 1000


def make_block(
    mapper: Mapper[Any],
    offset: int,
    positions: tuple[int, ...],
    width: int,
    joined: JoinedStep | None = None,
) -> EntityColumns:
    """Describe where an entity's columns sit, with the derived positions precomputed."""
    keys = mapper.load_keys
    pk_positions = tuple(offset + positions[keys.index(k)] for k in mapper.pk_keys)
    full = offset == 0 and width == len(keys) and positions == tuple(range(len(keys)))
    return EntityColumns(mapper, offset, positions, width, pk_positions, full, joined)


@functools.cache
def whole_row(mapper: Mapper[Any]) -> EntityColumns:
    """The block of a row of ``mapper.select_statement``: every column, in order."""
    n = len(mapper.load_keys)
    return make_block(mapper, 0, tuple(range(n)), n)


Layout = tuple[list[EntityColumns], int]
"""The entity blocks of a statement's result rows, and the rows' width."""


def entity_columns(statement: object) -> Layout | None:
    """Find the entities among the columns a statement returns.

    ``select(User, Address.id)``, ``insert(User).returning(User)`` (UPDATE and DELETE
    alike) and a ``union_all()`` of entity selects all have them.

    Returns:
        The entity blocks and the total row width, or ``None`` when the statement
        returns no entity (plain Core, returned to the caller untouched).

    Raises:
        InvalidRequestError: if a set operation's SELECTs do not select the same
            entities in the same places, or the columns cannot be lined up.
    """
    if isinstance(statement, Select):
        return _layout(raw_columns(statement), len(statement.selected_columns))
    if isinstance(statement, UpdateBase):
        returning = returning_columns(statement)
        if not returning:
            return None
        return _layout(returning, len(statement.exported_columns))
    if isinstance(statement, CompoundSelect):
        return _compound_layout(statement)
    return None


def _layout(elements: Sequence[Any], width: int) -> Layout | None:
    """The entity blocks of a columns clause (``select(...)``, ``returning(...)``)."""
    blocks: list[EntityColumns] = []
    offset = 0
    for element in elements:
        annotations = annotations_of(element)
        mapper = annotations.get(ENTITY_ANNOTATION)
        if mapper is not None:
            assert isinstance(mapper, Mapper)
            cols = list(element.c)
            index = {c.key: i for i, c in enumerate(cols)}
            # an alias (a joinedload's) has the table's column keys, not its columns
            positions = tuple(index[a.column.key] for a in mapper.columns.values())
            joined = annotations.get(JOINED_ANNOTATION)
            blocks.append(make_block(mapper, offset, positions, len(cols), joined))
            offset += len(cols)
        elif isinstance(element, FromClause):
            offset += len(element.c)
        else:
            offset += 1
    if not blocks:
        return None
    if offset != width:
        raise InvalidRequestError(
            "typed_session could not line up the selected columns with the entities of "
            f"this statement ({offset} expected, {width} selected); select entities and "
            "columns without repeating them"
        )
    return blocks, offset


def _compound_layout(statement: CompoundSelect[*tuple[Any, ...]]) -> Layout | None:
    """A set operation's rows are its first SELECT's: every SELECT must agree with it."""
    layouts = [entity_columns(select_) for select_ in statement.selects]
    first = layouts[0]
    if any(layout != first for layout in layouts[1:]):
        raise InvalidRequestError(
            f"the SELECTs of this {statement.keyword.value} do not select the same entities "
            "in the same places, so its rows cannot be turned into objects: select the same "
            "entity in each (union_all(select(User).where(...), select(User).where(...))), "
            "or select plain columns only (select(User.id, User.name))"
        )
    return first


def load_instances(
    imap: IdentityMap,
    block: EntityColumns,
    rows: Iterable[Sequence[Any]],
    *,
    refresh: bool = False,
    token: IdentityToken = None,
) -> list[Any]:
    """Turn rows into objects of one entity through the identity map (``None`` for NULL keys).

    Args:
        imap: the session's identity map.
        block: where the entity's columns sit in each row.
        rows: the rows.
        refresh: the rows are newer than what objects already in the map hold (an
            UPDATE's RETURNING): their values replace those the objects have not changed
            themselves. Otherwise only expired attributes are filled.
        token: the identity token of the shard the rows come from.
    """
    mapper = block.mapper
    cls = mapper.class_
    new = object.__new__
    keys = mapper.load_keys
    table = imap.table_for(mapper, token)
    lookup = table.get
    make_state = new_instance_state
    # an object of the default token gets no state: a bare weak reference in the map and
    # the map's mark in its dict (``_identity``); a shard's rows keep their token in one
    mark = imap.mark if token is None else None
    bare = BARE
    offset = block.offset
    full = block.full
    pk_pos = block.pk_positions
    single = len(pk_pos) == 1
    pk0 = pk_pos[0]
    out: list[Any] = []
    append = out.append
    added = 0
    for row in rows:
        ident = row[pk0] if single else tuple(row[i] for i in pk_pos)
        entry = lookup(ident)
        if entry is not None:
            obj = entry()
            if obj is not None:
                # a bare entry's object is loaded and untouched since: nothing expired,
                # nothing changed (a refresh replaces every value, and makes no state)
                state: InstanceState[Any] | None = (
                    None if entry.__class__ is bare else entry  # type: ignore[assignment]
                )
                if refresh or (state is not None and state.expired):
                    _refresh_from_row(state, obj.__dict__, block, row, refresh=refresh)
                append(obj)
                continue
        if ident is None or (not single and None in ident):
            append(None)
            continue
        obj = new(cls)
        d = obj.__dict__
        # zip without strict=: the keyword alone costs ~12% of this loop, and a row
        # always holds the block's columns (Core built it from the same statement)
        if full:
            d.update(zip(keys, row))  # noqa: B905
        else:
            d.update(zip(keys, [row[offset + p] for p in block.positions]))  # noqa: B905
        if mark is not None:
            d[STATE_ATTR] = mark
            table[ident] = bare(obj)
        else:
            # born persistent: the one state record made with its lifecycle fields filled
            # in, positionally (identity, token, map), because this line runs per row
            table[ident] = make_state(mapper, obj, ident, token, imap)
        append(obj)
        added += 1
    imap.note_added(added)
    return out


def _refresh_from_row(
    state: InstanceState[Any] | None,
    d: dict[str, Any],
    block: EntityColumns,
    row: Sequence[Any],
    *,
    refresh: bool,
) -> None:
    """Fill an existing object's expired attributes (all unchanged ones with ``refresh``).

    ``state`` is ``None`` for an object without one yet: nothing of it is expired or
    changed.
    """
    expired = (None if state is None else state.expired) or frozenset()
    changed = state.committed if state is not None and state.modified and state.committed else {}
    keys = block.mapper.load_keys
    offset = block.offset
    for key, pos in zip(keys, block.positions, strict=True):
        if key in expired or (refresh and key not in changed):
            d[key] = row[offset + pos]
    if expired and state is not None:
        mark_loaded(state)


def wrap_result(imap: IdentityMap, statement: object, result: CursorResult[Any]) -> Result[Any]:
    """Resolve the entities of a Core result through the identity map.

    A statement without entities gets Core's own result back untouched.
    """
    found = entity_columns(statement)
    if found is None:
        return result
    return _resolve(imap, found, result, refresh=isinstance(statement, Update))


def _resolve(
    imap: IdentityMap,
    found: Layout,
    result: CursorResult[Any],
    *,
    refresh: bool,
    after_load: AfterLoad | None = None,
    yield_per: int | None = None,
    token: IdentityToken = None,
) -> Result[Any]:
    """A result whose entity blocks are replaced by objects (see ``load_instances``).

    With ``yield_per`` the rows are loaded ``yield_per`` at a time, as the result is
    read (each batch through the identity map, then its relationship loaders): the
    objects a reader has dropped can be collected, so a large result streams.
    """
    blocks, width = found
    if any(b.joined is not None for b in blocks):
        return _resolve_joined(
            imap, blocks, width, result, refresh=refresh, after_load=after_load, token=token
        )
    if len(blocks) == 1 and blocks[0].offset == 0 and blocks[0].width == width:
        # one entity and nothing else: the result holds the bare objects, which Core's
        # scalars() yields as they are. Rows are pulled a batch at a time (_FETCH_BATCH)
        block = blocks[0]
        name = [block.mapper.class_.__name__]
        if yield_per is not None:
            batches = result.partitions(yield_per)
            objects = (
                obj
                for rows in batches
                for obj in _loaded(
                    imap, block, rows, refresh=refresh, after_load=after_load, token=token
                )
            )
            return object_result(name, objects, bare_scalars=True)
        batched = chain.from_iterable(result.partitions(_FETCH_BATCH))
        objs = _loaded(imap, block, batched, refresh=refresh, after_load=after_load, token=token)
        return object_result(name, iter(objs), bare_scalars=True)
    keys = list(result.keys())
    out_keys: list[str] = []
    pos = 0
    while pos < width:
        at = next((b for b in blocks if b.offset == pos), None)
        out_keys.append(keys[pos] if at is None else at.mapper.class_.__name__)
        pos += 1 if at is None else at.width
    if yield_per is not None:
        out: Iterator[tuple[Any, ...]] = (
            row
            for rows in result.partitions(yield_per)
            for row in _with_objects(
                imap, found, rows, refresh=refresh, after_load=after_load, token=token
            )
        )
        return object_result(out_keys, out)
    rows = result.all()
    return object_result(
        out_keys,
        iter(_with_objects(imap, found, rows, refresh=refresh, after_load=after_load, token=token)),
    )


def _loaded(
    imap: IdentityMap,
    block: EntityColumns,
    rows: Iterable[Sequence[Any]],
    *,
    refresh: bool,
    after_load: AfterLoad | None,
    token: IdentityToken = None,
) -> list[Any]:
    objs = load_instances(imap, block, rows, refresh=refresh, token=token)
    if after_load is not None:
        after_load(block.mapper, objs)
    return objs


def _with_objects(
    imap: IdentityMap,
    found: Layout,
    rows: Sequence[Sequence[Any]],
    *,
    refresh: bool,
    after_load: AfterLoad | None,
    token: IdentityToken = None,
) -> list[tuple[Any, ...]]:
    """Rows whose entity blocks are replaced by the objects they load, each one column."""
    blocks, width = found
    columns: list[list[Any]] = [list(r) for r in rows]
    replaced: dict[int, tuple[EntityColumns, list[Any]]] = {
        b.offset: (b, load_instances(imap, b, rows, refresh=refresh, token=token)) for b in blocks
    }
    if after_load is not None:
        for block, objs in replaced.values():
            after_load(block.mapper, objs)
    pos = 0
    picks: list[tuple[int, int | None]] = []  # (row position, entity index)
    block_objs: list[list[Any]] = []
    while pos < width:
        hit = replaced.get(pos)
        if hit is None:
            picks.append((pos, None))
            pos += 1
        else:
            block, objs = hit
            picks.append((pos, len(block_objs)))
            block_objs.append(objs)
            pos += block.width
    return [
        tuple(columns[i][p] if e is None else block_objs[e][i] for p, e in picks)
        for i in range(len(rows))
    ]


AfterLoad = Callable[[Mapper[Any], list[Any]], None]
"""Called with each entity's objects once a result is loaded (relationship loading)."""


def _resolve_joined(
    imap: IdentityMap,
    blocks: list[EntityColumns],
    width: int,
    result: CursorResult[Any],
    *,
    refresh: bool,
    after_load: AfterLoad | None,
    token: IdentityToken = None,
) -> Result[Any]:
    """A result with ``joinedload`` columns: they fill relationships and are then dropped.

    Rows repeat a parent once per joined child; the result has each selected row once
    (the first time it appears), as SQLAlchemy's ``unique()`` gives it.
    """
    rows = result.all()
    keys = list(result.keys())
    objs = {b.offset: load_instances(imap, b, rows, refresh=refresh, token=token) for b in blocks}
    by_step = {b.joined: b for b in blocks if b.joined is not None}
    for block in blocks:
        step = block.joined
        if step is None:
            continue
        parent_step = step.parent_step
        if parent_step is None:
            parent_block = next(
                b for b in blocks if b.joined is None and b.mapper is step.parent_mapper
            )
        else:
            parent_block = by_step[parent_step]
        step.populate(objs[parent_block.offset], objs[block.offset])
    shown = [b for b in blocks if b.joined is None]
    if after_load is not None:
        for block in shown:
            after_load(block.mapper, objs[block.offset])
    hidden = {
        p for b in blocks if b.joined is not None for p in range(b.offset, b.offset + b.width)
    }
    picks: list[tuple[int, EntityColumns | None]] = []
    pos = 0
    starts = {b.offset: b for b in shown}
    while pos < width:
        start = starts.get(pos)
        if start is not None:
            picks.append((pos, start))
            pos += start.width
        elif pos in hidden:
            pos += 1
        else:
            picks.append((pos, None))
            pos += 1
    out_keys = [keys[p] if b is None else b.mapper.class_.__name__ for p, b in picks]
    seen: set[tuple[Any, ...]] = set()
    out_rows: list[tuple[Any, ...]] = []
    for i, row in enumerate(rows):
        out = tuple(row[p] if b is None else objs[b.offset][i] for p, b in picks)
        marker = tuple(
            _row_marker(v, entity=b is not None) for v, (_p, b) in zip(out, picks, strict=True)
        )
        if marker not in seen:
            seen.add(marker)
            out_rows.append(out)
    if len(picks) == 1 and picks[0][1] is not None:
        return object_result(out_keys, iter([r[0] for r in out_rows]), bare_scalars=True)
    return object_result(out_keys, iter(out_rows))


def _row_marker(value: object, *, entity: bool) -> object:
    """What tells two result rows apart: objects by identity, values by value."""
    if entity:
        return id(value)
    try:
        hash(value)
    except TypeError:
        return id(value)
    return value


def execute(
    connection: Connection,
    imap: IdentityMap,
    statement: Executable,
    params: Params = None,
    execution_options: ExecutionOptions = None,
    *,
    after_load: AfterLoad | None = None,
    token: IdentityToken = None,
) -> Result[Any]:
    """Run a statement; the entities it returns come back through the identity map.

    ``token`` is the identity token of the shard ``connection`` reaches: the objects
    loaded are indexed under it.

    Raises:
        InvalidRequestError: before any SQL, if its entities cannot be lined up with
            its columns (see ``entity_columns``).
    """
    _check_returning(connection, statement)
    found = entity_columns(statement)
    result = connection.execute(statement, params, execution_options=execution_options)
    if found is None:
        return result
    return _resolve(
        imap,
        found,
        result,
        refresh=isinstance(statement, Update),
        after_load=after_load,
        yield_per=yield_per_of(statement, execution_options),
        token=token,
    )


def yield_per_of(statement: Executable, execution_options: ExecutionOptions) -> int | None:
    """The ``yield_per`` execution option of a run (the call's over the statement's).

    Core then reads rows through a server-side cursor, that many at a time, and the
    entities of the result are loaded as it is read (see ``_resolve``).
    """
    value = (execution_options or {}).get("yield_per")
    if value is None:
        value = statement.get_execution_options().get("yield_per")
    return None if value is None else int(value)


#: DML statement class -> the dialect flag that says whether it can have RETURNING
_RETURNING_SUPPORT: tuple[tuple[type[UpdateBase], str], ...] = (
    (Insert, "insert_returning"),
    (Update, "update_returning"),
    (Delete, "delete_returning"),
)


def _check_returning(connection: Connection, statement: Executable) -> None:
    """Refuse, before the database does with a syntax error, RETURNING it does not have.

    Raises:
        InvalidRequestError: e.g. for ``update(...).returning(...)`` on MariaDB.
    """
    if not isinstance(statement, UpdateBase) or not returning_columns(statement):
        return
    dialect = connection.dialect
    for kind, flag in _RETURNING_SUPPORT:
        if isinstance(statement, kind) and not getattr(dialect, flag):
            verb = kind.__name__.upper()
            raise InvalidRequestError(
                f"{dialect.name} has no {verb} ... RETURNING, so this statement cannot return "
                f"rows there: run the {verb} without returning(), then select the rows (for "
                "objects: session.scalars(select(Entity).where(...)))"
            )


ForUpdate: TypeAlias = bool | Mapping[str, Any] | None
"""``with_for_update``: ``True``, or ``Select.with_for_update``'s keywords (``nowait``,
``read``, ``skip_locked``, ``key_share``, ``of``)."""


def _row_by_identity(
    connection: Connection, mapper: Mapper[Any], identity: Identity, for_update: ForUpdate = None
) -> Row[*tuple[object, ...]] | None:
    """The one SELECT by primary key: every column of the row, or ``None``.

    ``FOR UPDATE`` is added where asked (Core leaves it out on SQLite, which has none).
    """
    statement = mapper.get_statement
    if for_update:
        statement = statement.with_for_update(**({} if for_update is True else for_update))
    return connection.execute(statement, mapper.pk_params(identity)).first()


def get_by_identity(
    connection: Connection,
    imap: IdentityMap,
    mapper: Mapper[_O],
    identity: Identity,
    for_update: ForUpdate = None,
    token: IdentityToken = None,
) -> _O | None:
    """Load the object with this identity from the database, through the identity map.

    ``token`` is the identity token of the shard ``connection`` reaches.
    """
    row = _row_by_identity(connection, mapper, identity, for_update)
    if row is None:
        return None
    objs: list[_O] = load_instances(imap, whole_row(mapper), (row,), token=token)
    return objs[0]


def require_identity(state: InstanceState[Any]) -> Identity:
    """The identity to load a state's row by.

    Raises:
        InvalidRequestError: if the object has none (it is pending or transient).
    """
    identity = state.identity
    if identity is None:
        raise InvalidRequestError(
            f"Instance {describe(state.obj())} cannot be refreshed - it's not persistent "
            "and does not contain a full primary key. Its expired attributes were "
            "discarded when its transaction was rolled back: assign them again, or flush "
            "it first"
        )
    return identity


def load_expired(
    state: InstanceState[Any], connection: Connection, for_update: ForUpdate = None
) -> None:
    """Reload an object's expired attributes by primary key (all of them, in one SELECT).

    Raises:
        ObjectDeletedError: if the row is gone.
    """
    obj = state.obj()
    if obj is None:
        return
    row = _row_by_identity(connection, state.mapper, require_identity(state), for_update)
    if row is None:
        raise ObjectDeletedError(obj)
    expired = state.expired or frozenset()
    d = obj.__dict__
    for key, value in zip(state.mapper.load_keys, row, strict=True):
        if key in expired:
            d[key] = value
    mark_loaded(state)
