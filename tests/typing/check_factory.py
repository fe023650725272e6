"""A session factory as a user drives it: sessionmaker, its calls, class_, configure, begin."""

from __future__ import annotations

from typing import Generic, assert_type

from sqlalchemy import Connection, Engine
from typing_extensions import TypeVar

from typed_session import Session, SessionConfig, sessionmaker

_B = TypeVar("_B", bound=Engine | Connection, default=Engine | Connection, covariant=True)


class AppSession(Session[Engine]):
    """A session subclass written for an Engine."""

    def tenant(self) -> str:
        return str(self.info.get("tenant", ""))


class EitherSession(Session):
    """A session subclass for either bind."""


class AnyBindSession(Session[_B], Generic[_B]):
    """A generic session subclass: the factory solves its bind."""


class NeedsMore(Session[Engine]):
    """A subclass whose constructor takes a required argument of its own."""

    def __init__(self, bind: Engine, region: str) -> None:
        super().__init__(bind)
        self.region = region


def construction(engine: Engine, conn: Connection) -> None:
    assert_type(sessionmaker(engine), sessionmaker[Session[Engine]])
    assert_type(sessionmaker(bind=engine), sessionmaker[Session[Engine]])
    assert_type(sessionmaker(conn), sessionmaker[Session[Connection]])
    assert_type(sessionmaker(), sessionmaker[Session[Engine | Connection]])
    assert_type(
        sessionmaker(engine, autoflush=False, expire_on_commit=False, info={"a": 1}),
        sessionmaker[Session[Engine]],
    )
    # class_: the factory makes that class; a generic one is solved for the bind
    assert_type(sessionmaker(engine, class_=AppSession), sessionmaker[AppSession])
    assert_type(sessionmaker(class_=AppSession), sessionmaker[AppSession])
    assert_type(sessionmaker(conn, class_=EitherSession), sessionmaker[EitherSession])
    assert_type(sessionmaker(engine, class_=Session), sessionmaker[Session[Engine]])
    assert_type(sessionmaker(conn, class_=AnyBindSession), sessionmaker[AnyBindSession[Connection]])


def calls(engine: Engine, conn: Connection, other: Engine) -> None:
    factory = sessionmaker(engine)
    assert_type(factory(), Session[Engine])
    assert_type(factory(autoflush=False, info={"request": 1}), Session[Engine])
    # another bind per call: the session's type follows it
    assert_type(factory(bind=conn), Session[Connection])
    assert_type(factory(bind=other), Session[Engine])
    on_connection = sessionmaker(conn)
    assert_type(on_connection(), Session[Connection])
    unbound = sessionmaker()
    assert_type(unbound(), Session[Engine | Connection])
    assert_type(unbound(bind=engine), Session[Engine])
    app = sessionmaker(engine, class_=AppSession)
    assert_type(app(), AppSession)
    assert_type(app().tenant(), str)
    assert_type(app(bind=other, expire_on_commit=False), AppSession)
    assert_type(factory.class_, type[Session[Engine]])
    assert_type(app.class_, type[AppSession])
    assert_type(factory.config, SessionConfig)
    assert_type(factory.bind, Engine | Connection | None)


def begin(engine: Engine) -> None:
    factory = sessionmaker(engine)
    with factory.begin() as session:
        assert_type(session, Session[Engine])
    with sessionmaker(engine, class_=AppSession).begin() as app_session:
        assert_type(app_session, AppSession)


def configure(engine: Engine, conn: Connection) -> None:
    unbound = sessionmaker()
    unbound.configure(bind=engine)
    unbound.configure(bind=conn, autoflush=False)
    factory = sessionmaker(engine)
    factory.configure(bind=engine, expire_on_commit=False, info={"b": 2})
    factory.configure(bind=None)
    factory.configure(twophase=True)
    sessionmaker(engine, class_=AppSession).configure(bind=engine)


def passing_factories(factory: sessionmaker[Session[Engine]]) -> Session[Engine]:
    return factory()


def rejected(engine: Engine, conn: Connection) -> None:
    # misspelt and wrong-typed options: to the constructor, the call and configure
    sessionmaker(engine, autoflsh=True)  # type: ignore[call-overload]
    sessionmaker(engine, autoflush="yes")  # type: ignore[call-overload]
    sessionmaker(engine, info=["not", "a", "dict"])  # type: ignore[call-overload]
    sessionmaker("sqlite://")  # type: ignore[call-overload]
    factory = sessionmaker(engine)
    factory(autoflsh=True)  # type: ignore[call-overload]
    factory(expire_on_commit=1)  # type: ignore[call-overload]
    factory.configure(expire_on_comit=False)  # type: ignore[call-overload]
    factory.configure(twophase="no")  # type: ignore[call-overload]
    # the factory's type records its bind: configure() cannot swap an Engine for a
    # Connection, and a call with a Connection does not claim to make a Session[Engine]
    factory.configure(bind=conn)  # type: ignore[call-overload]
    engine_session: Session[Engine] = factory(bind=conn)  # type: ignore[arg-type]
    print(engine_session)
    # invariant: a factory of Session[Engine] is not a factory of either-bind sessions,
    # whose configure() would take a Connection
    either: sessionmaker[Session] = factory  # type: ignore[assignment]
    print(either)
    passing_factories(sessionmaker(conn))  # type: ignore[arg-type]
    # class_ must take the bind given, and be called as Session is
    sessionmaker(conn, class_=AppSession)  # type: ignore[misc]
    sessionmaker(engine, class_=NeedsMore)  # type: ignore[arg-type]
    sessionmaker(engine, class_=int)  # type: ignore[arg-type]
    app = sessionmaker(engine, class_=AppSession)
    app(bind=conn)  # type: ignore[call-overload]
    app.configure(bind=conn)  # type: ignore[call-overload]
    factory.class_ = Session  # type: ignore[misc]  # read-only
    factory.begin(bind=conn)  # type: ignore[call-arg]
