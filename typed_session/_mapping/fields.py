"""The field specifiers of an entity class body: ``Mapped[T]``, ``column()``, ``relationship()``.

``Mapped[T]`` exists for the type checkers: its ``__get__`` overloads say that
``User.name`` is a Core column expression and ``user.name`` is a ``str``, and its
``__set__`` gives the type the generated ``__init__`` accepts. At run time the entity
decorator replaces every mapped class attribute with a faster, non-data descriptor
(:mod:`typed_session._instrumentation`), so a loaded read never runs Python code.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypedDict, TypeVar, final, overload

from sqlalchemy import ColumnElement, FetchedValue, Table
from sqlalchemy.exc import ArgumentError
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeEngine
from typing_extensions import Unpack

from typed_session._typing import MISSING

__all__ = [
    "MISSING",
    "ColumnOptions",
    "ColumnSpec",
    "Lazy",
    "Mapped",
    "RelationshipOptions",
    "RelationshipSpec",
    "column",
    "relationship",
    "unwrap_optional",
]

_T = TypeVar("_T")


ServerDefault = str | TextClause | ColumnElement[Any] | FetchedValue
ColumnType = TypeEngine[Any] | type[TypeEngine[Any]]


class Mapped(Generic[_T]):
    """The annotation of a mapped attribute: ``T`` on an instance, a column on the class."""

    __slots__ = ()

    if TYPE_CHECKING:

        @overload
        def __get__(self, instance: None, owner: type[object]) -> ColumnElement[_T]: ...

        @overload
        def __get__(self, instance: object, owner: type[object]) -> _T: ...

        def __get__(self, instance: object | None, owner: type[object]) -> ColumnElement[_T] | _T:
            """Return the column expression on the class, the value on an instance."""

        def __set__(self, instance: object, value: _T) -> None:
            """Assign a value of the attribute's declared type."""


@final
@dataclass(frozen=True, slots=True, eq=False)
class ColumnSpec(Mapped[Any]):
    """What ``column()`` records until the entity decorator turns it into a Core ``Column``."""

    type_: ColumnType | None
    primary_key: bool
    nullable: bool | None
    unique: bool
    index: bool
    default: object
    default_factory: Callable[[], object] | None
    server_default: ServerDefault | None
    foreign_key: str | None
    name: str | None
    autoincrement: bool | Literal["auto"]
    init: bool
    repr: bool
    kw_only: bool | None


class ColumnOptions(TypedDict, total=False):
    """The options of ``column()`` besides its type and its default (see ``column``)."""

    primary_key: bool
    nullable: bool | None
    unique: bool
    index: bool
    server_default: ServerDefault | None
    foreign_key: str | None
    name: str | None
    autoincrement: bool | Literal["auto"]
    init: bool
    repr: bool
    kw_only: bool | None


# The overloads tie the default to the annotation: ``x: Mapped[int] = column(default="a")``
# is a ``Mapped[str]`` assigned to a ``Mapped[int]`` (``Mapped`` is invariant), and
# ``column(default=datetime.now)`` a callable where an ``int`` is expected; both checkers
# solve ``_T`` from the annotation first. Without a default, ``_T`` comes from the
# annotation alone. Giving both ``default`` and ``default_factory`` matches no overload.
# The compromise: the other options are a TypedDict (``Unpack``) rather than repeated in
# every overload, so an IDE shows their types but not their defaults (those are in the
# docstring); the type checkers read ``init=`` and ``kw_only=`` from the call either way.
@overload
def column(
    type_: ColumnType | None = None,
    /,
    *,
    default: _T = ...,
    **options: Unpack[ColumnOptions],
) -> Mapped[_T]: ...


@overload
def column(
    type_: ColumnType | None = None,
    /,
    *,
    default_factory: Callable[[], _T],
    **options: Unpack[ColumnOptions],
) -> Mapped[_T]: ...


def column(
    type_: ColumnType | None = None,
    /,
    *,
    default: object = MISSING,
    default_factory: Callable[[], object] | None = None,
    **options: Unpack[ColumnOptions],
) -> Mapped[Any]:
    """Declare a mapped column attribute in an entity class body.

    Args:
        type_: the Core type; inferred from the ``Mapped[...]`` annotation when omitted.
        default: the value the constructor uses when the argument is omitted (a value
            of the annotated type: a callable goes to ``default_factory``); it is also
            the Core column's client-side default for inserts.
        default_factory: a callable producing the constructor's default, called for
            each new object.
        **options: ``primary_key`` (default False): the column is (part of) the primary
            key. ``nullable``: defaults to whether the annotation admits ``None``.
            ``unique``, ``index`` (default False): add a UNIQUE constraint, an index.
            ``server_default``: a default the database applies (``FetchedValue``, SQL
            text or an expression such as ``func.now()``); the flush fetches the value
            back. ``foreign_key``: ``"table.column"`` this column references. ``name``:
            the column's name in the table, when it differs from the attribute.
            ``autoincrement`` (default ``"auto"``): passed to Core's ``Column``.
            ``init`` (default True): whether the generated ``__init__`` takes this
            attribute. ``repr`` (default True): whether the generated ``__repr__`` shows
            it. ``kw_only``: override the entity's keyword-only setting for it.

    Returns:
        A placeholder the ``@entity`` decorator replaces, typed ``Mapped[T]`` so that
        the default is checked against the annotation.

    Raises:
        ArgumentError: if both ``default`` and ``default_factory`` are given, or if
            ``default`` is a callable or a mutable (unhashable) value, which every
            object would share: ``default_factory`` is the way to both.
    """
    if default is not MISSING:
        _check_default(default, default_factory)
    return ColumnSpec(
        type_=type_,
        primary_key=options.get("primary_key", False),
        nullable=options.get("nullable"),
        unique=options.get("unique", False),
        index=options.get("index", False),
        default=default,
        default_factory=default_factory,
        server_default=options.get("server_default"),
        foreign_key=options.get("foreign_key"),
        name=options.get("name"),
        autoincrement=options.get("autoincrement", "auto"),
        init=options.get("init", True),
        repr=options.get("repr", True),
        kw_only=options.get("kw_only"),
    )


def _check_default(default: object, default_factory: Callable[[], object] | None) -> None:
    if default_factory is not None:
        raise ArgumentError(
            "column() takes default= or default_factory=, not both: keep the one that "
            "should produce the constructor's default"
        )
    if callable(default):
        name = getattr(default, "__qualname__", repr(default))
        raise ArgumentError(
            f"column(default={name}) got a callable; default= is the value itself (the "
            f"constructor would store the function). Write default_factory={name} to call "
            "it for each new object"
        )
    if type(default).__hash__ is None:
        kind = type(default).__name__
        raise ArgumentError(
            f"column(default=<{kind}>) would share one mutable {kind} between every object; "
            f"write default_factory={kind} (or a lambda returning a new one) instead"
        )


def unwrap_optional(tp: object) -> tuple[object, bool]:
    """``X | None`` -> ``(X, True)``; anything else -> ``(tp, False)``."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        nullable = len(args) != len(typing.get_args(tp))
        if len(args) == 1:
            return args[0], nullable
        return typing.Union[tuple(args)], nullable  # noqa: UP007 -- built from a runtime tuple
    return tp, False


Lazy = Literal["select", "raise", "selectin", "joined", "noload"]
"""How a relationship loads when no loader option says otherwise (``lazy=``)."""

OtherSide = str | Callable[[], object]
"""The attribute on the other class: its name, or ``lambda: Child.parent``."""


@final
@dataclass(frozen=True, slots=True, eq=False)
class RelationshipSpec(Mapped[Any]):
    """What ``relationship()`` records until the registry configures the relationship."""

    back_populates: OtherSide | None
    uselist: bool | None
    secondary: Table | None
    foreign_keys: tuple[object, ...] | None
    order_by: tuple[object, ...] | None
    cascade: str
    passive_deletes: bool
    passive_updates: bool
    post_update: bool
    lazy: Lazy
    default: object
    default_factory: Callable[[], object] | None
    init: bool
    repr: bool
    kw_only: bool | None


class RelationshipOptions(TypedDict, total=False):
    """The options of ``relationship()`` besides its default (see ``relationship``)."""

    back_populates: OtherSide | None
    uselist: bool | None
    secondary: Table | None
    foreign_keys: Sequence[object] | None
    order_by: object | Sequence[object] | None
    cascade: str
    passive_deletes: bool
    passive_updates: bool
    post_update: bool
    lazy: Lazy
    init: bool
    repr: bool
    kw_only: bool | None


# The same overloads as column(): the default is checked against the annotation.
@overload
def relationship(*, default: _T = ..., **options: Unpack[RelationshipOptions]) -> Mapped[_T]: ...


@overload
def relationship(
    *, default_factory: Callable[[], _T], **options: Unpack[RelationshipOptions]
) -> Mapped[_T]: ...


def relationship(
    *,
    default: object = MISSING,
    default_factory: Callable[[], object] | None = None,
    **options: Unpack[RelationshipOptions],
) -> Mapped[Any]:
    """Declare a relationship attribute: ``Mapped[Parent | None]`` or ``Mapped[list[Child]]``.

    The other class is read from the annotation, when the registry configures its
    entities (on first use, so classes may refer to classes defined after them).

    Args:
        default: the constructor's default (``None`` for a many-to-one or one-to-one).
        default_factory: the constructor's default for a collection (``list`` / ``set``).
        **options: ``back_populates``: the attribute on the other class kept in sync
            with this one, as a lambda returning it (``lambda: Child.parent``: a typo is
            a type error) or its name. ``uselist``: ``False`` for a one-to-one whose
            annotation is a scalar (inferred from the annotation when omitted).
            ``secondary``: the association ``Table`` of a many-to-many. ``foreign_keys``:
            the foreign-key columns to join by, when the tables have several.
            ``order_by``: columns (of the other class) a collection is loaded in order of.
            ``cascade`` (default ``"save-update, merge"``): the operations that follow
            the relationship: ``save-update``, ``merge``, ``expunge``, ``delete``,
            ``delete-orphan``, ``refresh-expire``, or ``all``. ``passive_deletes``: leave
            the children of a deleted parent to the database's ``ON DELETE``.
            ``passive_updates`` (default True): a changed parent key reaches the
            children through ``ON UPDATE CASCADE``; False: the flush updates them.
            ``post_update``: break a cycle of rows with a second UPDATE. ``lazy``
            (default ``"select"``): ``"raise"`` refuses lazy loading, ``"selectin"`` /
            ``"joined"`` load eagerly with every query (an IN query / a LEFT OUTER JOIN),
            ``"noload"`` never loads (empty / None).
            ``init``, ``repr``, ``kw_only``: as for ``column()``.

    Returns:
        A placeholder the ``@entity`` decorator replaces, typed ``Mapped[T]``.

    Raises:
        ArgumentError: if both ``default`` and ``default_factory`` are given, or the
            default is a shared mutable value.
    """
    if default is not MISSING:
        _check_default(default, default_factory)
    foreign_keys = options.get("foreign_keys")
    order_by = options.get("order_by")
    if order_by is not None and not isinstance(order_by, Sequence):
        order_by = (order_by,)
    return RelationshipSpec(
        back_populates=options.get("back_populates"),
        uselist=options.get("uselist"),
        secondary=options.get("secondary"),
        foreign_keys=None if foreign_keys is None else tuple(foreign_keys),
        order_by=None if order_by is None else tuple(order_by),
        cascade=options.get("cascade", "save-update, merge"),
        passive_deletes=options.get("passive_deletes", False),
        passive_updates=options.get("passive_updates", True),
        post_update=options.get("post_update", False),
        lazy=options.get("lazy", "select"),
        default=default,
        default_factory=default_factory,
        init=options.get("init", True),
        repr=options.get("repr", False),
        kw_only=options.get("kw_only"),
    )
