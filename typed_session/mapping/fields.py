"""The field specifiers an entity class body is written with: ``Mapped[T]`` and ``column()``.

``Mapped[T]`` exists for the type checkers: its ``__get__`` overloads say that
``User.name`` is a Core column expression and ``user.name`` is a ``str``, and its
``__set__`` gives the type the generated ``__init__`` accepts. At run time the entity
decorator replaces every mapped class attribute with a faster, non-data descriptor
(:mod:`typed_session.instrumentation`), so a loaded read never runs Python code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, final, overload

from sqlalchemy import ColumnElement, FetchedValue
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.types import TypeEngine

from typed_session._typing import MISSING

__all__ = ["MISSING", "ColumnSpec", "Mapped", "column"]

_T = TypeVar("_T")


ServerDefault = str | TextClause | ColumnElement[Any] | FetchedValue


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

    type_: TypeEngine[Any] | type[TypeEngine[Any]] | None
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


def column(
    type_: TypeEngine[Any] | type[TypeEngine[Any]] | None = None,
    /,
    *,
    primary_key: bool = False,
    nullable: bool | None = None,
    unique: bool = False,
    index: bool = False,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | None = None,
    server_default: ServerDefault | None = None,
    foreign_key: str | None = None,
    name: str | None = None,
    autoincrement: bool | Literal["auto"] = "auto",
    init: bool = True,
    repr: bool = True,
    kw_only: bool | None = None,
) -> Any:
    """Declare a mapped column attribute in an entity class body.

    Args:
        type_: the Core type; inferred from the ``Mapped[...]`` annotation when omitted.
        primary_key: the column is (part of) the primary key.
        nullable: defaults to whether the annotation admits ``None``.
        unique: add a UNIQUE constraint.
        index: add an index.
        default: the value the constructor uses when the argument is omitted; a scalar
            default is also the Core column's client-side default for inserts.
        default_factory: a callable producing the constructor's default.
        server_default: a default the database applies (``FetchedValue``, SQL text or
            an expression such as ``func.now()``); the flush fetches the value back.
        foreign_key: ``"table.column"`` this column references.
        name: the column's name in the table, when it differs from the attribute.
        autoincrement: passed to Core's ``Column``.
        init: whether the generated ``__init__`` takes this attribute.
        repr: whether the generated ``__repr__`` shows this attribute.
        kw_only: override the entity's keyword-only setting for this attribute.

    Returns:
        A placeholder the ``@entity`` decorator replaces; typed ``Any`` so that it can
        stand in a ``Mapped[T]`` annotation of any ``T``.

    Raises:
        ArgumentError: if both ``default`` and ``default_factory`` are given.
    """
    if default is not MISSING and default_factory is not None:
        from sqlalchemy.exc import ArgumentError

        raise ArgumentError(
            "column() takes default= or default_factory=, not both: keep the one that "
            "should produce the constructor's default"
        )
    return ColumnSpec(
        type_=type_,
        primary_key=primary_key,
        nullable=nullable,
        unique=unique,
        index=index,
        default=default,
        default_factory=default_factory,
        server_default=server_default,
        foreign_key=foreign_key,
        name=name,
        autoincrement=autoincrement,
        init=init,
        repr=repr,
        kw_only=kw_only,
    )
