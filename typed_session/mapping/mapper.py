"""``Mapper[T]``: what one entity class is in terms of Core — its table, columns and keys.

A mapper is built once by the ``@entity`` decorator and never changes afterwards; the
statements the session needs for every object of the class (load everything, load by
primary key) are built here once, so that Core's compiled cache serves them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from sqlalchemy import Column, FromClause, Select, Table, bindparam, select

from typed_session.exc import UnmappedClassError, UnmappedInstanceError

from .fields import MISSING

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["ColumnAttribute", "Mapper", "inspect_entity", "mapper_of", "mapper_of_instance"]

_T = TypeVar("_T")

MAPPER_ATTR = "__typed_session_mapper__"
ENTITY_ANNOTATION = "typed_session_mapper"


@final
@dataclass(frozen=True, slots=True)
class ColumnAttribute:
    """One mapped attribute: the Python side (key, defaults) and the Core column behind it."""

    key: str
    column: Column[Any]
    python_type: object
    default: object = MISSING
    default_factory: Callable[[], object] | None = None
    init: bool = True
    repr: bool = True
    kw_only: bool = True

    @property
    def nullable(self) -> bool:
        """Whether the column admits NULL."""
        return bool(self.column.nullable)

    @property
    def database_generated(self) -> bool:
        """Whether the database can supply the value when the object has none."""
        col = self.column
        return (
            col.server_default is not None
            or col.default is not None
            or (col.primary_key and col is col.table.autoincrement_column)
        )


@final
class Mapper(Generic[_T]):
    """The mapping of one entity class onto one Core table.

    Attributes:
        class_: the entity class.
        table: the Core ``Table`` rows live in.
        attributes: every mapped attribute, by attribute key, in table column order.
        primary_key: the primary-key attributes, in the table's primary-key order.
    """

    __slots__ = (
        "_by_pk_params",
        "all_keys",
        "attribute_keys",
        "attributes",
        "by_column",
        "class_",
        "dict_size_when_loaded",
        "entity_clause",
        "get_statement",
        "load_keys",
        "pk_keys",
        "primary_key",
        "registry",
        "required_keys",
        "select_statement",
        "single_pk",
        "table",
    )

    def __init__(
        self,
        class_: type[_T],
        table: Table,
        attributes: Mapping[str, ColumnAttribute],
        registry: Registry,
    ) -> None:
        self.class_ = class_
        self.table = table
        self.registry = registry
        self.attributes: Mapping[str, ColumnAttribute] = dict(attributes)
        self.attribute_keys: tuple[str, ...] = tuple(self.attributes)
        self.all_keys: frozenset[str] = frozenset(self.attribute_keys)
        #: the length of an instance ``__dict__`` holding every attribute and the state
        self.dict_size_when_loaded = len(self.attribute_keys) + 1
        #: attributes an INSERT cannot do without: NOT NULL, and no default to fall back on
        self.required_keys: tuple[str, ...] = tuple(
            a.key for a in self.attributes.values() if not (a.database_generated or a.nullable)
        )
        self.by_column: Mapping[Column[Any], ColumnAttribute] = {
            a.column: a for a in self.attributes.values()
        }
        pk_attrs = [self.by_column[c] for c in table.primary_key.columns if c in self.by_column]
        if not pk_attrs or len(pk_attrs) != len(table.primary_key.columns):
            raise UnmappedClassError(
                class_,
                f"entity {class_.__name__} has no mapped primary key: mark at least one "
                "attribute column(primary_key=True), or map a Table that has a primary key "
                "and annotate each of its primary-key columns",
            )
        self.primary_key: tuple[ColumnAttribute, ...] = tuple(pk_attrs)
        self.pk_keys: tuple[str, ...] = tuple(a.key for a in pk_attrs)
        self.single_pk = len(pk_attrs) == 1
        #: what ``select(User)`` selects: the table, annotated so that the session can
        #: tell an entity from a plain table in a statement's columns clause
        self.entity_clause: FromClause = table._annotate({ENTITY_ANNOTATION: self})
        columns = [a.column for a in self.attributes.values()]
        #: what a row of ``select_statement`` holds, position by position
        self.load_keys: tuple[str, ...] = self.attribute_keys
        self.select_statement: Select[Any] = select(*columns)
        self._by_pk_params = tuple(f"pk_{i}" for i in range(len(pk_attrs)))
        self.get_statement: Select[Any] = self.select_statement.where(
            *(a.column == bindparam(p) for a, p in zip(pk_attrs, self._by_pk_params, strict=True))
        )

    def __repr__(self) -> str:
        return f"Mapper({self.class_.__name__} -> {self.table.name})"

    def pk_params(self, identity: object) -> dict[str, object]:
        """Bind parameters of ``get_statement`` for an internal identity value."""
        if self.single_pk:
            return {"pk_0": identity}
        assert isinstance(identity, tuple)
        return dict(zip(self._by_pk_params, identity, strict=True))

    def identity_of(self, values: Mapping[str, object]) -> object:
        """The internal identity (bare value, or tuple for composite keys) from attribute values.

        Returns ``None`` when any primary-key value is missing or ``None``.
        """
        if self.single_pk:
            return values.get(self.pk_keys[0])
        ident = tuple(values.get(k) for k in self.pk_keys)
        return None if None in ident else ident

    def normalize_identity(self, ident: object) -> object:
        """Turn what a user passes to ``get()`` into the internal identity value.

        Raises:
            InvalidRequestError: if the number of values does not match the primary key.
        """
        from sqlalchemy.exc import InvalidRequestError

        if isinstance(ident, Mapping):
            try:
                values = tuple(ident[k] for k in self.pk_keys)
            except KeyError as missing:
                raise InvalidRequestError(
                    f"the primary key of {self.class_.__name__} is {self.pk_keys}; the "
                    f"mapping passed lacks {missing}"
                ) from None
        elif isinstance(ident, tuple | list):
            values = tuple(ident)
        else:
            values = (ident,)
        if len(values) != len(self.pk_keys):
            raise InvalidRequestError(
                f"the primary key of {self.class_.__name__} has {len(self.pk_keys)} "
                f"column(s) {self.pk_keys}; {len(values)} value(s) were given: {values!r}"
            )
        return values[0] if self.single_pk else values


def mapper_of(cls: type[_T]) -> Mapper[_T]:
    """The mapper of an entity class.

    Raises:
        UnmappedClassError: if ``cls`` is not an entity.
    """
    mapper: Mapper[_T] | None = getattr(cls, "__dict__", {}).get(MAPPER_ATTR)
    if mapper is None:
        raise UnmappedClassError(cls)
    return mapper


def mapper_of_instance(instance: _T) -> Mapper[_T]:
    """The mapper of an entity instance.

    Raises:
        UnmappedInstanceError: if the object's class is not an entity.
    """
    mapper: Mapper[_T] | None = type(instance).__dict__.get(MAPPER_ATTR)
    if mapper is None:
        raise UnmappedInstanceError(instance)
    return mapper


def inspect_entity(cls: type[_T]) -> Mapper[_T]:
    """Return the ``Mapper`` of an entity class, for introspection.

    Raises:
        UnmappedClassError: if ``cls`` is not an entity.
    """
    return mapper_of(cls)
