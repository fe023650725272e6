"""``ShardedSession``'s construction and what it refuses without a database (issue 16, item 4).

What it does on databases is in ``tests/integration/test_sharding.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import ArgumentError, InvalidRequestError

from typed_session import Mapped, Registry, ShardedSession, column, entity

reg = Registry()


@entity(reg, table="shu_items")
class Item:
    id: Mapped[int] = column(primary_key=True)


A, B = create_engine("sqlite://"), create_engine("sqlite://")


def first(_entity: type[Any], _instance: Any) -> str:
    return "a"


def test_the_shards_are_checked_and_kept_read_only() -> None:
    session = ShardedSession({"a": A, "b": B}, shard_chooser=first)
    assert dict(session.shards) == {"a": A, "b": B}
    assert session.bind is None
    assert repr(session).endswith("shards=['a', 'b']>")
    with pytest.raises(TypeError):
        session.shards["c"] = A  # type: ignore[index]
    with pytest.raises(ArgumentError, match="at least one shard"):
        ShardedSession({}, shard_chooser=first)
    with pytest.raises(ArgumentError, match="cannot be keyed None"):
        ShardedSession({None: A}, shard_chooser=first)
    with pytest.raises(ArgumentError, match="bind of shard 'a' must be an Engine"):
        ShardedSession({"a": "sqlite://"}, shard_chooser=first)  # type: ignore[dict-item]


@pytest.mark.parametrize("option", ["binds", "bind_resolver"])
def test_binds_and_bind_resolvers_are_refused(option: str) -> None:
    value: Any = {Item: A} if option == "binds" else (lambda _e, _c: A)
    with pytest.raises(ArgumentError, match=rf"takes no {option}="):
        ShardedSession({"a": A}, shard_chooser=first, **{option: value})


def test_a_get_on_an_unknown_shard_is_refused_before_any_sql() -> None:
    session = ShardedSession({"a": A}, shard_chooser=first)
    with pytest.raises(InvalidRequestError, match=r"No such shard: 'z' \(for get\(Item, 1\)\)"):
        session.get(Item, 1, identity_token="z")
    with pytest.raises(InvalidRequestError, match="identity chooser chose no shard"):
        ShardedSession({"a": A}, shard_chooser=first, identity_chooser=lambda _e, _k: []).get(
            Item, 1
        )
    assert session.get_transaction() is None
    with pytest.raises(InvalidRequestError, match=r"No such shard: 'z' \(for a statement\)"):
        session.scalars(select(Item), execution_options={"identity_token": "z"})
