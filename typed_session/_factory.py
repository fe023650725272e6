"""``sessionmaker[SessionT]``: a configured factory of sessions.

The factory holds a bind, a session class and a frozen ``SessionConfig``; calling it makes
a session with them, and ``configure()`` replaces them for the sessions made afterwards.
It knows the session only through its public constructor, so every session it makes
goes through ``Session.__init__``'s own validation; everything a factory adds to each
session it makes happens in one place, ``sessionmaker._new_session``.

The overloads below make the checkers compute the session type: ``sessionmaker(engine)``
makes ``Session[Engine]``, ``sessionmaker(conn, class_=MySession)`` checks that
``MySession`` accepts a ``Connection``. Their compromises are written beside them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TypeVar, cast, final, overload

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError
from typing_extensions import TypeVar as TypeVarDefault
from typing_extensions import Unpack

from typed_session._config import SessionConfig, SessionOptions, validate_options
from typed_session._factory_base import FactoryBase
from typed_session._session import Session
from typed_session._typing import MISSING, Missing

__all__ = ["SessionClass", "SessionT", "overridden", "reconfigured", "sessionmaker"]

#: the type of the sessions a factory makes. Invariant: ``configure(bind=...)`` writes the
#: bind, so a ``sessionmaker[Session[Engine]]`` must not pass for a ``sessionmaker[Session]``
#: (which would accept a ``Connection``)
SessionT = TypeVarDefault("SessionT", bound=Session, default=Session)
_S = TypeVar("_S", bound=Session)
_SE = TypeVar("_SE", bound=Session[Engine])
_SC = TypeVar("_SC", bound=Session[Connection])
_B = TypeVar("_B", bound=Engine | Connection)
_B2 = TypeVar("_B2", bound=Engine | Connection)
_B_contra = TypeVar("_B_contra", bound=Engine | Connection | None, contravariant=True)
_S_co = TypeVar("_S_co", bound=Session, covariant=True)

#: the keyword parameters of a call besides the session options, named in the messages
_CALL_PARAMETERS = ("bind",)


class SessionClass(Protocol[_B_contra, _S_co]):
    """What ``class_=`` accepts: ``Session`` or a subclass, called as ``Session`` is.

    A protocol rather than ``type[_S]`` so that the checkers match the class's
    constructor against the bind: a subclass of ``Session[Engine]`` given a
    ``Connection`` is a type error. The compromise: a plain function with this signature
    passes the checkers too; ``sessionmaker()`` refuses it at run time.
    """

    def __call__(self, bind: _B_contra, /, **options: Unpack[SessionOptions]) -> _S_co:
        """Make a session on ``bind`` with ``options``."""
        ...


@final
class sessionmaker(FactoryBase[SessionT, Engine | Connection]):  # SQLAlchemy's name, lower case
    """A factory of sessions that share a bind, a session class and options.

    ``factory = sessionmaker(engine, autoflush=False)``, then ``factory()`` for a
    session, or ``with factory.begin() as session:`` for a session in a transaction.

    Args:
        bind: the ``Engine`` or ``Connection`` of every session made (``None``: set it
            later with ``configure(bind=...)`` or per call).
        class_: ``Session`` (the default) or a subclass of it; made as is, so
            ``type(factory()) is class_``.
        **options: the ``Session`` options (``SessionOptions``), validated now.

    Raises:
        SessionConfigError: an unknown option or a value of the wrong type, named.
        ArgumentError: a bind that is neither an ``Engine`` nor a ``Connection``, or a
            ``class_`` that is not a ``Session`` class.
    """

    # No class_: the sessions are Session[type of the bind].
    factory_name = "sessionmaker"

    @overload
    def __init__(
        self: sessionmaker[Session[_B]], bind: _B, **options: Unpack[SessionOptions]
    ) -> None: ...
    @overload
    def __init__(
        self: sessionmaker[Session], bind: None = None, **options: Unpack[SessionOptions]
    ) -> None: ...
    # class_: its constructor must take the bind (SessionClass); a generic subclass is
    # solved for it (class_=MySession with an Engine gives MySession[Engine]).
    @overload
    def __init__(
        self: sessionmaker[_S],
        bind: _B,
        *,
        class_: SessionClass[_B, _S],
        **options: Unpack[SessionOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: sessionmaker[_S],
        bind: None = None,
        *,
        class_: SessionClass[None, _S],
        **options: Unpack[SessionOptions],
    ) -> None: ...
    def __init__(
        self,
        bind: Engine | Connection | None = None,
        *,
        class_: object = Session,
        **options: Unpack[SessionOptions],
    ) -> None:
        if not (isinstance(class_, type) and issubclass(class_, Session)):
            raise ArgumentError(
                f"sessionmaker() class_ must be Session or a subclass of it, not "
                f"{class_!r}; to run code on every new session, subclass Session and "
                "pass the subclass"
            )
        # the overloads tie class_ to SessionT; this signature cannot say so
        self._set_up(cast("type[SessionT]", class_), _checked_bind("sessionmaker", bind), options)

    # -- making sessions --------------------------------------------------------------------

    # The factory's bind: a session of the factory's type.
    @overload
    def __call__(self, **overrides: Unpack[SessionOptions]) -> SessionT: ...
    # Another bind, on a factory of plain Session: Session of that bind's type.
    @overload
    def __call__(
        self: sessionmaker[Session[_B]], *, bind: _B2, **overrides: Unpack[SessionOptions]
    ) -> Session[_B2]: ...
    # Another bind, on a factory of a subclass: only a bind the subclass was written
    # for. The compromise: pyright refuses a per-call bind for a subclass of
    # Session[Engine | Connection] (an overload for it would also accept a Connection for
    # a subclass of Session[Engine]: covariance); mypy, lenient with the bound of a
    # self-type, accepts it, soundly. Either way a factory made with that bind works.
    @overload
    def __call__(
        self: sessionmaker[_SE], *, bind: Engine, **overrides: Unpack[SessionOptions]
    ) -> _SE: ...
    @overload
    def __call__(
        self: sessionmaker[_SC], *, bind: Connection, **overrides: Unpack[SessionOptions]
    ) -> _SC: ...
    def __call__(
        self,
        *,
        bind: Engine | Connection | Missing | None = MISSING,
        **overrides: Unpack[SessionOptions],
    ) -> Session:
        """Make a session with the factory's bind and options, overriding any of them.

        ``info`` is merged: the call's entries update a copy of the factory's; every
        session has a dictionary of its own.

        Raises:
            SessionConfigError: an unknown option or a value of the wrong type, named.
            ArgumentError: a bind that is neither an ``Engine`` nor a ``Connection``.
        """
        bind = self._bind if bind is MISSING else _checked_bind("sessionmaker.__call__", bind)
        config = overridden(self._config, "sessionmaker.__call__", overrides)
        return self._new_session(bind, config)

    def _new_session(self, bind: Engine | Connection | None, config: SessionConfig) -> SessionT:
        """Make one session: the single place where the factory adds to what it makes."""
        session = self._class(bind, **config.as_options())
        session._listen_below(self.events)
        return session

    def begin(self) -> AbstractContextManager[SessionT]:
        """Make a session and begin its transaction: ``with factory.begin() as session:``.

        At the end of the block the transaction commits (or rolls back if the block
        raised) and the session is closed.
        """
        return _in_transaction(self)

    # The overloads of configure() follow those of __call__, and for the same reasons.
    @overload
    def configure(self, **options: Unpack[SessionOptions]) -> None: ...
    @overload
    def configure(
        self: sessionmaker[Session[_B]], *, bind: _B | None, **options: Unpack[SessionOptions]
    ) -> None: ...
    @overload
    def configure(
        self: sessionmaker[_SE], *, bind: Engine | None, **options: Unpack[SessionOptions]
    ) -> None: ...
    @overload
    def configure(
        self: sessionmaker[_SC], *, bind: Connection | None, **options: Unpack[SessionOptions]
    ) -> None: ...
    def configure(
        self,
        *,
        bind: Engine | Connection | Missing | None = MISSING,
        **options: Unpack[SessionOptions],
    ) -> None:
        """Change the bind or options of the sessions made from now on.

        Sessions made before keep theirs. The options given replace the factory's
        (``info`` too: it is replaced, not merged); the others stay.

        Raises:
            SessionConfigError: an unknown option or a value of the wrong type, named;
                the factory is then left as it was.
            ArgumentError: a bind that is neither an ``Engine`` nor a ``Connection``.
        """
        new_bind = self._bind if bind is MISSING else _checked_bind("sessionmaker.configure", bind)
        self._config = reconfigured(self._config, "sessionmaker.configure", options)
        self._bind = new_bind


def overridden(config: SessionConfig, owner: str, overrides: SessionOptions) -> SessionConfig:
    """A factory's config with one call's overrides validated and laid over it.

    ``info`` is merged: the call's entries update a copy of the factory's.
    """
    if not overrides:
        return config
    given = validate_options(owner, dict(overrides), parameters=_CALL_PARAMETERS)
    update: dict[str, object] = {k: getattr(given, k) for k in overrides if k != "info"}
    if given.info is not None:  # None adds nothing to the factory's
        update["info"] = {**(config.info or {}), **given.info}
    return config.model_copy(update=update)


def reconfigured(config: SessionConfig, owner: str, options: SessionOptions) -> SessionConfig:
    """A factory's config with ``configure()``'s options replacing its own (validated)."""
    return validate_options(owner, {**dict(config), **options}, parameters=_CALL_PARAMETERS)


@contextmanager
def _in_transaction(factory: sessionmaker[_S]) -> Iterator[_S]:
    with factory() as session, session.begin():
        yield session


def _checked_bind(owner: str, bind: object) -> Engine | Connection | None:
    if bind is None or isinstance(bind, Engine | Connection):
        return bind
    raise ArgumentError(
        f"{owner}() bind must be an Engine or a Connection, not {bind!r}; make one with "
        "sqlalchemy.create_engine(url)"
    )
