"""``session.query(User)`` as a user writes it: a ``Query[User]`` all the way down."""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_type

from sqlalchemy import Connection, Engine, Select

from typed_session import Query, Session

from .check_entity import Point, User


def builds(session: Session[Engine]) -> None:
    query = session.query(User)
    assert_type(query, Query[User])
    assert_type(query.filter(User.name == "x", User.id > 1), Query[User])
    assert_type(query.filter_by(name="x", id=1), Query[User])
    assert_type(query.order_by(User.name, User.id.desc()), Query[User])
    assert_type(query.order_by("name"), Query[User])
    assert_type(query.limit(5).offset(10).limit(None), Query[User])
    assert_type(query.options(), Query[User])
    assert_type(query.statement, Select[User])
    assert_type(query.session, Session)
    assert_type(session.query(Point), Query[Point])


def runs(session: Session[Engine], conn_session: Session[Connection]) -> None:
    query = session.query(User).filter(User.name == "x")
    assert_type(query.all(), list[User])
    assert_type(query.first(), User | None)
    assert_type(query.one(), User)
    assert_type(query.one_or_none(), User | None)
    assert_type(query.count(), int)
    assert_type(query.get(1), User | None)
    assert_type(iter(query), Iterator[User])
    for user in query:
        assert_type(user, User)
    assert_type(conn_session.query(Point).one().label, str)


def rejected(session: Session[Engine]) -> None:
    # each line must keep failing under both mypy and basedpyright
    session.query(User, Point)  # type: ignore[arg-type]  # one entity class per query
    session.query(User.name)  # type: ignore[arg-type]  # a column: use select()
    session.query(User).limit("5")  # type: ignore[arg-type]
    session.query(User).one().name = 1  # type: ignore[assignment]
    session.query(User).options(User.name)  # type: ignore[arg-type]
    users = session.query(User)
    points: Query[Point] = users  # type: ignore[assignment]
    print(points)
