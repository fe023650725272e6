"""``async_sessionmaker[AsyncSessionT]``: ``sessionmaker`` for ``AsyncSession``.

The same typed, validated options as ``sessionmaker`` (``SessionConfig``, validated once
when the factory is made, a call's overrides laid over it with ``info`` merged, through
``factory.overridden`` / ``factory.reconfigured``), the same events level, and the same
shape: ``factory()``, ``factory.configure(...)``, ``async with factory.begin() as s:``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, TypeVar, cast, final, overload

from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from typing_extensions import TypeVar as TypeVarDefault
from typing_extensions import Unpack

from typed_session._async_session import AsyncSession
from typed_session._config import SessionOptions
from typed_session._factory import overridden, reconfigured
from typed_session._factory_base import FactoryBase
from typed_session._typing import MISSING, Missing

__all__ = ["AsyncSessionClass", "AsyncSessionT", "async_sessionmaker"]

#: the type of the sessions a factory makes (invariant, as ``sessionmaker``'s)
AsyncSessionT = TypeVarDefault("AsyncSessionT", bound=AsyncSession, default=AsyncSession)
_S = TypeVar("_S", bound=AsyncSession)
_B = TypeVar("_B", bound=AsyncEngine | AsyncConnection)
_B2 = TypeVar("_B2", bound=AsyncEngine | AsyncConnection)
_B_contra = TypeVar("_B_contra", bound=AsyncEngine | AsyncConnection | None, contravariant=True)
_S_co = TypeVar("_S_co", bound=AsyncSession, covariant=True)


class AsyncSessionClass(Protocol[_B_contra, _S_co]):
    """What ``class_=`` accepts: ``AsyncSession`` or a subclass, called as it is."""

    def __call__(self, bind: _B_contra, /, **options: Unpack[SessionOptions]) -> _S_co:
        """Make a session on ``bind`` with ``options``."""
        ...


@final
class async_sessionmaker(FactoryBase[AsyncSessionT, AsyncEngine | AsyncConnection]):
    """A factory of ``AsyncSession`` objects that share a bind, a class and options.

    ``factory = async_sessionmaker(async_engine, expire_on_commit=False)``, then
    ``factory()`` for a session, or ``async with factory.begin() as session:``.

    Args:
        bind: the ``AsyncEngine`` or ``AsyncConnection`` of every session made.
        class_: ``AsyncSession`` (the default) or a subclass of it.
        **options: the ``Session`` options (``SessionOptions``), validated now.

    Raises:
        SessionConfigError: an unknown option or a value of the wrong type, named.
        ArgumentError: a bind that is not an ``AsyncEngine`` or ``AsyncConnection``, or
            a ``class_`` that is not an ``AsyncSession`` class.
    """

    factory_name = "async_sessionmaker"

    @overload
    def __init__(
        self: async_sessionmaker[AsyncSession[_B]], bind: _B, **options: Unpack[SessionOptions]
    ) -> None: ...
    @overload
    def __init__(
        self: async_sessionmaker[AsyncSession],
        bind: None = None,
        **options: Unpack[SessionOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: async_sessionmaker[_S],
        bind: _B,
        *,
        class_: AsyncSessionClass[_B, _S],
        **options: Unpack[SessionOptions],
    ) -> None: ...
    def __init__(
        self,
        bind: AsyncEngine | AsyncConnection | None = None,
        *,
        class_: object = AsyncSession,
        **options: Unpack[SessionOptions],
    ) -> None:
        if not (isinstance(class_, type) and issubclass(class_, AsyncSession)):
            raise ArgumentError(
                f"async_sessionmaker() class_ must be AsyncSession or a subclass of it, "
                f"not {class_!r}"
            )
        # the overloads tie class_ to AsyncSessionT; this signature cannot say so
        bind_checked = _checked_bind("async_sessionmaker", bind)
        self._set_up(cast("type[AsyncSessionT]", class_), bind_checked, options)

    @overload
    def __call__(self, **overrides: Unpack[SessionOptions]) -> AsyncSessionT: ...
    @overload
    def __call__(
        self: async_sessionmaker[AsyncSession[_B]],
        *,
        bind: _B2,
        **overrides: Unpack[SessionOptions],
    ) -> AsyncSession[_B2]: ...
    def __call__(
        self,
        *,
        bind: AsyncEngine | AsyncConnection | Missing | None = MISSING,
        **overrides: Unpack[SessionOptions],
    ) -> AsyncSession:
        """Make a session with the factory's bind and options, overriding any of them.

        Raises:
            SessionConfigError: an unknown option or a value of the wrong type, named.
            ArgumentError: a bind that is not an ``AsyncEngine`` or ``AsyncConnection``.
        """
        owner = "async_sessionmaker.__call__"
        bind = self._bind if bind is MISSING else _checked_bind(owner, bind)
        config = overridden(self._config, "async_sessionmaker.__call__", overrides)
        session = self._class(bind, **config.as_options())
        session.sync_session._listen_below(self.events)
        return session

    def begin(self) -> AbstractAsyncContextManager[AsyncSessionT]:
        """A session in a transaction: ``async with factory.begin() as session:``.

        At the end of the block the transaction commits (or rolls back if the block
        raised) and the session is closed.
        """
        return _in_transaction(self)

    def configure(
        self,
        *,
        bind: AsyncEngine | AsyncConnection | Missing | None = MISSING,
        **options: Unpack[SessionOptions],
    ) -> None:
        """Change the bind or options of the sessions made from now on.

        Raises:
            SessionConfigError: an unknown option or a value of the wrong type, named;
                the factory is then left as it was.
        """
        new_bind = (
            self._bind if bind is MISSING else _checked_bind("async_sessionmaker.configure", bind)
        )
        self._config = reconfigured(self._config, "async_sessionmaker.configure", options)
        self._bind = new_bind


@asynccontextmanager
async def _in_transaction(factory: async_sessionmaker[_S]) -> AsyncIterator[_S]:
    async with factory() as session, session.begin():
        yield session


def _checked_bind(owner: str, bind: object) -> AsyncEngine | AsyncConnection | None:
    if bind is None or isinstance(bind, AsyncEngine | AsyncConnection):
        return bind
    raise ArgumentError(
        f"{owner}() bind must be an AsyncEngine or an AsyncConnection, not {bind!r}; make "
        "one with sqlalchemy.ext.asyncio.create_async_engine(url) (for a sync Engine, "
        "use typed_session.sessionmaker)"
    )
