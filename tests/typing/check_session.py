"""A session as a user drives it: construction, queries and introspection, typed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, assert_type

from sqlalchemy import (
    Connection,
    Engine,
    Result,
    Row,
    ScalarResult,
    Table,
    create_engine,
    select,
)

from typed_session import (
    IdentityKey,
    InstanceState,
    Mapper,
    ObjectState,
    Session,
    SessionTransaction,
    inspect_entity,
    instance_state,
    object_session,
)

from .check_entity import User


def construction() -> None:
    engine = create_engine("sqlite://")
    assert_type(engine, Engine)
    assert_type(Session(engine), Session[Engine])
    assert_type(Session(engine, autoflush=False, expire_on_commit=False), Session[Engine])
    assert_type(Session(engine, info={"tenant": 1}), Session[Engine])
    with engine.connect() as conn:
        assert_type(Session(conn), Session[Connection])
    with Session(engine) as s:
        assert_type(s, Session[Engine])
    assert_type(Session(), Session[Engine])


def queries(session: Session[Engine], u: User) -> None:
    assert_type(session.get(User, 1), User | None)
    assert_type(session.get_one(User, 1), User)
    assert_type(session.scalars(select(User)), ScalarResult[User])
    assert_type(session.scalars(select(User)).all(), Sequence[User])
    assert_type(session.scalars(select(User).where(User.name == "x")).first(), User | None)
    assert_type(session.scalars(select(User.name)).one(), str)
    assert_type(session.execute(select(User.id, User)), Result[int, User])
    assert_type(session.execute(select(User)).scalars().all(), Sequence[User])
    assert_type(session.scalar(select(User.id)), int | None)
    assert_type(session.scalar(select(User)), User | None)
    assert_type(session.execute(select(User)).scalar_one(), User)
    assert_type(session.execute(select(User.id, User.name)).one(), Row[int, str])
    assert_type(session.identity_map.get(IdentityKey(User, (1,))), User | None)
    assert_type(session.identity_map[IdentityKey(User, (1,))], User)
    with session.no_autoflush as same:
        assert_type(same, Session[Engine])
    assert_type(session.begin(), SessionTransaction)
    assert_type(session.connection(), Connection)
    assert_type(object_session(u), Session[Any] | None)
    session.add(u)
    session.add_all([u, User(name="y")])
    session.delete(u)
    session.flush()
    session.commit()


def introspection(u: User) -> None:
    state = instance_state(u)
    assert_type(state, InstanceState[User])
    assert_type(state.key, IdentityKey[User] | None)
    assert_type(state.object_state, ObjectState)
    mapper = inspect_entity(User)
    assert_type(mapper, Mapper[User])
    assert_type(mapper.table, Table)
    assert_type(mapper.class_, type[User])
    assert_type(mapper.pk_keys, tuple[str, ...])
    assert_type(mapper.attribute_keys, tuple[str, ...])
    key = state.key
    if key is not None:
        assert_type(key.entity, type[User])


def rejected(engine: Engine, session: Session[Engine]) -> None:
    Session(engine, autoflush="yes")  # type: ignore[arg-type]
    Session(engine, autoflsh=True)  # type: ignore[call-arg]
    Session(engine, expire_on_commit=1)  # type: ignore[arg-type]
    Session("sqlite://")  # type: ignore[arg-type]
    _ = session.get(User, 1).name  # type: ignore[union-attr]
    _ = session.get_one(User, 1).nam  # type: ignore[attr-defined]
    count: int = session.scalar(select(User.id))  # type: ignore[assignment]
    names: Sequence[int] = session.scalars(select(User.name)).all()  # type: ignore[assignment]
    print(count, names)
