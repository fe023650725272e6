"""A sharded session as a user writes it: the choosers are checked against their Protocols."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any, assert_type

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.sql import Executable

from typed_session import IdentityKey, ShardedSession, identity_key

from .check_entity import User

shards: dict[str, Engine] = {
    "eu": create_engine("sqlite://"),
    "us": create_engine("sqlite://"),
}


def by_name(entity: type[Any], instance: Any) -> Hashable:
    return "eu" if instance.name < "m" else "us"


def every_shard(entity: type[Any], primary_key: tuple[Hashable, ...]) -> Iterable[Hashable]:
    return list(shards)


def for_query(statement: Executable) -> Iterable[Hashable]:
    return ["eu"]


session = ShardedSession(
    shards, shard_chooser=by_name, identity_chooser=every_shard, query_chooser=for_query
)
assert_type(session.get(User, 1, identity_token="eu"), User | None)
assert_type(session.get(User, 1), User | None)
assert_type(session.scalars(select(User)).all(), Sequence[User])
assert_type(identity_key(User, 1, identity_token="eu"), IdentityKey[User])


def wrong_arity(entity: type[Any]) -> Hashable:
    return "eu"


def wrong_query_chooser(statement: Executable) -> Hashable:
    return "eu"


ShardedSession(shards, shard_chooser=wrong_arity)  # type: ignore[arg-type]
ShardedSession(shards, shard_chooser=by_name, query_chooser=wrong_query_chooser)  # type: ignore[arg-type]
ShardedSession(shards)  # type: ignore[call-arg]
