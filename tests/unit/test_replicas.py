"""``ReplicaSession``'s routing rules, on two unrelated SQLite databases (issue 16, item 5).

Which bind each kind of statement goes to is decided before any SQL, so it is checked
here by ``get_bind``; ``tests/integration/test_replicas.py`` checks it on a real
PostgreSQL streaming replica.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select, text, union_all
from sqlalchemy.exc import ArgumentError

from typed_session import Mapped, Registry, ReplicaSession, column, entity

reg = Registry()


@entity(reg, table="rru_items")
class Item:
    id: Mapped[int] = column(primary_key=True)


PRIMARY, R1, R2 = (create_engine("sqlite://") for _ in range(3))


def test_reads_go_to_the_replica_the_rest_to_the_primary() -> None:
    session = ReplicaSession(PRIMARY, [R1])
    assert session.bind is PRIMARY
    assert session.get_bind(clause=select(Item)) is R1
    assert session.get_bind(clause=union_all(select(Item), select(Item))) is R1
    assert session.get_bind(Item) is R1  # a load by key (get, refresh, expired attributes)
    assert session.get_bind(clause=select(Item).with_for_update()) is PRIMARY
    assert session.get_bind(clause=insert(Item)) is PRIMARY
    assert session.get_bind(clause=text("SELECT 1")) is PRIMARY  # cannot tell: the primary
    assert session.get_bind() is PRIMARY
    assert not session.writing()


def test_once_the_transaction_has_a_primary_connection_everything_goes_there() -> None:
    reg.create_all(PRIMARY)
    reg.create_all(R1)
    with ReplicaSession(PRIMARY, [R1]) as session:
        session.scalars(select(Item)).all()
        assert not session.writing()
        session.add(Item(id=1))
        session.flush()
        assert session.writing()
        assert session.get_bind(clause=select(Item)) is PRIMARY
        assert session.get_bind(Item) is PRIMARY
        assert session.scalars(select(Item.id)).all() == [1]  # not on R1: read-your-writes
        session.rollback()
        assert not session.writing()
        assert session.get_bind(Item) is R1


def test_sessions_spread_over_the_replicas_each_keeping_one() -> None:
    chosen = {ReplicaSession(PRIMARY, [R1, R2]).replica for _ in range(4)}
    assert chosen == {R1, R2}


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        ((PRIMARY, []), {}, "at least one replica"),
        ((PRIMARY, ["sqlite://"]), {}, "takes Engines"),
        ((PRIMARY, [R1]), {"binds": {Item: R1}}, "takes no binds="),
        ((PRIMARY, [R1]), {"bind_resolver": lambda _e, _c: R1}, "takes no bind_resolver="),
    ],
)
def test_what_it_refuses(args: tuple[Any, ...], options: dict[str, Any], message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        ReplicaSession(*args, **options)
