"""``SessionConfig``: the validated, immutable options of a ``Session``.

pydantic does the checking, so that ``Session(engine, autoflush="yes")`` or a misspelt
option fails at once with the option's name, instead of misbehaving later.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeAlias, TypedDict, final

from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError

from typed_session._binds import BindResolver
from typed_session.exc import SessionConfigError

__all__ = ["SessionConfig", "SessionOptions", "refuse_bind_options", "validate_options"]


JoinTransactionMode: TypeAlias = Literal[
    "conditional_savepoint", "create_savepoint", "control_fully", "rollback_only"
]
"""How a session bound to a ``Connection`` already in a transaction joins it (2.x):

* ``"conditional_savepoint"`` (default): ``"create_savepoint"`` if the connection is in a
  SAVEPOINT, else ``"rollback_only"``;
* ``"create_savepoint"``: the session works in a SAVEPOINT of its own; its commit
  releases it, its rollback rolls back to it; the caller's transaction is untouched
  (the test-fixture recipe: wrap each test in one outer transaction, roll it back);
* ``"control_fully"``: the session commits and rolls back the caller's transaction;
* ``"rollback_only"``: the session rolls back the caller's transaction on rollback, and
  leaves it alone on commit and close.
"""


class SessionOptions(TypedDict, total=False):
    """The keyword options of ``Session(...)`` and ``sessionmaker(...)``."""

    autoflush: bool
    expire_on_commit: bool
    twophase: bool
    info: dict[Any, Any] | None
    join_transaction_mode: JoinTransactionMode
    execution_options: dict[str, Any] | None
    binds: Mapping[Any, Engine | Connection] | None
    bind_resolver: BindResolver | None


@final
class SessionConfig(BaseModel):
    """The session options after validation. Frozen: change one by making a new one."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, extra="forbid", strict=True)

    autoflush: StrictBool = True
    expire_on_commit: StrictBool = True
    twophase: StrictBool = False
    info: dict[Any, Any] | None = None
    join_transaction_mode: JoinTransactionMode = "conditional_savepoint"
    execution_options: dict[str, Any] | None = None
    #: classes and tables -> binds; checked by ``BindMap.of`` when a session is made
    binds: Mapping[Any, Any] | None = None
    bind_resolver: Callable[[Any, Any], Any] | None = None

    def as_options(self) -> SessionOptions:
        """The options as keyword arguments: ``Session(bind, **config.as_options())``."""
        return SessionOptions(
            autoflush=self.autoflush,
            expire_on_commit=self.expire_on_commit,
            twophase=self.twophase,
            info=self.info,
            join_transaction_mode=self.join_transaction_mode,
            execution_options=self.execution_options,
            binds=self.binds,
            bind_resolver=self.bind_resolver,
        )


#: options of SQLAlchemy 1.3's Session that are gone for good, and what to do instead
_RETIRED: dict[str, str] = {
    "autocommit": "sessions begin a transaction by themselves when first used, as in "
    "SQLAlchemy 2.x; mark an explicit one with `with session.begin():`",
    "weak_identity_map": "the identity map is always weak-referencing",
    "_enable_transaction_accounting": "transaction accounting is always on",
    "extension": "typed events replace SessionExtension",
    "enable_baked_queries": "there are no baked queries: Core caches compiled statements",
}


def validate_options(
    owner: str, options: dict[str, Any], *, parameters: Sequence[str] = ()
) -> SessionConfig:
    """Validate keyword options into a ``SessionConfig``.

    Args:
        owner: what was being called, for the message (``"Session"``).
        options: the keyword arguments as given.
        parameters: the caller's other keyword parameters (``"bind"``), named in the
            message and offered as suggestions for a misspelt option.

    Raises:
        SessionConfigError: naming each unknown or mistyped option and what it accepts.
    """
    known = [*parameters, *SessionConfig.model_fields]
    unknown = [k for k in options if k not in SessionConfig.model_fields]
    if unknown:
        hints = []
        for k in unknown:
            if k in _RETIRED:
                hints.append(f"{k!r} (retired: {_RETIRED[k]})")
                continue
            close = difflib.get_close_matches(k, known, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise SessionConfigError(
            f"{owner}() got unknown option(s) {', '.join(hints)}; the options are: "
            f"{', '.join(known)}"
        )
    try:
        return SessionConfig(**options)
    except ValidationError as err:
        problems = "; ".join(
            f"option {'.'.join(str(p) for p in e['loc'])!r}: {e['msg']} (got {e.get('input')!r})"
            for e in err.errors()
        )
        raise SessionConfigError(f"{owner}() got a bad option value: {problems}") from None


def refuse_bind_options(owner: str, options: SessionOptions, why: str) -> None:
    """Refuse ``binds=`` and ``bind_resolver=`` for a session that routes by itself.

    Raises:
        ArgumentError: naming the option, with ``why``.
    """
    for name in ("binds", "bind_resolver"):
        if options.get(name) is not None:
            raise ArgumentError(f"{owner}() takes no {name}=: {why}")
