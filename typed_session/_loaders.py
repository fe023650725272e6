"""Loading relationships: lazily on first access, or for a whole result at once.

* ``lazy_load`` loads one object's relationship when it is first read. A many-to-one
  whose key the identity map already holds costs no SQL.
* ``selectinload(Parent.children)`` (and ``lazy="selectin"``) loads the relationship for
  every object of a result with one more SELECT per relationship (``IN`` over the keys,
  in chunks), nested options following on the objects loaded, so a loop over parents and
  children is a fixed number of queries however many parents there are.
* ``raiseload(Parent.children)`` (and ``lazy="raise"``) makes a lazy load an error: the
  habit that keeps implicit I/O out of code, and what an async session needs.

Statements run through ``loading.execute``, so every row still goes through the identity
map; which connection serves a mapper is the caller's (the session's binds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, final, overload

from sqlalchemy import ColumnElement, Connection, Select, and_, select, tuple_
from sqlalchemy.exc import InvalidRequestError

from typed_session import _lifecycle as lifecycle
from typed_session import _loading as loading
from typed_session._collections import loaded_collection
from typed_session._core import StatementOption, annotate, has_limit, statement_options
from typed_session._loading import JOINED_ANNOTATION
from typed_session._mapping.mapper import ENTITY_ANNOTATION, Mapper
from typed_session._mapping.relationships import Direction, Relationship
from typed_session._records import NoPublicConstructor, internal_constructor
from typed_session._related import hooks_for
from typed_session._state import InstanceState, instance_state, state_of

if TYPE_CHECKING:
    from typed_session._identity import IdentityMap

__all__ = [
    "JoinedRelationship",
    "LoaderOption",
    "add_joins",
    "eager_load",
    "eager_options",
    "join_on",
    "joinedload",
    "lazy_load",
    "raiseload",
    "selectinload",
]

_C = TypeVar("_C")
_D = TypeVar("_D")

ConnectionFor = Callable[[Mapper[Any]], Connection]
"""The connection that loads a mapper's rows (the session's, for its bind)."""

Strategy = Literal["selectin", "raise", "joined"]

#: parameters per IN clause: well under every backend's limit on bound parameters
_CHUNK = 500


@final
class LoaderOption(
    StatementOption,
    Generic[_C],
    metaclass=NoPublicConstructor,
    obtained_by="call selectinload(), joinedload() or raiseload()",
):
    """A relationship loading option for ``select(...).options(...)``: a path of steps.

    ``selectinload(A.bs).selectinload(B.cs)`` is one option whose path has two steps;
    ``_C`` is the class the last step loads, which the next step starts from.
    """

    # no __slots__: Core copies an option through its __dict__ (ExecutableOption._clone)

    def __init__(self, path: tuple[tuple[Relationship, Strategy], ...]) -> None:
        self.path: tuple[tuple[Relationship, Strategy], ...] = path

    @overload
    def selectinload(self, attribute: ColumnElement[list[_D]], /) -> LoaderOption[_D]: ...
    @overload
    def selectinload(self, attribute: ColumnElement[set[_D]], /) -> LoaderOption[_D]: ...
    @overload
    def selectinload(self, attribute: ColumnElement[_D | None], /) -> LoaderOption[_D]: ...
    def selectinload(self, attribute: object, /) -> LoaderOption[Any]:
        """Continue the path: load ``attribute`` of the objects this step loaded."""
        return _new_loader_option((*self.path, (_relationship(attribute), "selectin")))

    @overload
    def joinedload(self, attribute: ColumnElement[list[_D]], /) -> LoaderOption[_D]: ...
    @overload
    def joinedload(self, attribute: ColumnElement[set[_D]], /) -> LoaderOption[_D]: ...
    @overload
    def joinedload(self, attribute: ColumnElement[_D | None], /) -> LoaderOption[_D]: ...
    def joinedload(self, attribute: object, /) -> LoaderOption[Any]:
        """Continue the path: join ``attribute`` of what this step loaded into the query."""
        return _new_loader_option((*self.path, (_relationship(attribute), "joined")))

    @overload
    def raiseload(self, attribute: ColumnElement[list[_D]], /) -> LoaderOption[_D]: ...
    @overload
    def raiseload(self, attribute: ColumnElement[set[_D]], /) -> LoaderOption[_D]: ...
    @overload
    def raiseload(self, attribute: ColumnElement[_D | None], /) -> LoaderOption[_D]: ...
    def raiseload(self, attribute: object, /) -> LoaderOption[Any]:
        """Continue the path: refuse lazy loads of ``attribute`` on what this step loaded."""
        return _new_loader_option((*self.path, (_relationship(attribute), "raise")))

    def __repr__(self) -> str:
        return " -> ".join(f"{strategy}load({rel})" for rel, strategy in self.path)


_new_loader_option: Callable[[tuple[tuple[Relationship, Strategy], ...]], LoaderOption[Any]] = (
    internal_constructor(LoaderOption)
)


@overload
def selectinload(attribute: ColumnElement[list[_C]], /) -> LoaderOption[_C]: ...
@overload
def selectinload(attribute: ColumnElement[set[_C]], /) -> LoaderOption[_C]: ...
@overload
def selectinload(attribute: ColumnElement[_C | None], /) -> LoaderOption[_C]: ...
def selectinload(attribute: object, /) -> LoaderOption[Any]:
    """Load a relationship for every object of the result in one more SELECT.

    ``select(Parent).options(selectinload(Parent.children))``; nest with
    ``selectinload(A.bs).selectinload(B.cs)``.
    """
    return _new_loader_option(((_relationship(attribute), "selectin"),))


@overload
def joinedload(attribute: ColumnElement[list[_C]], /) -> LoaderOption[_C]: ...
@overload
def joinedload(attribute: ColumnElement[set[_C]], /) -> LoaderOption[_C]: ...
@overload
def joinedload(attribute: ColumnElement[_C | None], /) -> LoaderOption[_C]: ...
def joinedload(attribute: object, /) -> LoaderOption[Any]:
    """Load a relationship in the same SELECT, with a LEFT OUTER JOIN.

    ``select(Child).options(joinedload(Child.parent))``; rows repeated by a joined
    collection come back once each. A collection cannot be joined into a SELECT with
    LIMIT or OFFSET (the limit would count joined rows): use ``selectinload`` there.
    """
    return _new_loader_option(((_relationship(attribute), "joined"),))


@overload
def raiseload(attribute: ColumnElement[list[_C]], /) -> LoaderOption[_C]: ...
@overload
def raiseload(attribute: ColumnElement[set[_C]], /) -> LoaderOption[_C]: ...
@overload
def raiseload(attribute: ColumnElement[_C | None], /) -> LoaderOption[_C]: ...
def raiseload(attribute: object, /) -> LoaderOption[Any]:
    """Make a lazy load of this relationship, on the objects of the result, an error."""
    return _new_loader_option(((_relationship(attribute), "raise"),))


@overload
def join_on(attribute: ColumnElement[list[_C]], /) -> ColumnElement[bool]: ...
@overload
def join_on(attribute: ColumnElement[set[_C]], /) -> ColumnElement[bool]: ...
@overload
def join_on(attribute: ColumnElement[_C | None], /) -> ColumnElement[bool]: ...
def join_on(attribute: object, /) -> ColumnElement[bool]:
    """The ON clause of a relationship, for a join Core cannot infer.

    ``select(Team).join(Player, join_on(Team.players))``: the tables reference each other
    through several foreign keys, and the relationship knows which one it uses. (Where
    one foreign key links them, ``select(Parent).join(Parent.children)`` is enough.)
    A many-to-many's clause joins through its association table, which must be in the
    FROM: ``.join(link).join(Tag, join_on(Post.tags))``, or use two joins of your own.
    """
    rel = _relationship(attribute)
    if rel.direction is Direction.MANY_TO_MANY:
        return and_(
            *(ref == fk for ref, fk in rel.sync_pairs),
            *(ref == fk for ref, fk in rel.secondary_pairs),
        )
    return and_(*(ref == fk for ref, fk in rel.sync_pairs))


def _relationship(attribute: object) -> Relationship:
    rel = getattr(attribute, "relationship", None)
    if not isinstance(rel, Relationship):
        raise TypeError(
            f"a loader option takes a relationship attribute such as Parent.children, "
            f"not {attribute!r}"
        )
    return rel


# -- lazy loading -------------------------------------------------------------------------


def lazy_load(
    state: InstanceState[Any], rel: Relationship, connection_for: ConnectionFor
) -> object:
    """Load one object's relationship, store it in the object (no history) and return it."""
    obj = state.obj()
    assert obj is not None
    imap = state.identity_map if state.identity is not None else state.loads_through
    imap = imap or state.identity_map
    assert imap is not None
    d = obj.__dict__
    if rel.direction is Direction.MANY_TO_ONE:
        value = _load_many_to_one(obj, rel, imap, connection_for)
        d[rel.key] = value
        return value
    statement, keys = _lazy_statement(rel)
    params = {f"rel_{i}": d.get(k) for i, k in enumerate(keys)}
    if None in params.values():  # an object without its key yet: nothing can refer to it
        return _store(rel, obj, [])
    objs = list(loading.execute(connection_for(rel.target), imap, statement, params).scalars())
    return _store(rel, obj, objs)


_LAZY: dict[Relationship, tuple[Any, tuple[str, ...]]] = {}


def _lazy_statement(rel: Relationship) -> tuple[Any, tuple[str, ...]]:
    cached = _LAZY.get(rel)
    if cached is None:
        cached = _LAZY[rel] = rel.lazy_statement()
    return cached


def _load_many_to_one(
    obj: object, rel: Relationship, imap: IdentityMap, connection_for: ConnectionFor
) -> object:
    d = obj.__dict__
    if rel.loads_by_target_key():
        values = [d.get(k) for k in rel.target_identity_keys()]
        if None in values:
            return None
        ident = values[0] if len(values) == 1 else tuple(values)
        found = imap.lookup(rel.target, ident)
        if found is not None:
            related = found.obj()
            if related is not None and not lifecycle.fully_expired(found):
                return related
        return loading.get_by_identity(connection_for(rel.target), imap, rel.target, ident)
    statement, keys = _lazy_statement(rel)
    params = {f"rel_{i}": d.get(k) for i, k in enumerate(keys)}
    if None in params.values():
        return None
    return loading.execute(connection_for(rel.target), imap, statement, params).scalars().first()


def _store(rel: Relationship, owner: object, objs: Sequence[object]) -> object:
    """Put a loaded one-to-many / many-to-many value into ``owner`` (and the back side)."""
    d = owner.__dict__
    value: object
    if rel.collection_class is None:
        value = objs[0] if objs else None
    else:
        value = loaded_collection(rel.collection_class, owner, hooks_for(rel), objs)
    d[rel.key] = value
    back = rel.back_populates
    if back is not None and back.direction is Direction.MANY_TO_ONE:
        for child in objs:  # each child's parent is known: no SQL, no lookup later
            child.__dict__.setdefault(back.key, owner)
    return value


# -- eager loading ------------------------------------------------------------------------


def eager_options(statement: object) -> tuple[LoaderOption[Any], ...]:
    """The loader options a statement carries."""
    return tuple(o for o in statement_options(statement) if isinstance(o, LoaderOption))


def eager_options_paths(statement: object) -> list[tuple[tuple[Relationship, Strategy], ...]]:
    """The paths of a statement's loader options."""
    return [o.path for o in eager_options(statement) if o.path]


def eager_load(
    mapper: Mapper[Any],
    objs: Iterable[object],
    options: Sequence[LoaderOption[Any]],
    connection_for: ConnectionFor,
) -> None:
    """Apply loader options (and ``lazy="selectin"`` defaults) to the objects of a result."""
    loaded = [o for o in objs if o is not None]
    if not loaded:
        return
    paths = [o.path for o in options if o.path and o.path[0][0].parent is mapper]
    _apply(mapper, loaded, paths, connection_for, depth=0)


def _apply(
    mapper: Mapper[Any],
    objs: list[object],
    paths: list[tuple[tuple[Relationship, Strategy], ...]],
    connection_for: ConnectionFor,
    *,
    depth: int,
) -> None:
    steps: dict[Relationship, tuple[Strategy, list[tuple[tuple[Relationship, Strategy], ...]]]] = {}
    for path in paths:
        (rel, strategy), rest = path[0], path[1:]
        _, deeper = steps.setdefault(rel, (strategy, []))
        if rest:
            deeper.append(rest)
    if depth < 3:  # eager defaults of a self-referential tree stop, as join_depth does
        for rel in mapper.relationships.values():
            # lazy="joined" that no join loaded (get(), a LIMIT) loads like selectin
            if rel.lazy in ("selectin", "joined") and rel not in steps:
                steps[rel] = ("selectin", [])
    for rel, (strategy, deeper) in steps.items():
        if strategy == "joined":  # loaded by the query itself; what follows it loads now
            if deeper:
                related = [
                    v for o in objs if rel.key in o.__dict__ for v in _as_list(o.__dict__[rel.key])
                ]
                later = [p for p in deeper if p[0][1] != "joined"]
                if related and later:
                    _apply(rel.target, related, later, connection_for, depth=depth + 1)
            continue
        if strategy == "raise":
            for obj in objs:
                state: InstanceState[Any] | None = state_of(obj)
                if state is not None:
                    lifecycle.refuse_lazy(state, frozenset({rel.key}))
            continue
        related = _select_in(rel, objs, connection_for)
        if related:
            _apply(rel.target, related, deeper, connection_for, depth=depth + 1)


def _select_in(
    rel: Relationship, objs: list[object], connection_for: ConnectionFor
) -> list[object]:
    """Load ``rel`` for every object not holding it yet; return every related object."""
    todo = [o for o in objs if rel.key not in o.__dict__]
    out: list[object] = [
        v for o in objs if rel.key in o.__dict__ for v in _as_list(o.__dict__[rel.key])
    ]
    if not todo:
        return out
    imap = _imap(todo[0])
    conn = connection_for(rel.target)
    if rel.direction is Direction.MANY_TO_ONE:
        return out + _select_parents(rel, todo, imap, conn, connection_for)
    keys = [rel.parent.by_column[referenced].key for referenced, _fk in rel.sync_pairs]
    by_key: dict[object, list[object]] = {}
    owners: dict[object, list[object]] = {}
    for obj in todo:
        values = tuple(obj.__dict__[k] for k in keys)
        owners.setdefault(values, []).append(obj)
    fk_cols = [fk for _ref, fk in rel.sync_pairs]
    for chunk in _chunks(list(owners)):
        if rel.direction is Direction.MANY_TO_MANY:
            assert rel.secondary is not None
            on = and_(*(ref == fk for ref, fk in rel.secondary_pairs))
            statement = select(rel.target.class_, *fk_cols).join(rel.secondary, on)
        else:
            statement = select(rel.target.class_, *fk_cols)
        statement = statement.where(_in(fk_cols, chunk))
        if rel.order_by:
            statement = statement.order_by(*rel.order_by)
        for row in loading.execute(conn, imap, statement):
            by_key.setdefault(tuple(row[1:]), []).append(row[0])
    for owner_key, group in owners.items():
        children = by_key.get(owner_key, [])
        for obj in group:
            _store(rel, obj, children)
        out.extend(children)
    return out


def _select_parents(
    rel: Relationship,
    objs: list[object],
    imap: IdentityMap,
    conn: Connection,
    connection_for: ConnectionFor,
) -> list[object]:
    """Many-to-one: the identity map first, one SELECT for the keys it lacks."""
    target = rel.target
    if not rel.loads_by_target_key():
        for obj in objs:
            obj.__dict__[rel.key] = _load_many_to_one(obj, rel, imap, connection_for)
        return [obj.__dict__[rel.key] for obj in objs if obj.__dict__[rel.key] is not None]
    keys = rel.target_identity_keys()
    wanted: dict[object, list[object]] = {}
    for obj in objs:
        values = tuple(obj.__dict__.get(k) for k in keys)
        if None in values:
            obj.__dict__[rel.key] = None
            continue
        ident = values[0] if len(values) == 1 else values
        wanted.setdefault(ident, []).append(obj)
    found: dict[object, object] = {}
    missing = []
    for ident in wanted:
        state = imap.lookup(target, ident)
        related = None if state is None else state.obj()
        if related is None or (state is not None and lifecycle.fully_expired(state)):
            missing.append(ident)
        else:
            found[ident] = related
    pk_cols = [a.column for a in target.primary_key]
    for chunk in _chunks([i if isinstance(i, tuple) else (i,) for i in missing]):
        statement = select(target.class_).where(_in(pk_cols, chunk))
        for parent in loading.execute(conn, imap, statement).scalars():
            found[target.identity_of(parent.__dict__)] = parent
    for ident, group in wanted.items():
        parent = found.get(ident)
        for obj in group:
            obj.__dict__[rel.key] = parent
    return list(found.values())


def _in(columns: list[Any], values: list[tuple[object, ...]]) -> ColumnElement[bool]:
    if len(columns) == 1:
        single: ColumnElement[bool] = columns[0].in_([v[0] for v in values])
        return single
    return tuple_(*columns).in_(values)


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, list | set):
        return list(value)
    return [value]


def _imap(obj: object) -> IdentityMap:
    state: InstanceState[Any] = instance_state(obj)
    imap = state.identity_map
    assert imap is not None
    return imap


# -- joined eager loading -------------------------------------------------------------------


@final
class JoinedRelationship:
    """One ``joinedload`` step of a rewritten SELECT (a ``loading.JoinedStep``)."""

    __slots__ = ("parent_step", "relationship")

    def __init__(self, relationship: Relationship, parent_step: JoinedRelationship | None) -> None:
        self.relationship: Relationship = relationship
        self.parent_step: JoinedRelationship | None = parent_step

    @property
    def parent_mapper(self) -> Mapper[Any]:
        """The mapper of the objects whose relationship this step fills."""
        return self.relationship.parent

    def populate(self, parents: Sequence[Any], children: Sequence[Any], /) -> None:
        """Give each parent the children its rows carried (those not loaded already)."""
        rel = self.relationship
        grouped: dict[int, tuple[object, list[object]]] = {}
        for parent, child in zip(parents, children, strict=True):
            if parent is None:
                continue
            entry = grouped.get(id(parent))
            if entry is None:
                entry = grouped[id(parent)] = (parent, [])
            if child is not None and not any(c is child for c in entry[1]):
                entry[1].append(child)
        for parent, kids in grouped.values():
            if rel.key in parent.__dict__:
                continue  # loaded already: unflushed changes to it are kept
            if rel.direction is Direction.MANY_TO_ONE:
                parent.__dict__[rel.key] = kids[0] if kids else None
            else:
                _store(rel, parent, kids)


def add_joins(statement: Any) -> Any:
    """Rewrite a SELECT for its ``joinedload`` options: LEFT OUTER JOINs, marked columns.

    Raises:
        InvalidRequestError: for a joined collection in a SELECT with LIMIT or OFFSET, or
            a ``joinedload`` whose relationship starts at no entity of the SELECT.
    """
    if not isinstance(statement, Select):
        return statement
    paths = [o.path for o in eager_options(statement) if o.path and o.path[0][1] == "joined"]
    found = loading.entity_columns(statement)
    selected = {b.mapper for b in found[0]} if found is not None else set()
    limited = has_limit(statement)
    for mapper in selected:  # lazy="joined": joined unless an option says otherwise
        for rel in mapper.relationships.values() if mapper.relationship_keys else ():
            if (
                rel.lazy == "joined"
                and not (rel.uselist and limited)
                and not any(p[0][0] is rel for p in eager_options_paths(statement))
            ):
                paths.append(((rel, "joined"),))
    if not paths:
        return statement
    made: dict[tuple[Relationship, ...], tuple[JoinedRelationship, Any]] = {}
    for path in paths:
        parent_step: JoinedRelationship | None = None
        parent_from: Any = None
        prefix: tuple[Relationship, ...] = ()
        for rel, strategy in path:
            if strategy != "joined":
                break
            prefix = (*prefix, rel)
            if prefix in made:
                parent_step, parent_from = made[prefix]
                continue
            if parent_step is None:
                if rel.parent not in selected:
                    raise InvalidRequestError(
                        f"joinedload({rel}) starts at {rel.parent.class_.__name__}, which this "
                        "SELECT does not select; join from an entity it selects"
                    )
                parent_from = rel.parent.table
            if rel.uselist and has_limit(statement):
                raise InvalidRequestError(
                    f"joinedload({rel}) joins a collection into a SELECT with LIMIT/OFFSET, "
                    "which would count joined rows; use selectinload() for it"
                )
            statement, target = _join(statement, rel, parent_from)
            step = JoinedRelationship(rel, parent_step)
            statement = statement.add_columns(
                annotate(target, {ENTITY_ANNOTATION: rel.target, JOINED_ANNOTATION: step})
            )
            made[prefix] = (step, target)
            parent_step, parent_from = step, target
    return statement


def _join(statement: Select[Any], rel: Relationship, parent_from: Any) -> tuple[Select[Any], Any]:
    """LEFT OUTER JOIN the relationship's target (aliased) to ``parent_from``."""
    target = rel.target.table.alias()
    if rel.direction is Direction.MANY_TO_ONE:
        on = and_(*(target.c[ref.key] == parent_from.c[fk.key] for ref, fk in rel.sync_pairs))
    elif rel.direction is Direction.ONE_TO_MANY:
        on = and_(*(target.c[fk.key] == parent_from.c[ref.key] for ref, fk in rel.sync_pairs))
    else:
        assert rel.secondary is not None
        link = rel.secondary.alias()
        on_link = and_(*(link.c[fk.key] == parent_from.c[ref.key] for ref, fk in rel.sync_pairs))
        statement = statement.outerjoin_from(parent_from, link, on_link)
        on = and_(*(target.c[ref.key] == link.c[fk.key] for ref, fk in rel.secondary_pairs))
        parent_from = link
    statement = statement.outerjoin_from(parent_from, target, on)
    for clause in rel.order_by:
        column = getattr(clause, "key", None)
        if column is not None and column in target.c:
            statement = statement.order_by(target.c[column])
    return statement, target
