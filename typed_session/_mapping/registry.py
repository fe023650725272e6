"""``Registry`` and ``@entity``: an annotated class becomes an entity mapped onto a Core table.

``entity`` is a module-level function on purpose: mypy applies ``dataclass_transform`` to
a decorator function but not to a decorator method (python/mypy#16527), so
``@entity(registry)`` gives a typed ``__init__`` on every checker.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import functools
import inspect
import types
import typing
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar, final

import sqlalchemy as sa
from sqlalchemy import Column, ForeignKey, MetaData, Table
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.types import TypeEngine
from typing_extensions import dataclass_transform

from typed_session._instrumentation import MappedAttribute, install
from typed_session._records import internal_constructor, replace_record
from typed_session._validation import install_validation

from .fields import (
    MISSING,
    ColumnSpec,
    Mapped,
    RelationshipSpec,
    column,
    relationship,
    unwrap_optional,
)
from .mapper import MAPPER_ATTR, ColumnAttribute, Mapper, RelationshipField
from .relationships import Relationship, shape_of
from .relationships import build as build_relationship

_new_mapper = internal_constructor(Mapper)


_new_column_attribute = internal_constructor(ColumnAttribute)


__all__ = ["MIXIN_ATTR", "Registry", "any_relationships", "entity", "mixin"]

_E = TypeVar("_E")

#: set on a class by ``@mixin``, in its own ``__dict__``
MIXIN_ATTR = "__typed_session_mixin__"

#: Python type -> the Core type a column of it gets when column() names none. ``str`` gets
#: a length because MariaDB/MySQL cannot create a VARCHAR without one; ``Decimal`` a
#: precision and scale because DECIMAL without them is DECIMAL(10, 0) there; ``float``
#: is DOUBLE because FLOAT is single precision there; ``datetime`` and ``time`` keep
#: microseconds there (fsp=6), as they do on PostgreSQL and SQLite.
_DEFAULT_TYPES: dict[type, Callable[[], TypeEngine[Any]]] = {
    int: sa.Integer,
    str: lambda: sa.String(255),
    bool: sa.Boolean,
    float: sa.Double,
    decimal.Decimal: lambda: sa.Numeric(28, 10),
    datetime.datetime: lambda: sa.DateTime().with_variant(
        mysql.DATETIME(fsp=6), "mysql", "mariadb"
    ),
    datetime.date: sa.Date,
    datetime.time: lambda: sa.Time().with_variant(mysql.TIME(fsp=6), "mysql", "mariadb"),
    datetime.timedelta: sa.Interval,
    bytes: sa.LargeBinary,
    uuid.UUID: sa.Uuid,
}


#: non-empty once any entity with a relationship is mapped: until then, a flush skips
#: reading relationships altogether
_RELATIONSHIPS_MAPPED: list[bool] = []


def any_relationships() -> bool:
    """Whether any entity of any registry has a relationship attribute."""
    return bool(_RELATIONSHIPS_MAPPED)


@final
class Registry:
    """The set of entities that share one ``MetaData``, and the class -> ``Mapper`` lookup."""

    def __init__(self, metadata: MetaData | None = None, *, validate: bool = False) -> None:
        self.metadata: MetaData = MetaData() if metadata is None else metadata
        #: the default of ``@entity(..., validate=)`` for this registry's entities
        self.validate: bool = validate
        self._mappers: dict[type[Any], Mapper[Any]] = {}

    @property
    def mappers(self) -> tuple[Mapper[Any], ...]:
        """Every mapper of this registry, in the order the classes were mapped."""
        return tuple(self._mappers.values())

    def __iter__(self) -> Iterator[Mapper[Any]]:
        return iter(self.mappers)

    def __len__(self) -> int:
        return len(self._mappers)

    def __bool__(self) -> bool:
        return True  # a registry is a registry, mapped classes or not

    def create_all(self, bind: Engine | Connection) -> None:
        """Create every table of the registry's ``MetaData`` that does not exist yet."""
        self.metadata.create_all(bind)

    def drop_all(self, bind: Engine | Connection) -> None:
        """Drop every table of the registry's ``MetaData`` that exists."""
        self.metadata.drop_all(bind)

    def _register(self, mapper: Mapper[Any]) -> None:
        self._mappers[mapper.class_] = mapper
        if mapper.relationship_fields:
            _RELATIONSHIPS_MAPPED.append(True)

    def class_names(self) -> dict[str, type[Any]]:
        """The mapped classes by name: what a relationship's annotation may refer to."""
        return {cls.__name__: cls for cls in self._mappers}

    def configure(self) -> None:
        """Configure every relationship not configured yet (the classes it names must exist).

        Called on first use of a relationship; calling it after the last entity of a
        module is defined reports a misspelled class or a missing foreign key early.

        Raises:
            ArgumentError: if a relationship cannot be configured; the registry is then
                left as it was, and the error names the attribute.
        """
        waiting = [m for m in self._mappers.values() if m.relationships_configured is None]
        if not waiting:
            return
        names = self.class_names()
        built: dict[Mapper[Any], dict[str, Relationship]] = {}
        for mapper in waiting:
            built[mapper] = {}
            for field in mapper.relationship_fields:
                where = f"{mapper.class_.__name__}.{field.key}"
                hint = _type_hints(field.declared_on, names, only=field.key)[field.key]
                if typing.get_origin(hint) is not Mapped:
                    raise _not_mapped(mapper.class_, field.key, hint, typing.get_origin(hint))
                (inner,) = typing.get_args(hint)
                shape = shape_of(inner, where)
                target = self._mappers.get(shape.target)
                if target is None:
                    raise ArgumentError(
                        f"{where} relates to {shape.target.__name__}, which is not an entity "
                        "of this registry; decorate it with @entity(registry) (the same "
                        "registry)"
                    )
                built[mapper][field.key] = build_relationship(
                    field.key, mapper, target, shape, field.spec
                )
        for mapper, relationships in built.items():
            mapper.relationships_configured = relationships
        try:
            for relationships in built.values():
                for rel in relationships.values():
                    rel.link_back_populates()
        except ArgumentError:
            for mapper in built:
                mapper.relationships_configured = None
            raise


def _core_type(cls: type[Any], key: str, python_type: object) -> TypeEngine[Any]:
    if isinstance(python_type, type):
        if issubclass(python_type, enum.Enum):
            return sa.Enum(python_type, length=255)
        factory = _DEFAULT_TYPES.get(python_type)
        if factory is not None:
            return factory()
    raise ArgumentError(
        f"{cls.__name__}.{key}: no column type is known for {python_type!r}; pass one "
        f"explicitly, e.g. column(sqlalchemy.JSON) (known: "
        f"{', '.join(t.__name__ for t in _DEFAULT_TYPES)}, enum.Enum subclasses)"
    )


def _mapped_fields(cls: type[Any], names: dict[str, type[Any]]) -> list[tuple[str, object]]:
    """(key, inner type) of every ``Mapped[...]`` annotation, in definition order.

    A relationship's annotation may name a class that does not exist yet: it is kept
    unevaluated (``None`` here) and read when the registry configures relationships.
    """
    deferred = {
        k for k in _own_annotation_order(cls) if isinstance(_spec_of(cls, k), RelationshipSpec)
    }
    hints = _type_hints(cls, names, skip=deferred)
    fields: list[tuple[str, object]] = []
    for key in _own_annotation_order(cls):
        if key in deferred:
            fields.append((key, None))
            continue
        tp = hints[key]
        origin = typing.get_origin(tp)
        if origin is typing.ClassVar:
            continue
        if origin is not Mapped:
            raise _not_mapped(cls, key, tp, origin)
        (inner,) = typing.get_args(tp)
        fields.append((key, inner))
    return fields


def _type_hints(
    cls: type[Any],
    names: dict[str, type[Any]],
    *,
    skip: set[str] | None = None,
    only: str | None = None,
) -> dict[str, object]:
    """Evaluate the annotations of ``cls`` and its bases, names of the registry's classes known.

    Raises:
        ArgumentError: if an annotation names something undefined.
    """
    hints: dict[str, object] = {}
    for base in reversed(cls.__mro__):
        own = {
            k: v
            for k, v in inspect.get_annotations(base).items()
            if (skip is None or k not in skip) and (only is None or k == only)
        }
        if not own:
            continue
        holder = type(base.__name__, (), {"__annotations__": own, "__module__": base.__module__})
        try:
            hints.update(
                typing.get_type_hints(holder, localns={**names, **vars(base)}, include_extras=True)
            )
        except NameError as err:
            raise ArgumentError(
                f"the annotations of {cls.__name__} name something undefined ({err}); define "
                "or import it before the class is decorated with @entity"
            ) from err
    return hints


def _spec_of(cls: type[Any], key: str) -> object:
    for base in cls.__mro__:
        if key in base.__dict__:
            return base.__dict__[key]
    return MISSING


def _not_mapped(cls: type[Any], key: str, tp: object, origin: object) -> ArgumentError:
    """The error for an annotation that is not ``typed_session.Mapped[...]``."""
    if _is_sqlalchemy_orm_mapped(origin):
        (inner,) = typing.get_args(tp) or ("...",)
        return ArgumentError(
            f"{cls.__name__}.{key} is annotated with SQLAlchemy's own "
            f"sqlalchemy.orm.Mapped[{_type_name(inner)}]; typed_session entities use "
            "typed_session.Mapped: import it with `from typed_session import Mapped` instead "
            "of `from sqlalchemy.orm import Mapped`"
        )
    return ArgumentError(
        f"{cls.__name__}.{key} is annotated {_type_name(tp)}, which is neither Mapped[...] "
        f"nor ClassVar[...]: write Mapped[{_type_name(tp)}] to map it to a column, or "
        "ClassVar[...] for a plain class attribute"
    )


def _is_sqlalchemy_orm_mapped(origin: object) -> bool:
    """Whether an annotation's origin is ``sqlalchemy.orm.Mapped`` (without importing the ORM)."""
    return (
        isinstance(origin, type)
        and origin.__name__ == "Mapped"
        and origin.__module__.startswith("sqlalchemy.orm")
    )


def _own_annotation_order(cls: type[Any]) -> list[str]:
    keys: list[str] = []
    for base in reversed(cls.__mro__):
        for key in inspect.get_annotations(base):
            if key not in keys:
                keys.append(key)
    return keys


def _class_value(cls: type[Any], key: str) -> object:
    """What the class body (or a ``@mixin``'s) assigned to an annotated attribute."""
    for base in cls.__mro__:
        if key in base.__dict__:
            value = base.__dict__[key]
            if isinstance(value, MappedAttribute):
                raise ArgumentError(
                    f"{cls.__name__} inherits the mapped attribute {key!r} from the entity "
                    f"{base.__name__}; entity inheritance is not supported yet. Put the "
                    "shared attributes on a class decorated with @typed_session.mixin instead"
                )
            return value
    return MISSING


def _declared_in_mixin(cls: type[Any], key: str) -> bool:
    """Whether ``key`` is declared by a ``@mixin`` base rather than by ``cls`` itself.

    Raises:
        ArgumentError: if a plain base class declares it: the type checkers would not
            see it in the constructor, although it would be mapped.
    """
    for base in cls.__mro__:
        if key in inspect.get_annotations(base):
            if base is cls or MAPPER_ATTR in base.__dict__:
                return False  # an entity base is refused, with its own message, later
            if MIXIN_ATTR in base.__dict__:
                return True
            raise ArgumentError(
                f"{cls.__name__} inherits the Mapped attribute {key!r} from {base.__name__}, "
                "a plain class: type checkers do not see a plain base's fields in "
                f"{cls.__name__}'s constructor. Decorate {base.__name__} with "
                "@typed_session.mixin (from typed_session import mixin)"
            )
    return False


def _type_name(tp: object) -> str:
    """How a type is written in the source: ``int``, ``list[int]``, ``str | None``."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return repr(tp).replace("typing.", "")


def _strip_annotated(tp: object) -> object:
    """``Annotated[X, ...]`` -> ``X``, in a union's members too (the metadata is pydantic's)."""
    if typing.get_origin(tp) is typing.Annotated:
        return _strip_annotated(typing.get_args(tp)[0])
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return typing.Union[tuple(_strip_annotated(a) for a in typing.get_args(tp))]  # noqa: UP007 -- built from a runtime tuple
    return tp


def _build_column(
    cls: type[Any], key: str, inner: object, spec: ColumnSpec, *, table_column: Column[Any] | None
) -> Column[Any]:
    python_type, optional = unwrap_optional(_strip_annotated(inner))
    if table_column is not None:
        if table_column.nullable and not optional:
            raise ArgumentError(
                f"{cls.__name__}.{key} is annotated Mapped[{_type_name(python_type)}] but "
                f"column {table_column.table.name}.{table_column.name} is nullable, so reading "
                f"it could yield None; annotate it Mapped[{_type_name(python_type)} | None]"
            )
        return table_column
    type_ = spec.type_ if spec.type_ is not None else _core_type(cls, key, python_type)
    nullable = spec.nullable if spec.nullable is not None else optional and not spec.primary_key
    if nullable and not optional:
        raise ArgumentError(
            f"{cls.__name__}.{key} is nullable but annotated Mapped[{_type_name(python_type)}]; "
            f"annotate it Mapped[{_type_name(python_type)} | None] so "
            "that reading it can yield None"
        )
    args: list[Any] = []
    if spec.foreign_key is not None:
        args.append(ForeignKey(spec.foreign_key))
    core_default = spec.default
    if core_default is MISSING or callable(core_default):
        core_default = None
    return Column(
        spec.name or key,
        type_,
        *args,
        key=key,
        primary_key=spec.primary_key,
        nullable=nullable,
        unique=spec.unique or None,
        index=spec.index or None,
        default=core_default,
        server_default=spec.server_default,
        autoincrement=spec.autoincrement,
    )


@dataclass_transform(
    kw_only_default=True, eq_default=False, field_specifiers=(column, relationship)
)
def entity(
    registry: Registry,
    /,
    *,
    table: str | Table | None = None,
    kw_only: bool = True,
    init: bool = True,
    validate: bool | None = None,
    version_column: str | None = None,
    version_generator: Callable[[int | None], int] | Literal[False] | None = None,
) -> Callable[[type[_E]], type[_E]]:
    """Map an annotated class onto a table, as a class decorator: ``@entity(reg, table="users")``.

    Every ``Mapped[T]`` annotation becomes a column (type inferred from ``T`` unless
    ``column()`` names one; ``T | None`` is nullable). The class gets a dataclass-style
    ``__init__`` (keyword-only by default), a ``__repr__`` that shows loaded attributes
    only, and class attributes that are Core columns (``User.name == "x"``).

    Args:
        registry: the registry whose ``MetaData`` holds the table.
        table: the table name to generate (default: the class name, lower-cased), or an
            existing Core ``Table`` to map as it is (each annotated attribute must name
            one of its column keys).
        kw_only: whether the constructor's parameters are keyword-only.
        init: whether to generate ``__init__``.
        validate: check values against their annotations with pydantic, on
            construction, assignment and flush (``typed_session._validation``); default:
            the registry's ``validate``.
        version_column: the attribute (a ``Mapped[int]`` declared ``column(init=False)``)
            that holds the row's version, for optimistic concurrency: set on INSERT,
            incremented by every UPDATE, and checked in the WHERE of UPDATE and DELETE,
            so that a row another writer changed first raises ``StaleDataError``.
        version_generator: makes the next version from the last (``None`` on INSERT);
            default ``(v or 0) + 1``. ``False``: the database sets it (a server default
            and a trigger); it is loaded again after each UPDATE.

    Returns:
        The decorator.
    """

    def decorate(cls: type[_E]) -> type[_E]:
        checked = registry.validate if validate is None else validate
        version = (version_column, version_generator)
        return _map_class(
            cls, registry, table, kw_only=kw_only, init=init, validate=checked, version=version
        )

    return decorate


@dataclass_transform(
    kw_only_default=True, eq_default=False, field_specifiers=(column, relationship)
)
def mixin(cls: type[_E], /) -> type[_E]:
    """Mark a class whose ``Mapped`` attributes entities inherit: ``@mixin class HasId: ...``.

    The type checkers then see the mixin's attributes in each entity's constructor
    (keyword-only unless ``column(kw_only=False)``), as they are at run time. A plain
    base class's attributes would be mapped but invisible to them, so ``@entity``
    refuses those. A mixin is not an entity: it has no table and no constructor of its
    own; only the entities built on it are instantiated.

    Returns:
        The class, marked.
    """
    setattr(cls, MIXIN_ATTR, True)
    return cls


def _next_version(version: int | None) -> int:
    """The default version generator: 1, 2, 3, ..."""
    return (version or 0) + 1


def _version_attribute(
    cls: type[Any],
    attributes: dict[str, ColumnAttribute],
    key: str,
    generator: Callable[[int | None], int] | Literal[False] | None,
) -> tuple[ColumnAttribute, Callable[[int | None], int] | Literal[False]]:
    """Check the version column's attribute; give it its first version as a default.

    Raises:
        ArgumentError: naming what the attribute must be, and how to declare it.
    """
    attr = attributes.get(key)
    if attr is None:
        raise ArgumentError(
            f"@entity({cls.__name__}, version_column={key!r}): {cls.__name__} has no mapped "
            f"attribute {key!r} (its attributes: {list(attributes)}); name the Mapped[int] "
            "attribute that holds the version"
        )
    if _strip_annotated(attr.python_type) is not int:
        raise ArgumentError(
            f"{cls.__name__}.{key} is the version column, so it must be annotated "
            f"Mapped[int], not Mapped[{_type_name(attr.python_type)}]: the session compares "
            "and increments it"
        )
    if attr.init or attr.column.primary_key:
        raise ArgumentError(
            f"{cls.__name__}.{key} is the version column: declare it column(init=False) "
            "(and not part of the primary key), since the session sets it: the first "
            "version on INSERT, the next on every UPDATE"
        )
    if generator is False:
        if attr.column.server_default is None:
            raise ArgumentError(
                f"{cls.__name__}.{key} is a server-side version (version_generator=False): "
                "give it column(server_default=...) for the first version, and have the "
                "database change it on every UPDATE (a trigger)"
            )
        return attr, False
    make = _next_version if generator is None else generator
    if attr.default is MISSING and attr.default_factory is None:
        attr = replace_record(attr, default_factory=functools.partial(make, None))
    return attr, make


def _map_class(
    cls: type[_E],
    registry: Registry,
    table: str | Table | None,
    *,
    kw_only: bool,
    init: bool,
    validate: bool,
    version: tuple[str | None, Callable[[int | None], int] | Literal[False] | None] = (None, None),
) -> type[_E]:

    if MAPPER_ATTR in cls.__dict__:
        raise ArgumentError(f"class {cls.__name__} is already mapped")
    if "__slots__" in cls.__dict__:
        raise ArgumentError(
            f"entity {cls.__name__} declares __slots__; entities keep their values in "
            "__dict__, remove __slots__"
        )
    existing = table if isinstance(table, Table) else None
    fields = _mapped_fields(cls, registry.class_names())
    attributes: dict[str, ColumnAttribute] = {}
    relationship_fields: list[RelationshipField] = []
    init_fields: list[ColumnAttribute | RelationshipField] = []
    columns: list[Column[Any]] = []
    for key, inner in fields:
        from_mixin = _declared_in_mixin(cls, key)
        raw = _class_value(cls, key)
        if isinstance(raw, RelationshipSpec):
            rel_field = RelationshipField(
                key=key,
                spec=raw,
                declared_on=cls,
                kw_only=raw.kw_only if raw.kw_only is not None else (kw_only or from_mixin),
            )
            relationship_fields.append(rel_field)
            init_fields.append(rel_field)
            continue
        spec = raw if isinstance(raw, ColumnSpec) else column(default=raw)
        assert isinstance(spec, ColumnSpec)  # what column() makes, typed Mapped[T]
        table_column: Column[Any] | None = None
        if existing is not None:
            table_column = existing.c.get(key)
            if table_column is None:
                raise ArgumentError(
                    f"{cls.__name__}.{key} has no column in table {existing.name!r} (its "
                    f"column keys: {', '.join(existing.c.keys())}); rename the attribute "
                    "or remove it"
                )
        col = _build_column(cls, key, inner, spec, table_column=table_column)
        columns.append(col)
        attributes[key] = _new_column_attribute(
            key=key,
            column=col,
            python_type=inner,
            default=spec.default,
            default_factory=spec.default_factory,
            init=spec.init,
            repr=spec.repr,
            kw_only=spec.kw_only if spec.kw_only is not None else (kw_only or from_mixin),
            spec=raw,
        )
        init_fields.append(attributes[key])
    version_key, generator = version
    if version_key is not None:
        attributes[version_key], generator = _version_attribute(
            cls, attributes, version_key, generator
        )
        init_fields = [
            attributes.get(f.key, f) if isinstance(f, ColumnAttribute) else f for f in init_fields
        ]
    elif generator is not None:
        raise ArgumentError(
            f"@entity({cls.__name__}): version_generator= needs version_column=, the "
            "Mapped[int] attribute that holds the version"
        )
    if existing is None:
        name = table if isinstance(table, str) else cls.__name__.lower()
        if name in registry.metadata.tables:
            raise ArgumentError(
                f"table {name!r} is already defined in this registry's MetaData; map "
                f"{cls.__name__} with table=<another name>, or pass the existing Table"
            )
        mapped_table = Table(name, registry.metadata, *columns)
    else:
        mapped_table = existing
    # table column order, so that loaded rows and attribute keys line up
    ordered = {
        attributes_by_col.key: attributes_by_col
        for c in mapped_table.columns
        for attributes_by_col in attributes.values()
        if attributes_by_col.column is c
    }
    mapper = _new_mapper(cls, mapped_table, ordered, registry, tuple(relationship_fields))
    mapper.version_key = version_key
    mapper.version_generator = generator or None
    # the constructor takes attributes in annotation order, as the type checkers see it
    install(cls, mapper, init_fields, init=init)
    if validate:
        mapper.check_values = install_validation(cls, mapper).check_for_flush
    setattr(cls, MAPPER_ATTR, mapper)
    registry._register(mapper)
    return cls
