"""Entities as a user writes them: the generated ``__init__``, instance and class access."""

from __future__ import annotations

import datetime
from typing import ClassVar, assert_type

from sqlalchemy import ColumnElement, Select, String, func, select

from typed_session import Mapped, Registry, column, entity

reg = Registry()


@entity(reg, table="tc_users")
class User:
    id: Mapped[int] = column(primary_key=True, init=False)
    name: Mapped[str]
    # column(default=None), not a bare "= None": both checkers reject a plain value as
    # the class-level default of a Mapped[...] attribute (it is not a Mapped)
    email: Mapped[str | None] = column(default=None)
    nickname: Mapped[str] = column(String(50), default="anon")
    tags: Mapped[str] = column(default_factory=str)
    created: Mapped[datetime.datetime] = column(server_default=func.current_timestamp(), init=False)
    kind: ClassVar[str] = "user"


@entity(reg, table="tc_points", kw_only=False)
class Point:
    x: Mapped[int] = column(primary_key=True)
    y: Mapped[int] = column(primary_key=True)
    label: Mapped[str] = column(default="", kw_only=True)


def construct() -> None:
    assert_type(User(name="x"), User)
    assert_type(User(name="x", email=None), User)
    assert_type(User(name="x", email="a@b", nickname="n", tags="t"), User)
    assert_type(Point(1, 2), Point)
    assert_type(Point(1, y=2, label="p"), Point)


def instance_access(u: User) -> None:
    assert_type(u.name, str)
    assert_type(u.email, str | None)
    assert_type(u.id, int)
    assert_type(u.created, datetime.datetime)
    assert_type(User.kind, str)
    u.name = "y"
    u.email = None
    u.email = "e"
    u.id = 2


def class_access() -> None:
    assert_type(User.name, ColumnElement[str])
    assert_type(User.email, ColumnElement[str | None])
    assert_type(User.id, ColumnElement[int])
    assert_type(select(User), Select[User])
    assert_type(select(User).where(User.name == "x"), Select[User])
    assert_type(select(User).where(User.id > 1).order_by(User.name), Select[User])
    assert_type(select(User.id, User.name), Select[int, str])
    assert_type(select(User.id, User), Select[int, User])


def rejected(u: User) -> None:
    # each line must keep failing under both mypy and basedpyright
    User(name=1)  # type: ignore[arg-type]
    User(name="x", nam="x")  # type: ignore[call-arg]
    User()  # type: ignore[call-arg]
    User(id=1, name="x")  # type: ignore[call-arg]
    u.name = 1  # type: ignore[assignment]
    u.id = None  # type: ignore[assignment]
    u.id = "1"  # type: ignore[assignment]  # a str into Mapped[int]
    u.email = 1  # type: ignore[assignment]
    User("x")  # type: ignore[call-arg]
    Point(1, 2, "p")  # type: ignore[call-arg]
    Point(1, "2")  # type: ignore[arg-type]


def by_tens(version: int | None) -> int:
    return (version or 0) + 10


@entity(reg, table="tc_versioned", version_column="version", version_generator=by_tens)
class Versioned:
    id: Mapped[int] = column(primary_key=True, init=False)
    version: Mapped[int] = column(init=False)


def versioned() -> None:
    assert_type(Versioned().version, int)
    Versioned(version=1)  # type: ignore[call-arg]  # init=False: the session sets it


@entity(reg, table="tc_bad_generator", version_column="v", version_generator=str)  # type: ignore[arg-type]  # makes no int
class BadGenerator:
    id: Mapped[int] = column(primary_key=True)
    v: Mapped[int] = column(init=False)
