"""The generated class as the type checkers see it: mixins, own __init__, dataclass tools."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, assert_type

from typed_session import Mapped, Registry, column, entity, mixin

reg = Registry()


@mixin
class HasId:
    id: Mapped[int] = column(primary_key=True, init=False)


@mixin
class Versioned:
    version: Mapped[int] = column(default=1)


@entity(reg, table="tk_docs")
class Doc(HasId, Versioned):
    title: Mapped[str]


@entity(reg, table="tk_people")
class Person:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]

    def __init__(self, first: str, last: str) -> None:
        self.name = f"{first} {last}"


@entity(reg, table="tk_points", kw_only=False)
class Point:
    x: Mapped[int] = column(primary_key=True)
    y: Mapped[int] = column(primary_key=True)
    label: Mapped[str] = column(default="", kw_only=True)


def mixin_fields(d: Doc) -> None:
    assert_type(Doc(title="t"), Doc)
    assert_type(Doc(title="t", version=2), Doc)
    assert_type(d.id, int)
    assert_type(d.version, int)


def own_init() -> None:
    assert_type(Person("Ada", "Lovelace"), Person)
    assert_type(Person("Ada", "Lovelace").name, str)


def dataclass_tools(p: Point, d: Doc) -> None:
    assert_type(dataclasses.fields(Point), tuple[dataclasses.Field[Any], ...])
    assert_type(dataclasses.asdict(p), dict[str, Any])
    assert_type(dataclasses.replace(p, y=3), Point)
    assert_type(dataclasses.replace(d, title="u"), Doc)


def match_args() -> None:
    assert_type(Point.__match_args__, tuple[Literal["x"], Literal["y"]])


def matching(obj: object) -> int:
    match obj:
        case Point(x, y):
            assert_type(x, int)
            return x + y
        case Doc(title=title):
            assert_type(title, str)
            return len(title)
        case _:
            return 0


def rejected() -> None:
    # each line must keep failing under both mypy and basedpyright
    Doc(title="t", version="2")  # type: ignore[arg-type]
    Doc(id=1, title="t")  # type: ignore[call-arg]
    Person(name="x")  # type: ignore[call-arg]
    Point(1, 2, "l")  # type: ignore[call-arg]
