"""What an entity class gets installed on it: attribute descriptors, ``__setattr__``, ``__init__``.

The read path is the one that matters most. Each mapped class attribute is a *non-data*
descriptor, so a loaded value is found in the instance ``__dict__`` before the descriptor
is ever consulted and reading it runs no Python code at all (``bench/attr_read.py``
measures it). The descriptor runs only when the value is missing: on the class, where it
returns the Core column, or for an expired or never-set attribute, where it loads through
its owner (the session, through the ``StateOwner`` protocol) or explains why it cannot.

Writes go through a class-level ``__setattr__`` that records the first old value in the
state, so the flush knows which columns changed.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final, overload

from sqlalchemy import Column
from sqlalchemy.exc import InvalidRequestError

from typed_session._lifecycle import record_change, unexpire
from typed_session._mapping.fields import Mapped
from typed_session._related import empty_collection, replace_collection, set_scalar
from typed_session._state import STATE_ATTR, state_in, unmark
from typed_session._typing import MISSING
from typed_session.exc import DetachedInstanceError, UnsetAttributeError, describe

if TYPE_CHECKING:
    from sqlalchemy import FromClause

    from typed_session._mapping.mapper import ColumnAttribute, Mapper, RelationshipField
    from typed_session._mapping.relationships import Relationship
    from typed_session._state import InstanceState

__all__ = ["MappedAttribute", "RelationshipAttribute", "install"]

_T = TypeVar("_T")


@final
class MappedAttribute(Generic[_T]):
    """The class attribute behind ``Mapped[T]`` at run time (a non-data descriptor)."""

    __slots__ = ("attribute", "column", "key")

    def __init__(self, attribute: ColumnAttribute) -> None:
        self.attribute: ColumnAttribute = attribute
        self.key: str = attribute.key
        self.column: Column[_T] = attribute.column

    @overload
    def __get__(self, instance: None, owner: type[object]) -> Column[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type[object]) -> _T: ...

    def __get__(self, instance: object | None, owner: type[object]) -> Column[_T] | _T:
        if instance is None:
            return self.column
        return self._missing(instance)

    def _missing(self, instance: object) -> _T:
        """Produce a value that is not in the instance ``__dict__``: load it, or explain."""
        d = instance.__dict__
        key = self.key
        state = state_in(instance, d)
        if state is not None:
            expired = state.expired
            if expired and key in expired:
                owner = state.owner
                if owner is None:
                    raise DetachedInstanceError(instance, key)
                owner.load_expired(state, key)
                if key in d:
                    return d[key]  # type: ignore[no-any-return]  # stored by the loader
        raise self._unset(instance, state)

    def _unset(self, instance: object, state: InstanceState[Any] | None) -> UnsetAttributeError:
        attr = self.attribute
        if attr.database_generated and (state is None or state.identity is None):
            reason = (
                "the database generates it when the object is inserted; add the object "
                "to a session and call session.flush() (or commit()) before reading it, "
                "or assign a value yourself"
            )
        else:
            reason = (
                "it was never assigned; pass it to the constructor or assign it, give "
                "column() a default, or declare it Mapped[... | None] with default=None"
            )
        return UnsetAttributeError(instance, self.key, reason)

    def __repr__(self) -> str:
        return f"<mapped attribute {self.column}>"


@final
class RelationshipAttribute:
    """The class attribute behind a ``relationship()`` at run time (a non-data descriptor).

    A loaded value (the related object, or the tracked collection) sits in the instance
    ``__dict__`` and is read without running this code; the descriptor runs only for a
    value not loaded yet: an empty collection or ``None`` for a new object, a lazy load
    through the owner for a persistent one. On the class it stands for the relationship
    in ``selectinload(Parent.children)`` and ``select(Parent).join(Parent.children)``.
    """

    __slots__ = ("field", "key", "mapper")

    def __init__(self, field: RelationshipField, mapper: Mapper[Any]) -> None:
        self.field: RelationshipField = field
        self.key: str = field.key
        self.mapper: Mapper[Any] = mapper

    @property
    def relationship(self) -> Relationship:
        """The configured relationship (configuring the registry on first use)."""
        return self.mapper.relationships[self.key]

    def __clause_element__(self) -> FromClause:
        """The related entity, as a join target (the foreign keys give the ON clause)."""
        return self.relationship.target.entity_clause

    @overload
    def __get__(self, instance: None, owner: type[object]) -> RelationshipAttribute: ...

    @overload
    def __get__(self, instance: object, owner: type[object]) -> object: ...

    def __get__(self, instance: object | None, owner: type[object]) -> object:
        if instance is None:
            return self
        rel = self.relationship
        d = instance.__dict__
        state = state_in(instance, d)
        if state is None or state.identity is None:  # transient or pending: nothing yet
            through = None if state is None else state.loads_through
            loader = None if through is None else through.owner
            if state is not None and loader is not None:  # enable_relationship_loading()
                return loader.load_related(state, rel)  # by its foreign keys
            if rel.collection_class is None:
                return None
            collection = d[self.key] = empty_collection(rel, instance)
            return collection
        if state.no_lazy and self.key in state.no_lazy:
            raise _lazy_refused(rel, instance, "a raiseload() option")
        if rel.lazy == "raise":
            raise _lazy_refused(rel, instance, 'lazy="raise"')
        if rel.lazy == "noload":  # never loaded: what a new object would hold
            if rel.collection_class is None:
                return None
            collection = d[self.key] = empty_collection(rel, instance)
            return collection
        owner_ = state.owner
        if owner_ is None:
            raise DetachedInstanceError(instance, self.key, relationship=True)
        return owner_.load_related(state, rel)

    def set(self, instance: object, value: object) -> None:
        """Assign the attribute: mirror, record and cascade (see ``related``)."""
        rel = self.relationship
        if rel.collection_class is None:
            set_scalar(rel, instance, value)
        else:
            if not isinstance(value, list | set | tuple):
                raise TypeError(
                    f"{rel} is a collection: assign a {rel.collection_class.__name__} of "
                    f"{rel.target.class_.__name__} objects, not {type(value).__name__}"
                )
            replace_collection(rel, instance, value)

    def __repr__(self) -> str:
        return f"<relationship attribute {self.mapper.class_.__name__}.{self.key}>"


def _lazy_refused(rel: Relationship, instance: object, why: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"'{rel}' is not available due to {why}: {describe(instance)} would load it "
        f"with SQL on attribute access. Load it with the query instead: "
        f"select({rel.parent.class_.__name__}).options(selectinload("
        f"{rel.parent.class_.__name__}.{rel.key})), or session.refresh(obj, [{rel.key!r}])"
    )


def _make_setattr(
    keys: frozenset[str], pk_keys: frozenset[str], related: dict[str, RelationshipAttribute]
) -> Callable[[object, str, object], None]:
    """A ``__setattr__`` that records history for mapped keys and stays out of the way else."""
    set_plain = object.__setattr__

    def __setattr__(self: object, key: str, value: object) -> None:
        if key in keys:
            d = self.__dict__
            held = d.get(STATE_ATTR)  # a state, or the mark of a loaded, untouched object
            if held is not None:
                state: InstanceState[Any] = unmark(self, d, held) if held.__class__ is int else held
                if state.identity is not None:
                    expired = state.expired
                    if expired and key in pk_keys and key in expired:
                        _load_old_key(self, state, key)
                    committed = state.committed
                    if committed is None or key not in committed or not state.modified:
                        record_change(state, self, d, key)
                if state.expired:
                    unexpire(state, key)
            d[key] = value
        elif key in related:
            related[key].set(self, value)
        else:
            set_plain(self, key, value)

    return __setattr__


def _load_old_key(instance: object, state: InstanceState[Any], key: str) -> None:
    """Load an expired primary-key value before it is changed (keys keep their history).

    Raises:
        DetachedInstanceError: if the object is in no session that could load it.
    """
    owner = state.owner
    if owner is None:
        raise DetachedInstanceError(instance, key)
    owner.load_expired(state, key)


def _make_delattr(keys: frozenset[str], cls_name: str) -> Callable[[object, str], None]:
    del_plain = object.__delattr__

    def __delattr__(self: object, key: str) -> None:
        if key in keys:
            raise AttributeError(
                f"{cls_name}.{key} is a mapped attribute and cannot be deleted: assign a "
                "new value instead (None, if it is declared Mapped[... | None])"
            )
        del_plain(self, key)

    return __delattr__


def _make_init(
    cls: type[Any],
    attributes: list[ColumnAttribute | RelationshipField],
    related: dict[str, RelationshipAttribute],
    *,
    post_init: bool,
) -> Callable[..., None]:
    """Generate ``__init__`` source the way dataclasses does, writing ``__dict__`` directly.

    A relationship given to the constructor is assigned through its attribute, so that
    the other side and the history follow; one left out stays unset (it is then empty,
    or loaded once the object has a row), as in SQLAlchemy.
    """
    namespace: dict[str, object] = {
        "_MISSING": MISSING,
        "_STATE": STATE_ATTR,
        "_state_in": state_in,
    }
    positional: list[str] = []
    keyword: list[str] = []
    # called again on a loaded object that has no state yet (it holds its map's mark), the
    # state is made first: it must know the key the object had (a new object's dict is
    # empty, so this costs one truth test)
    body = [
        "    _d = self.__dict__",
        "    if _d and _d.get(_STATE).__class__ is int:\n        _state_in(self, _d)",
    ]
    seen_default = False
    for attr in attributes:
        key = attr.key
        has_default = attr.default is not MISSING
        has_factory = attr.default_factory is not None
        if key in related:
            if not attr.init:
                continue
            namespace[f"_set_{key}"] = related[key].set
            param = f"{key}=_MISSING" if has_default or has_factory else key
            (keyword if attr.kw_only else positional).append(param)
            if not attr.kw_only:
                seen_default = seen_default or has_default or has_factory
            body.append(f"    if {key} is not _MISSING:\n        _set_{key}(self, {key})")
            continue
        if has_default:
            namespace[f"_dflt_{key}"] = attr.default
        if has_factory:
            namespace[f"_fact_{key}"] = attr.default_factory
        if not attr.init:
            if has_default:
                body.append(f"    _d[{key!r}] = _dflt_{key}")
            elif has_factory:
                body.append(f"    _d[{key!r}] = _fact_{key}()")
            continue
        if has_default:
            param = f"{key}=_dflt_{key}"
        elif has_factory:
            param = f"{key}=_MISSING"
            body.append(f"    if {key} is _MISSING:\n        {key} = _fact_{key}()")
        else:
            param = key
        if attr.kw_only:
            keyword.append(param)
        else:
            if seen_default and not (has_default or has_factory):
                raise TypeError(
                    f"{cls.__name__}.{key}: a positional attribute without a default follows "
                    "one with a default; give it a default or make it keyword-only "
                    "(column(kw_only=True))"
                )
            seen_default = seen_default or has_default or has_factory
            positional.append(param)
        body.append(f"    _d[{key!r}] = {key}")
    if post_init:
        body.append("    self.__post_init__()")
    params = ["self", *positional]
    if keyword:
        params += ["*", *keyword]
    source = f"def __init__({', '.join(params)}):\n" + "\n".join(body) + "\n"
    exec(source, namespace)
    init = namespace["__init__"]
    assert isinstance(init, types.FunctionType)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _getstate(self: object) -> dict[str, object]:
    """What ``copy`` and ``pickle`` take of an entity: its values, not the session's state.

    A copy is a new transient object; an unpickled one too (``session.merge()`` gives the
    session's copy of its row).
    """
    values = dict(self.__dict__)
    values.pop(STATE_ATTR, None)
    return values


def _make_repr(keys: tuple[str, ...]) -> Callable[[object], str]:
    def __repr__(self: object) -> str:
        d = self.__dict__
        shown = ", ".join(f"{k}={d[k]!r}" for k in keys if k in d)
        return f"{type(self).__qualname__}({shown})"

    return __repr__


def _dataclass_fields(
    cls: type[Any], fields: list[ColumnAttribute | RelationshipField]
) -> tuple[dict[str, dataclasses.Field[Any]], tuple[str, ...]]:
    """The ``__dataclass_fields__`` and ``__match_args__`` a dataclass of these fields has.

    Made by ``dataclasses`` itself (a throwaway dataclass with the same fields, no
    methods), so that ``dataclasses.fields()``, ``asdict()`` and ``replace()`` read them
    as they read any dataclass's, without our code naming their private parts.
    """
    specs: list[tuple[str, object, dataclasses.Field[Any]]] = []
    for attr in fields:
        options: dict[str, Any] = {}
        if attr.default_factory is not None:
            options["default_factory"] = attr.default_factory
        elif attr.default is not MISSING:
            options["default"] = attr.default
        spec: dataclasses.Field[Any] = dataclasses.field(
            init=attr.init, repr=attr.repr, compare=False, kw_only=attr.kw_only, **options
        )
        specs.append((attr.key, types.GenericAlias(Mapped, (attr.python_type,)), spec))
    shadow = dataclasses.make_dataclass(
        cls.__name__, specs, init=False, repr=False, eq=False, match_args=True
    )
    match_args: tuple[str, ...] = shadow.__match_args__  # type: ignore[attr-defined]
    return {f.name: f for f in dataclasses.fields(shadow)}, match_args


def install(
    cls: type[_T],
    mapper: Mapper[_T],
    fields: list[ColumnAttribute | RelationshipField],
    *,
    init: bool,
) -> None:
    """Instrument an entity class in place: descriptors, hooks, generated methods.

    A method the class body defines itself (``__init__``, ``__repr__``,
    ``__match_args__``) is kept, as ``dataclasses`` keeps it.

    Args:
        cls: the class.
        mapper: its mapper.
        fields: the attributes in annotation order: the generated ``__init__``'s
            parameter order and the order of ``dataclasses.fields(cls)``.
        init: whether to generate ``__init__`` (unless the class defines one).
    """
    attributes = list(mapper.columns.values())
    keys = mapper.column_key_set
    for attr in attributes:
        setattr(cls, attr.key, MappedAttribute[Any](attr))
    related = {f.key: RelationshipAttribute(f, mapper) for f in mapper.relationship_fields}
    for key, descriptor in related.items():
        setattr(cls, key, descriptor)
    # setattr() rather than assignment: mypy rightly refuses assigning methods of a
    # class it knows; here replacing them is the point
    # an expired key (or version) is loaded before it is changed: the WHERE needs the old one
    where_keys = frozenset(mapper.pk_keys).union(filter(None, (mapper.version_key,)))
    setattr(cls, "__setattr__", _make_setattr(keys, where_keys, related))  # noqa: B010
    setattr(cls, "__delattr__", _make_delattr(keys | frozenset(related), cls.__name__))  # noqa: B010
    if init and "__init__" not in cls.__dict__:
        post_init = hasattr(cls, "__post_init__")
        setattr(cls, "__init__", _make_init(cls, fields, related, post_init=post_init))  # noqa: B010
    dataclass_fields, match_args = _dataclass_fields(cls, fields)
    setattr(cls, "__dataclass_fields__", dataclass_fields)  # noqa: B010
    if "__match_args__" not in cls.__dict__:
        setattr(cls, "__match_args__", match_args)  # noqa: B010
    if "__repr__" not in cls.__dict__:
        setattr(cls, "__repr__", _make_repr(tuple(a.key for a in attributes if a.repr)))  # noqa: B010
    if "__getstate__" not in cls.__dict__:
        setattr(cls, "__getstate__", _getstate)  # noqa: B010
    entity_clause = mapper.entity_clause
    cls.__clause_element__ = classmethod(lambda _cls: entity_clause)  # type: ignore[attr-defined]
