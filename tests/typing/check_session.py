"""A session as a user drives it: construction, queries and introspection, typed."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, assert_type

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Result,
    Row,
    ScalarResult,
    Select,
    Table,
    create_engine,
    delete,
    insert,
    select,
    text,
    union_all,
    update,
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
    assert_type(Session(), Session[Engine | Connection])


def either_bind(engine: Engine, conn: Connection) -> None:
    # a bare Session annotation is Session[Engine | Connection]: it takes both binds
    by_engine: Session = Session(engine)
    by_connection: Session = Session(conn)
    print(by_engine, by_connection)
    # covariant: a Session[Engine] is a Session[Engine | Connection]
    sessions: list[Session[Engine | Connection]] = [Session(engine), Session(conn)]
    assert_type(sessions, list[Session[Engine | Connection]])
    engine_session = Session(engine)
    assert_type(engine_session.bind, Engine | None)
    assert_type(Session(conn).bind, Connection | None)


def takes_any_session(session: Session) -> Connection:
    assert_type(session, Session[Engine | Connection])
    assert_type(session.bind, Engine | Connection | None)
    return session.connection()


def pass_either(engine: Engine, conn: Connection) -> None:
    takes_any_session(Session(engine))
    takes_any_session(Session(conn))


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
    found = object_session(u)
    assert_type(found, Session[Engine | Connection] | None)
    if found is not None:
        assert_type(found.bind, Engine | Connection | None)
    session.add(u)
    session.add_all([u, User(name="y")])
    # DML without RETURNING gives Core's CursorResult, so that rowcount is there
    assert_type(session.execute(update(User).values(name="z")), CursorResult[*tuple[Any, ...]])
    assert_type(session.execute(update(User).values(name="z")).rowcount, int)
    assert_type(session.execute(delete(User).where(User.id == 1)).rowcount, int)
    assert_type(session.execute(insert(User).values(name="z")).rowcount, int)
    assert_type(session.execute(text("select 1")), Result[*tuple[Any, ...]])
    # entities in RETURNING and set operations come back as objects, typed so
    assert_type(session.scalars(insert(User).returning(User)).all(), Sequence[User])
    assert_type(session.scalars(update(User).values(name="z").returning(User)), ScalarResult[User])
    assert_type(session.scalars(delete(User).returning(User)).one(), User)
    assert_type(
        session.execute(update(User).values(name="z").returning(User.id, User)), Result[int, User]
    )
    assert_type(session.scalars(union_all(select(User), select(User))).all(), Sequence[User])
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
    assert_type(mapper.select_statement, Select[*tuple[object, ...]])
    key = state.key
    if key is not None:
        assert_type(key.entity, type[User])
        assert_type(key.primary_key, tuple[Hashable, ...])
        assert_type(key.identity_token, Hashable)


def identity_map_keys(session: Session[Engine]) -> None:
    assert_type(session.identity_map.keys(), list[IdentityKey[object]])
    for key in session.identity_map:
        assert_type(key, IdentityKey[object])


def rejected(engine: Engine, session: Session[Engine]) -> None:
    Session(engine, autoflush="yes")  # type: ignore[arg-type]
    Session(engine, autoflsh=True)  # type: ignore[call-arg]
    Session(engine, expire_on_commit=1)  # type: ignore[arg-type]
    Session("sqlite://")  # type: ignore[arg-type]
    session.bind = None  # type: ignore[misc]  # read-only
    # covariance goes one way: a session of either bind is not a Session[Engine]
    engine_only: Session[Engine] = Session(session.connection())  # type: ignore[arg-type]
    print(engine_only)
    _ = session.get(User, 1).name  # type: ignore[union-attr]
    _ = session.get_one(User, 1).nam  # type: ignore[attr-defined]
    count: int = session.scalar(select(User.id))  # type: ignore[assignment]
    names: Sequence[int] = session.scalars(select(User.name)).all()  # type: ignore[assignment]
    print(count, names)
    # a text() statement may or may not be DML: its result is a plain Result
    _ = session.execute(text("delete from t")).rowcount  # type: ignore[attr-defined]
    # no Any: a primary-key value is a Hashable, not whatever the caller wants
    key = IdentityKey(User, (1,))
    pk: int = key.primary_key[0]  # type: ignore[assignment]
    print(pk)
