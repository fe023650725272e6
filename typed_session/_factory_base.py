"""What ``sessionmaker`` and ``async_sessionmaker`` both are: a class, a bind, options, hooks.

The two factories differ in the sessions they make and how (sync or awaited); what they
hold and show is the same, and lives here once.
"""

from __future__ import annotations

from typing import ClassVar, Generic, TypeVar

from typed_session._config import SessionConfig, SessionOptions, validate_options
from typed_session._events import SessionEvents, session_events

__all__ = ["FactoryBase"]

_SessionT = TypeVar("_SessionT")
_BindT = TypeVar("_BindT")

#: the keyword parameters besides the session options, named in the messages
FACTORY_PARAMETERS = ("bind", "class_")


class FactoryBase(Generic[_SessionT, _BindT]):
    """The state of a session factory, and its read-only views."""

    #: the factory's name in messages and ``repr``
    factory_name: ClassVar[str]

    _class: type[_SessionT]
    _bind: _BindT | None
    _config: SessionConfig
    #: hooks whose listeners fire for every session this factory makes (after the
    #: global ``session_events``' and before each session's own)
    events: SessionEvents

    def _set_up(
        self, class_: type[_SessionT], bind: _BindT | None, options: SessionOptions
    ) -> None:
        """Hold the class, the bind and the validated options; make the hooks.

        Raises:
            SessionConfigError: an unknown option or a value of the wrong type, named.
        """
        self._class = class_
        self._bind = bind
        self._config = validate_options(
            self.factory_name, dict(options), parameters=FACTORY_PARAMETERS
        )
        self.events = SessionEvents(session_events)

    @property
    def class_(self) -> type[_SessionT]:
        """The class of the sessions made: the session class or the subclass given."""
        return self._class

    @property
    def bind(self) -> _BindT | None:
        """The bind of the sessions made, unless a call gives another."""
        return self._bind

    @property
    def config(self) -> SessionConfig:
        """The options of the sessions made (frozen; ``configure()`` replaces it)."""
        return self._config

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self._config)
        name = self._class.__name__
        return f"{self.factory_name}(class_={name!r}, bind={self._bind!r}, {options})"
