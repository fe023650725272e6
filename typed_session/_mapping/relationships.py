"""``Relationship``: what one ``relationship()`` attribute is once both classes are known.

A relationship is configured after its class is decorated — on first use, when every
class a module defines exists — because an annotation may name a class defined further
down (``Mapped[list["Child"]]``). Configuring settles, once: the other class (from the
annotation), the direction (from the foreign keys between the two tables, and the
annotation's shape for a self-referential table), the column pairs that copy a parent's
key into a child's foreign key, the association table's pairs for a many-to-many, the
cascade rules and the other side named by ``back_populates``. Nothing here changes after
that, and nothing here knows a session.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

from sqlalchemy import Column, ColumnElement, ForeignKey, Table, and_, bindparam, select
from sqlalchemy.exc import ArgumentError, NoReferencedTableError

from typed_session._records import NoPublicConstructor, internal_constructor
from typed_session._typing import MISSING

from .fields import Lazy, RelationshipSpec, unwrap_optional

if TYPE_CHECKING:
    from sqlalchemy import Select

    from .mapper import Mapper

__all__ = ["Cascade", "Direction", "Relationship", "any_joined_defaults", "parse_cascade"]

#: relationships configured with ``lazy="joined"``: until there is one, no SELECT is
#: looked at for joins it did not ask for
_JOINED_DEFAULTS: list[Relationship] = []


def any_joined_defaults() -> bool:
    """Whether any relationship of any registry loads with ``lazy="joined"``."""
    return bool(_JOINED_DEFAULTS)


@final
class Direction(enum.Enum):
    """Which side holds the foreign key."""

    MANY_TO_ONE = "many-to-one"
    """This class's table holds the key: ``child.parent``."""
    ONE_TO_MANY = "one-to-many"
    """The other class's table holds the key: ``parent.children`` (or a one-to-one)."""
    MANY_TO_MANY = "many-to-many"
    """An association table holds both keys."""


_CASCADE_NAMES = (
    "save-update",
    "merge",
    "expunge",
    "delete",
    "delete-orphan",
    "refresh-expire",
)
_ALL = frozenset({"save-update", "merge", "expunge", "delete", "refresh-expire"})


@final
@dataclass(frozen=True, slots=True)
class Cascade:
    """The operations that follow a relationship from an object to its related objects."""

    save_update: bool = False
    merge: bool = False
    expunge: bool = False
    delete: bool = False
    delete_orphan: bool = False
    refresh_expire: bool = False

    def __str__(self) -> str:
        return ", ".join(n for n in _CASCADE_NAMES if getattr(self, n.replace("-", "_")))


def parse_cascade(text: str, where: str) -> Cascade:
    """Parse ``"all, delete-orphan"``-style cascade text.

    Raises:
        ArgumentError: for a name that is not a cascade, naming the valid ones.
    """
    names: set[str] = set()
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if name == "all":
            names |= _ALL
        elif name == "none":
            continue
        elif name in _CASCADE_NAMES:
            names.add(name)
        else:
            raise ArgumentError(
                f"{where}: {name!r} is not a cascade; the cascades are "
                f"{', '.join(_CASCADE_NAMES)}, 'all' (every one but delete-orphan) and 'none'"
            )
    return Cascade(**{n.replace("-", "_"): True for n in names})


#: each distinct key-pairs value, once (see ``Relationship.key_pairs``)
_PAIRS: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}


@final
class Relationship(
    metaclass=NoPublicConstructor,
    obtained_by="declare relationship() on an entity, and read inspect_entity(Class).relationships",
):
    """One configured relationship attribute of an entity class.

    Attributes:
        key: the attribute name.
        parent: the mapper of the class the attribute is on.
        target: the mapper of the related class.
        direction: which table holds the foreign key.
        uselist: whether the attribute is a collection.
        collection_class: ``list`` or ``set`` for a collection, else ``None``.
        secondary: the association table of a many-to-many.
        sync_pairs: ``(referenced column, foreign-key column)`` pairs between the two
            entity tables (one-to-many, many-to-one), or between this class's table and
            the association table (many-to-many).
        secondary_pairs: for a many-to-many, the target table's pairs with the
            association table.
        cascade: the cascade rules.
        back_populates: the other side, kept in sync in memory.
        order_by: the columns a collection is loaded in order of.
        passive_deletes: the database deletes (or nulls) the children of a deleted row.
        passive_updates: the database updates the children of a row whose key changes.
        post_update: this relationship's key is written by a second UPDATE.
        lazy: the default loading strategy.
    """

    __slots__ = (
        "_key_pairs",
        "_other_side",
        "back_populates",
        "cascade",
        "collection_class",
        "direction",
        "key",
        "lazy",
        "order_by",
        "parent",
        "passive_deletes",
        "passive_updates",
        "post_update",
        "secondary",
        "secondary_pairs",
        "spec",
        "sync_pairs",
        "target",
        "uselist",
    )

    def __init__(
        self,
        key: str,
        parent: Mapper[Any],
        target: Mapper[Any],
        shape: Shape,
        spec: RelationshipSpec,
    ) -> None:
        self.key: str = key
        self.parent: Mapper[Any] = parent
        self.target: Mapper[Any] = target
        self.spec: RelationshipSpec = spec
        where = f"{parent.class_.__name__}.{key}"
        self.cascade: Cascade = parse_cascade(spec.cascade, where)
        self.secondary: Table | None = spec.secondary
        self.collection_class: type[list[Any]] | type[set[Any]] | None = shape.collection
        self.uselist: bool = shape.collection is not None if spec.uselist is None else spec.uselist
        if self.uselist and shape.collection is None:
            raise ArgumentError(
                f"{where} has uselist=True but a scalar annotation; annotate it "
                f"Mapped[list[{target.class_.__name__}]]"
            )
        self.secondary_pairs: tuple[tuple[Column[Any], Column[Any]], ...] = ()
        self.direction: Direction
        self.sync_pairs: tuple[tuple[Column[Any], Column[Any]], ...]
        if self.secondary is not None:
            self.direction = Direction.MANY_TO_MANY
            chosen = _fk_columns(spec.foreign_keys, where, parent)
            self.sync_pairs = _pairs(parent.table, self.secondary, chosen, where)
            self.secondary_pairs = _pairs(target.table, self.secondary, chosen, where)
        else:
            self.direction, self.sync_pairs = _direction(parent, target, shape, spec, where)
        # a lambda (a class defined further down) is called now: every class exists
        self.order_by: tuple[Any, ...] = tuple(
            c() if callable(c) and not hasattr(c, "__clause_element__") else c
            for c in spec.order_by or ()
        )
        self.passive_deletes: bool = spec.passive_deletes
        self.passive_updates: bool = spec.passive_updates
        self.post_update: bool = spec.post_update
        self.lazy: Lazy = spec.lazy
        if self.lazy not in ("select", "raise", "selectin", "joined", "noload"):
            raise ArgumentError(
                f"{where}: lazy={self.lazy!r} is not a loading strategy typed_session has; "
                "use 'select' (on access), 'selectin' or 'joined' (with every query), "
                "'raise' or 'noload'"
            )
        if self.lazy == "joined":
            _JOINED_DEFAULTS.append(self)
        self.back_populates: Relationship | None = None
        self._other_side = spec.back_populates
        self._key_pairs: tuple[tuple[str, str], ...] | None = None
        if self.cascade.delete_orphan and self.direction is not Direction.ONE_TO_MANY:
            raise ArgumentError(
                f"On {where}, delete-orphan cascade is not supported on a many-to-many or "
                "many-to-one relationship: an object there can have several parents. Put "
                "delete-orphan on the one-to-many side (the parent's collection)"
            )

    def __repr__(self) -> str:
        return f"<relationship {self}>"

    def __str__(self) -> str:
        return f"{self.parent.class_.__name__}.{self.key}"

    @property
    def other_side(self) -> str | Callable[[], object] | None:
        """``back_populates`` as given, until ``link_back_populates`` resolves it."""
        return self._other_side

    @property
    def foreign_key_side(self) -> Mapper[Any]:
        """The mapper whose table holds the foreign-key columns (not for many-to-many)."""
        return self.parent if self.direction is Direction.MANY_TO_ONE else self.target

    @property
    def key_pairs(self) -> tuple[tuple[str, str], ...]:
        """The sync pairs as ``(referenced attribute, foreign-key attribute)`` keys.

        The referenced attribute is on the parent of the pair (the "one" side), the
        foreign key on the child; for a many-to-many, on the association row.
        """
        pairs = self._key_pairs
        if pairs is None:
            # one tuple per value: the two sides of a back_populates pair describe the
            # same link, and the flush recognises a link by the pairs' identity
            found = self._attribute_pairs()
            pairs = self._key_pairs = _PAIRS.setdefault(found, found)
        return pairs

    def _attribute_pairs(self) -> tuple[tuple[str, str], ...]:
        one, many = (
            (self.target, self.parent)
            if self.direction is Direction.MANY_TO_ONE
            else (self.parent, self.target)
        )
        out: list[tuple[str, str]] = []
        for referenced, fk in self.sync_pairs:
            ref_attr = one.by_column.get(referenced)
            if self.direction is Direction.MANY_TO_MANY:
                fk_key = fk.key
            else:
                fk_attr = many.by_column.get(fk)
                if fk_attr is None:
                    raise ArgumentError(
                        f"{self}: foreign-key column {fk} is not mapped on "
                        f"{many.class_.__name__}; map it as an attribute"
                    )
                fk_key = fk_attr.key
            if ref_attr is None:
                raise ArgumentError(
                    f"{self}: referenced column {referenced} is not mapped on "
                    f"{one.class_.__name__}; map it as an attribute"
                )
            out.append((ref_attr.key, fk_key))
        return tuple(out)

    @property
    def target_key_pairs(self) -> tuple[tuple[str, str], ...]:
        """For a many-to-many: ``(target attribute, association column key)`` pairs."""
        return tuple(
            (self.target.by_column[referenced].key, fk.key)
            for referenced, fk in self.secondary_pairs
        )

    def link_back_populates(self) -> None:
        """Resolve ``back_populates`` to the other side's relationship, and check it.

        Raises:
            ArgumentError: if the other side is missing or does not point back.
        """
        other = self._other_side
        if other is None:
            return
        name = other if isinstance(other, str) else _attribute_key(other, self)
        found = self.target.relationships.get(name)
        if found is None:
            raise ArgumentError(
                f"{self} has back_populates={name!r}, but {self.target.class_.__name__} has "
                f"no relationship {name!r} (its relationships: "
                f"{', '.join(self.target.relationships) or 'none'}); name the attribute on "
                f"{self.target.class_.__name__} that points back to {self.parent.class_.__name__}"
            )
        if found.target is not self.parent:
            raise ArgumentError(
                f"{self} has back_populates={name!r}, but {found} relates to "
                f"{found.target.class_.__name__}, not {self.parent.class_.__name__}"
            )
        self.back_populates = found

    def lazy_statement(self) -> tuple[Select[Any], tuple[str, ...]]:
        """The SELECT that loads this relationship for one object, and the keys it binds.

        The bind parameters are named ``rel_0``, ``rel_1``...: their values are the
        object's attributes named by the returned keys, in order.
        """
        target = self.target
        stmt: Select[Any] = select(target.class_)
        keys: list[str] = []
        clauses: list[ColumnElement[bool]] = []
        if self.direction is Direction.MANY_TO_MANY:
            assert self.secondary is not None
            on = and_(*(ref == fk for ref, fk in self.secondary_pairs))
            stmt = stmt.join(self.secondary, on)
            for i, (referenced, fk) in enumerate(self.sync_pairs):
                clauses.append(fk == bindparam(f"rel_{i}"))
                keys.append(self.parent.by_column[referenced].key)
        elif self.direction is Direction.ONE_TO_MANY:
            for i, (referenced, fk) in enumerate(self.sync_pairs):
                clauses.append(fk == bindparam(f"rel_{i}"))
                keys.append(self.parent.by_column[referenced].key)
        else:
            for i, (referenced, fk) in enumerate(self.sync_pairs):
                clauses.append(referenced == bindparam(f"rel_{i}"))
                keys.append(self.parent.by_column[fk].key)
        stmt = stmt.where(*clauses)
        if self.order_by:
            stmt = stmt.order_by(*self.order_by)
        return stmt, tuple(keys)

    def loads_by_target_key(self) -> bool:
        """Whether a many-to-one references the target's whole primary key (identity lookup)."""
        if self.direction is not Direction.MANY_TO_ONE:
            return False
        referenced = tuple(r for r, _fk in self.sync_pairs)
        return set(referenced) == set(self.target.table.primary_key.columns) and len(
            referenced
        ) == len(self.target.pk_keys)

    def target_identity_keys(self) -> tuple[str, ...]:
        """For a many-to-one by primary key: this object's attributes, in target-key order."""
        by_ref = {r: self.parent.by_column[fk].key for r, fk in self.sync_pairs}
        return tuple(by_ref[a.column] for a in self.target.primary_key)


_new_relationship = internal_constructor(Relationship)


@final
@dataclass(frozen=True, slots=True)
class Shape:
    """What the annotation says: the related class and the collection type, if any."""

    target: type[Any]
    collection: type[list[Any]] | type[set[Any]] | None
    optional: bool


def shape_of(annotation: object, where: str) -> Shape:
    """Read ``Parent | None``, ``Parent``, ``list[Child]`` or ``set[Child]``.

    Raises:
        ArgumentError: for anything else.
    """
    inner, optional = unwrap_optional(annotation)
    origin = typing.get_origin(inner)
    if origin in (list, set):
        (item,) = typing.get_args(inner)
        if isinstance(item, type):
            return Shape(item, list if origin is list else set, optional=False)
    elif isinstance(inner, type) and not typing.get_args(inner):
        return Shape(inner, None, optional)
    raise ArgumentError(
        f"{where}: a relationship is annotated Mapped[Other | None], Mapped[Other], "
        f"Mapped[list[Other]] or Mapped[set[Other]], not {annotation!r}"
    )


def _attribute_key(reference: Callable[[], object], rel: Relationship) -> str:
    """The attribute key a ``lambda: Other.attr`` reference returns."""
    try:
        attr = reference()
    except NameError as err:
        raise ArgumentError(f"{rel}: back_populates could not be evaluated ({err})") from err
    key = getattr(attr, "key", None)
    if not isinstance(key, str):
        raise ArgumentError(
            f"{rel}: back_populates must name an attribute (a string, or a lambda returning "
            f"Other.attribute), not {attr!r}"
        )
    return key


def _fk_columns(
    spec_fks: Sequence[object] | None, where: str, parent: Mapper[Any]
) -> set[Column[Any]] | None:
    """The columns ``foreign_keys=`` names.

    Each item is a Core column, a mapped attribute (``Child.parent_id``), a lambda
    returning one (for a class not defined yet), the attribute's name as a string
    (``"parent_id"`` on this class, ``"Child.parent_id"`` on another entity), or the
    ``column()`` of this class body itself.
    """
    if spec_fks is None:
        return None
    out: set[Column[Any]] = set()
    for item in spec_fks:
        col = _fk_column(item, parent)
        if col is None:
            raise ArgumentError(
                f"{where}: foreign_keys= takes mapped attributes, Core columns, lambdas "
                f"returning one, or attribute names, not {item!r}"
            )
        out.add(col)
    return out


def _fk_column(item: object, parent: Mapper[Any]) -> Column[Any] | None:
    if isinstance(item, str):
        cls_name, _, key = item.rpartition(".")
        mappers = {m.class_.__name__: m for m in parent.registry.mappers}
        mapper = mappers.get(cls_name) if cls_name else parent
        attr = None if mapper is None else mapper.columns.get(key)
        return None if attr is None else attr.column
    if isinstance(item, Column):
        return item
    column = getattr(item, "column", None)
    if isinstance(column, Column):
        return column
    for attr in parent.columns.values():  # this class body's own column() placeholder
        if attr.spec is item:
            return attr.column
    if callable(item):
        try:
            return _fk_column(item(), parent)
        except (NameError, TypeError):
            return None
    return None


def _candidates(
    child: Table, parent: Table, chosen: set[Column[Any]] | None
) -> list[list[ForeignKey]]:
    """The foreign-key constraints of ``child`` referencing ``parent``, as lists of keys."""
    groups: list[list[ForeignKey]] = []
    for constraint in child.foreign_key_constraints:
        fks: list[ForeignKey] = []
        for fk in constraint.elements:
            try:
                referenced = fk.column
            except NoReferencedTableError:
                continue
            if referenced.table is parent and (chosen is None or fk.parent in chosen):
                fks.append(fk)
        if fks:
            groups.append(fks)
    return groups


def _describe(group: list[ForeignKey]) -> str:
    return ", ".join(
        f"{fk.parent.table.name}.{fk.parent.name} -> {fk.target_fullname}" for fk in group
    )


def _one(
    groups: list[list[ForeignKey]], where: str, child: Table, parent: Table
) -> list[ForeignKey]:
    if len(groups) > 1:
        groups = sorted(groups, key=_describe)
        raise ArgumentError(
            f"Could not determine join condition for {where}: table {child.name} has "
            f"several foreign keys to {parent.name} "
            f"({' and '.join(_describe(g) for g in groups)}); choose one with "
            "relationship(foreign_keys=[...]) naming the attribute mapped to "
            f"{child.name}.{groups[0][0].parent.name}"
        )
    return groups[0]


def _pairs(
    one: Table, association: Table, chosen: set[Column[Any]] | None, where: str
) -> tuple[tuple[Column[Any], Column[Any]], ...]:
    groups = _candidates(association, one, chosen)
    if not groups:
        groups = _candidates(association, one, None)
    if not groups:
        raise ArgumentError(
            f"Could not determine join condition for {where}: the association table "
            f"{association.name} has no foreign key to {one.name}"
        )
    group = _one(groups, where, association, one)
    return tuple((fk.column, fk.parent) for fk in group)


def _direction(
    parent: Mapper[Any], target: Mapper[Any], shape: Shape, spec: RelationshipSpec, where: str
) -> tuple[Direction, tuple[tuple[Column[Any], Column[Any]], ...]]:
    chosen = _fk_columns(spec.foreign_keys, where, parent)
    here = _candidates(parent.table, target.table, chosen)  # this table -> the other
    there = _candidates(target.table, parent.table, chosen)  # the other table -> this one
    if parent.table is target.table:  # self-referential: the annotation decides
        if not here:
            raise ArgumentError(
                f"Could not determine join condition for {where}: table "
                f"{parent.table.name} has no foreign key to itself"
            )
        if shape.collection is None and spec.uselist is not True:
            group, direction = _one(here, where, parent.table, target.table), Direction.MANY_TO_ONE
        else:
            group, direction = _one(there, where, target.table, parent.table), Direction.ONE_TO_MANY
    elif here and not there:
        group, direction = _one(here, where, parent.table, target.table), Direction.MANY_TO_ONE
    elif (there and not here) or (here and there and shape.collection is not None):
        group, direction = _one(there, where, target.table, parent.table), Direction.ONE_TO_MANY
    elif here and there:
        raise ArgumentError(
            f"Could not determine join condition for {where}: the tables reference each other "
            f"({_describe(here[0])} and {_describe(there[0])}); choose with "
            "relationship(foreign_keys=[...])"
        )
    else:
        raise ArgumentError(
            f"Could not determine join condition for {where}: no foreign key links "
            f"{parent.table.name} and {target.table.name}; add one (column(foreign_key="
            f"'{target.table.name}.id')), or give secondary= for a many-to-many"
        )
    if direction is Direction.MANY_TO_ONE and shape.collection is not None:
        raise ArgumentError(
            f"{where} is annotated as a collection, but {parent.table.name} holds the foreign "
            f"key to {target.table.name}, so each {parent.class_.__name__} has at most one: "
            f"annotate it Mapped[{target.class_.__name__} | None]"
        )
    return direction, tuple((fk.column, fk.parent) for fk in group)


def build(
    key: str, parent: Mapper[Any], target: Mapper[Any], shape: Shape, spec: RelationshipSpec
) -> Relationship:
    """Configure one relationship (``back_populates`` is linked once all are built)."""
    if spec.default is not MISSING and spec.default is not None:
        raise ArgumentError(
            f"{parent.class_.__name__}.{key}: a relationship's default can only be None "
            "(or default_factory=list / set for a collection)"
        )
    return _new_relationship(key, parent, target, shape, spec)
