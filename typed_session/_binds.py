"""``BindMap``: which database each entity and table lives in, as an immutable value.

``Session(binds={User: engine_a, Order: engine_b, audit_table: engine_c})`` makes one;
``bind_mapper`` / ``bind_table`` replace the session's map with a new one (``with_entry``).
A mapped class binds its table too (a statement on the table finds the class's bind), a
plain class binds every mapped subclass of it (the MRO is walked), and a Core ``Table``
binds statements that use it. ``resolve`` is the seed's order of ``get_bind``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeAlias, final

from sqlalchemy import Select, Table, UpdateBase
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError

from typed_session._core import annotations_of, raw_columns, tables_of
from typed_session._mapping.mapper import ENTITY_ANNOTATION, MAPPER_ATTR, Mapper

__all__ = ["Bind", "BindKey", "BindMap", "BindResolver"]

Bind: TypeAlias = Engine | Connection
BindKey: TypeAlias = type[Any] | Table


class BindResolver(Protocol):
    """A bind chosen by your own rule, consulted before the session's bind map.

    Return ``None`` to leave the choice to the session (read replicas, tenants, shards).
    """

    def __call__(self, entity: type[Any] | None, clause: object | None, /) -> Bind | None:
        """The bind for an entity class and/or statement, or ``None`` for the default."""
        ...


def _mapper(cls: type[Any]) -> Mapper[Any] | None:
    mapper: Mapper[Any] | None = cls.__dict__.get(MAPPER_ATTR)
    return mapper


def _named_elements(clause: object) -> Iterable[object]:
    """What a statement names at its top: ``select(...)``'s columns, a DML's target table.

    Read without walking the statement (``tables_of`` costs ~20 us on ``select(User)``),
    so that a statement on an entity finds its bind at once.
    """
    if isinstance(clause, Select):
        return raw_columns(clause)
    if isinstance(clause, UpdateBase):
        return (clause.table,)
    return ()


@final
@dataclass(frozen=True, slots=True)
class BindMap:
    """Classes and tables -> binds, read-only. Build with ``BindMap.of(...)``.

    Attributes:
        classes: bound classes (entity classes and plain base classes).
        tables: bound tables (given, or the tables of bound entity classes).
    """

    classes: Mapping[type[Any], Bind] = field(default_factory=lambda: MappingProxyType({}))
    tables: Mapping[Table, Bind] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, binds: Mapping[Any, Any] | None) -> BindMap:
        """Validate a ``binds=`` mapping into a map.

        Raises:
            ArgumentError: naming a key that is neither a class nor a ``Table``, or a
                bind that is neither an ``Engine`` nor a ``Connection``.
        """
        result = BindMap()
        for key, bind in (binds or {}).items():
            result = result.with_entry(key, bind)
        return result

    def with_entry(self, key: object, bind: object) -> BindMap:
        """A new map with ``key`` bound to ``bind`` (replacing what it had).

        Raises:
            ArgumentError: as ``of``.
        """
        if not isinstance(bind, Engine | Connection):
            raise ArgumentError(
                f"the bind for {key!r} must be an Engine or a Connection, not {bind!r}; "
                "make one with sqlalchemy.create_engine(url)"
            )
        classes, tables = dict(self.classes), dict(self.tables)
        if isinstance(key, Table):
            tables[key] = bind
        elif isinstance(key, type):
            classes[key] = bind
            mapper = _mapper(key)
            if mapper is not None:
                tables[mapper.table] = bind
        else:
            raise ArgumentError(
                f"Not an acceptable bind target: {key!r}; bind an entity class, a plain "
                "base class of entities, or a Core Table"
            )
        return BindMap(MappingProxyType(classes), MappingProxyType(tables))

    def __bool__(self) -> bool:
        return bool(self.classes or self.tables)

    def __iter__(self) -> Iterator[BindKey]:
        yield from self.classes
        yield from self.tables

    def for_class(self, cls: type[Any]) -> Bind | None:
        """The bind of the first class in ``cls``'s MRO that has one."""
        classes = self.classes
        for klass in cls.__mro__:
            bind = classes.get(klass)
            if bind is not None:
                return bind
        return None

    def for_tables(self, tables: Iterable[object]) -> Bind | None:
        """The bind of the first of these tables that has one."""
        bound = self.tables
        for table in tables:
            # an entity's annotated table is a Table, and hashes as the table it annotates
            bind = bound.get(table) if isinstance(table, Table) else None
            if bind is not None:
                return bind
        return None

    def resolve(self, entity: type[Any] | None, clause: object | None) -> Bind | None:
        """The bind for an entity and/or statement, in the seed's order.

        1. The entity's class, then each class of its MRO; without an entity, the class
           (and MRO) of each entity the statement uses (``select(User)``, as SQLAlchemy
           finds the statement's mapper).
        2. The entity's table, or else each table the statement uses: its FROMs and
           joins, and the target table of an INSERT, UPDATE or DELETE.
        3. Nothing: ``None`` (the session then uses its own bind).
        """
        if not self:
            return None
        if entity is not None:
            bind = self.for_class(entity)
            if bind is not None:
                return bind
            mapper = _mapper(entity)
            if clause is None and mapper is not None:
                return self.for_tables([mapper.table])
        if clause is None:
            return None
        if entity is None and self.classes:
            bind = self._for_entities(_named_elements(clause))
            if bind is not None:
                return bind
        tables = tables_of(clause)
        if entity is None and self.classes:
            bind = self._for_entities(tables)  # entities in joins and subqueries
            if bind is not None:
                return bind
        return self.for_tables(tables)

    def _for_entities(self, elements: Iterable[object]) -> Bind | None:
        """The bind of the first entity (through its class's MRO) among these elements."""
        for element in elements:
            mapper = annotations_of(element).get(ENTITY_ANNOTATION)
            bind = None if mapper is None else self.for_class(mapper.class_)
            if bind is not None:
                return bind
        return None
