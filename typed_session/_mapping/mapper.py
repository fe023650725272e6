"""``Mapper[T]``: what one entity class is in terms of Core — its table, columns and keys.

A mapper is built once by the ``@entity`` decorator and never changes afterwards; the
statements the session needs for every object of the class (load everything, load by
primary key) are built here once, so that Core's compiled cache serves them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from sqlalchemy import Column, ColumnElement, FromClause, Select, Table, bindparam, select
from sqlalchemy.exc import InvalidRequestError

from typed_session._core import annotate
from typed_session._records import NoPublicConstructor
from typed_session._typing import MISSING, Identity
from typed_session.exc import UnmappedClassError, UnmappedInstanceError

if TYPE_CHECKING:
    from .fields import RelationshipSpec
    from .registry import Registry
    from .relationships import Relationship

__all__ = [
    "ColumnAttribute",
    "Mapper",
    "RelationshipField",
    "inspect_entity",
    "mapper_of",
    "mapper_of_instance",
]

_T = TypeVar("_T")

MAPPER_ATTR = "__typed_session_mapper__"
ENTITY_ANNOTATION = "typed_session_mapper"


@final
@dataclass(frozen=True, slots=True)
class ColumnAttribute(
    metaclass=NoPublicConstructor, obtained_by="read inspect_entity(Class).attributes"
):
    """One mapped attribute: the Python side (key, defaults) and the Core column behind it."""

    key: str
    column: Column[Any]
    python_type: object
    default: object = MISSING
    default_factory: Callable[[], object] | None = None
    init: bool = True
    repr: bool = True
    kw_only: bool = True
    #: what the class body assigned (its ``column()``), by which ``foreign_keys=`` of a
    #: relationship in the same class body can name it
    spec: object = None

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
@dataclass(frozen=True, slots=True)
class RelationshipField:
    """A ``relationship()`` attribute as declared, before the registry configures it."""

    key: str
    spec: RelationshipSpec
    #: the class whose annotation declares it (its module resolves the annotation)
    declared_on: type[Any]
    kw_only: bool = True

    @property
    def default(self) -> object:
        """The constructor's default (``None`` for a scalar, ``MISSING`` otherwise)."""
        return self.spec.default

    @property
    def default_factory(self) -> Callable[[], object] | None:
        """The constructor's default factory (``list`` / ``set``)."""
        return self.spec.default_factory

    @property
    def init(self) -> bool:
        """Whether the constructor takes it."""
        return self.spec.init

    @property
    def repr(self) -> bool:
        """Whether ``__repr__`` shows it."""
        return self.spec.repr

    @property
    def python_type(self) -> object:
        """What ``dataclasses.fields()`` reports as its type (read at configuration)."""
        return Any


@final
class Mapper(Generic[_T], metaclass=NoPublicConstructor, obtained_by="call inspect_entity(Class)"):
    """The mapping of one entity class onto one Core table.

    Attributes:
        class_: the entity class.
        table: the Core ``Table`` rows live in.
        columns: the column attributes, by attribute key, in table column order.
        column_keys: their keys, in that order.
        attributes: every mapped attribute, by key (the columns, until relationships
            join them); code that means columns uses ``columns``.
        primary_key: the primary-key attributes, in the table's primary-key order.
    """

    __slots__ = (
        "attribute_keys",
        "attributes",
        "by_column",
        "check_values",
        "class_",
        "column_key_set",
        "column_keys",
        "columns",
        "dict_size_when_loaded",
        "entity_clause",
        "get_statement",
        "load_keys",
        "onupdate_keys",
        "pk_keys",
        "pk_param_names",
        "pk_where",
        "primary_key",
        "registry",
        "relationship_fields",
        "relationship_keys",
        "relationships_configured",
        "required_keys",
        "select_statement",
        "single_pk",
        "table",
        "version_generator",
        "version_key",
    )

    def __init__(
        self,
        class_: type[_T],
        table: Table,
        columns: Mapping[str, ColumnAttribute],
        registry: Registry,
        relationship_fields: tuple[RelationshipField, ...] = (),
    ) -> None:
        self.class_: type[_T] = class_
        self.table: Table = table
        self.registry: Registry = registry
        self.columns: Mapping[str, ColumnAttribute] = dict(columns)
        self.column_keys: tuple[str, ...] = tuple(self.columns)
        self.column_key_set: frozenset[str] = frozenset(self.column_keys)
        self.attributes: Mapping[str, ColumnAttribute] = self.columns
        self.attribute_keys: tuple[str, ...] = self.column_keys
        self.relationship_fields: tuple[RelationshipField, ...] = relationship_fields
        self.relationship_keys: frozenset[str] = frozenset(f.key for f in relationship_fields)
        #: filled by ``Registry.configure`` (``relationships`` configures on first use)
        self.relationships_configured: dict[str, Relationship] | None = (
            None if relationship_fields else {}
        )
        #: the length of an instance ``__dict__`` holding every column value and the state
        self.dict_size_when_loaded: int = len(self.column_keys) + 1  # and the state
        #: columns an INSERT cannot do without: NOT NULL, and no default to fall back on
        self.required_keys: tuple[str, ...] = tuple(
            a.key for a in self.columns.values() if not (a.database_generated or a.nullable)
        )
        #: columns that change on every UPDATE without the object saying so (Core's
        #: ``onupdate``, or ``server_onupdate``): expired after an UPDATE of the row
        self.onupdate_keys: frozenset[str] = frozenset(
            a.key
            for a in self.columns.values()
            if a.column.onupdate is not None or a.column.server_onupdate is not None
        )
        self.by_column: Mapping[Column[Any], ColumnAttribute] = {
            a.column: a for a in self.columns.values()
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
        self.single_pk: bool = len(pk_attrs) == 1
        #: what ``select(User)`` selects: the table, annotated so that the session can
        #: tell an entity from a plain table in a statement's columns clause
        self.entity_clause: FromClause = annotate(table, {ENTITY_ANNOTATION: self})
        #: what a row of ``select_statement`` holds, position by position
        self.load_keys: tuple[str, ...] = self.column_keys
        self.select_statement: Select[*tuple[object, ...]] = select(
            *(a.column for a in self.columns.values())
        )
        #: the one WHERE clause by primary key (SELECT, UPDATE and DELETE all use it) and
        #: the names of its bind parameters, filled by ``pk_params``
        self.pk_param_names: tuple[str, ...] = tuple(f"pk_{i}" for i in range(len(pk_attrs)))
        self.pk_where: tuple[ColumnElement[bool], ...] = tuple(
            a.column == bindparam(p) for a, p in zip(pk_attrs, self.pk_param_names, strict=True)
        )
        self.get_statement: Select[*tuple[object, ...]] = self.select_statement.where(
            *self.pk_where
        )
        #: the version column's attribute (``@entity(..., version_column=)``) and what makes
        #: the next version from the last (None: the database does); set by the decorator
        self.version_key: str | None = None
        self.version_generator: Callable[[int | None], int] | None = None
        #: checks the values a flush writes (object, its ``__dict__``, the keys written);
        #: set by ``@entity(..., validate=True)``, else None
        self.check_values: Callable[[object, Mapping[str, Any], Iterable[str]], None] | None = None

    def __repr__(self) -> str:
        return f"Mapper({self.class_.__name__} -> {self.table.name})"

    @property
    def relationships(self) -> Mapping[str, Relationship]:
        """The configured relationships, by attribute key (configuring the registry first)."""
        configured = self.relationships_configured
        if configured is None:
            self.registry.configure()
            configured = self.relationships_configured
            assert configured is not None
        return configured

    def pk_params(self, identity: Identity) -> dict[str, object]:
        """The bind parameters of ``pk_where`` for an internal identity value."""
        if self.single_pk:
            return {"pk_0": identity}
        assert isinstance(identity, tuple)
        return dict(zip(self.pk_param_names, identity, strict=True))

    def identity_changed(self, identity: Identity, changes: Mapping[str, object]) -> Identity:
        """The identity after ``changes`` (new values by attribute key) to a row's key.

        Built from the identity before and the changed values alone, so that key columns
        that are not loaded (expired) keep their values.
        """
        if self.single_pk:
            return changes.get(self.pk_keys[0], identity)
        assert isinstance(identity, tuple)
        return tuple(changes.get(k, v) for k, v in zip(self.pk_keys, identity, strict=True))

    def identity_of(self, values: Mapping[str, object]) -> Identity | None:
        """The internal identity (bare value, or tuple for composite keys) from attribute values.

        Returns ``None`` when any primary-key value is missing or ``None``.
        """
        if self.single_pk:
            return values.get(self.pk_keys[0])
        ident = tuple(values.get(k) for k in self.pk_keys)
        return None if None in ident else ident

    def normalize_identity(self, ident: object) -> Identity:
        """Turn what a user passes to ``get()`` into the internal identity value.

        Raises:
            InvalidRequestError: if the number of values does not match the primary key.
        """
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
