"""``ShardedSession``: one session over several shards of the same tables.

Horizontal partitioning: each shard is a database (an ``Engine`` or a ``Connection``)
holding the same tables, and each row lives on one of them. Three choosers, typed
Protocols you implement, say which:

* a ``ShardChooser`` names the shard a new object is inserted into (asked at each flush
  while the object is pending);
* an ``IdentityChooser`` names the shards ``get(Entity, pk)`` looks in when no
  ``identity_token`` is given (by default: all of them, in order);
* a ``QueryChooser`` names the shards a statement runs on (by default: all of them);
  their results are merged, shard after shard.

The shard's key is the row's **identity token**: ``instance_state(obj).identity_token``
says where an object lives, ``IdentityKey.identity_token`` carries it, and the identity
map keeps rows of one class with the same primary key from several shards side by side.
Updates, deletes and reloads of expired attributes go to the object's own shard.

The session is the plain ``Session`` with four of its seams filled in: the bind of a
mapper's rows (``_bind_for``), the flush (shards chosen first), ``get`` and the
statement runner (``_run``). Everything else, transactions included (one connection and
transaction per shard, two-phase with ``twophase=True``), is the ``Session``'s own.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Protocol, TypeVar, Unpack, final

from sqlalchemy.engine import Connection, Engine, Result
from sqlalchemy.exc import ArgumentError, InvalidRequestError, UnboundExecutionError
from sqlalchemy.sql import Executable

from typed_session import _lifecycle as lifecycle
from typed_session import _loading as loading
from typed_session._config import SessionOptions, refuse_bind_options
from typed_session._loading import ExecutionOptions, ForUpdate, Params
from typed_session._mapping.mapper import Mapper, mapper_of
from typed_session._session import Session
from typed_session._typing import IdentityToken
from typed_session.exc import describe

__all__ = ["IdentityChooser", "QueryChooser", "ShardChooser", "ShardedSession"]

_O = TypeVar("_O")
#: the type of a session's shard keys (``str``, ``int``...): the shards' mapping is invariant
#: in its keys, so ``dict[str, Engine]`` is accepted only through a type variable
_K = TypeVar("_K", bound=Hashable)

#: the execution option that sends a statement to one shard, whatever the query chooser says
SHARD_OPTION = "identity_token"


class ShardChooser(Protocol):
    """The shard a new object is inserted into."""

    def __call__(self, entity: type[Any], instance: Any, /) -> IdentityToken:
        """The identity token (a key of ``shards``) of the shard for ``instance``."""
        ...


class IdentityChooser(Protocol):
    """The shards a row with this primary key may live in, to look in by ``get()``."""

    def __call__(
        self, entity: type[Any], primary_key: tuple[Hashable, ...], /
    ) -> Iterable[IdentityToken]:
        """The identity tokens to try, in order."""
        ...


class QueryChooser(Protocol):
    """The shards a statement runs on."""

    def __call__(self, statement: Executable, /) -> Iterable[IdentityToken]:
        """The identity tokens of the shards to run ``statement`` on, in order."""
        ...


@final
class ShardedSession(Session[Engine | Connection]):
    """A ``Session`` whose rows live on several shards of the same tables.

    Args:
        shards: identity token -> the ``Engine`` or ``Connection`` of that shard.
        shard_chooser: names the shard of each new object.
        identity_chooser: names the shards ``get()`` looks in (default: all).
        query_chooser: names the shards a statement runs on (default: all); a
            statement with the execution option ``identity_token`` runs on that shard.
        **options: the ``Session``'s options, except ``binds`` and ``bind_resolver``.

    Raises:
        ArgumentError: no shards, a shard keyed ``None``, a bind that is neither an
            ``Engine`` nor a ``Connection``, or ``binds`` / ``bind_resolver`` given.
    """

    def __init__(
        self,
        shards: Mapping[_K, Engine | Connection],
        *,
        shard_chooser: ShardChooser,
        identity_chooser: IdentityChooser | None = None,
        query_chooser: QueryChooser | None = None,
        **options: Unpack[SessionOptions],
    ) -> None:
        refuse_bind_options(
            "ShardedSession",
            options,
            "each row's bind is the shard its identity token names. Use a plain Session "
            "with binds= for entities that are not sharded",
        )
        if not shards:
            raise ArgumentError("ShardedSession() needs at least one shard: shards={token: engine}")
        for token, bind in shards.items():
            if token is None:
                raise ArgumentError(
                    "a shard cannot be keyed None (the identity token of an unsharded row); "
                    "key it with a name or a number"
                )
            if not isinstance(bind, Engine | Connection):
                raise ArgumentError(
                    f"the bind of shard {token!r} must be an Engine or a Connection, not "
                    f"{bind!r}; make one with sqlalchemy.create_engine(url)"
                )
        super().__init__(None, **options)
        kept: dict[IdentityToken, Engine | Connection] = dict(shards.items())
        self.shards: Mapping[IdentityToken, Engine | Connection] = MappingProxyType(kept)
        self.shard_chooser = shard_chooser
        self.identity_chooser = identity_chooser
        self.query_chooser = query_chooser

    def __repr__(self) -> str:
        return f"<ShardedSession {self.hash_key} shards={list(self.shards)!r}>"

    def _shard(self, token: IdentityToken, what: str) -> Engine | Connection:
        bind = self.shards.get(token)
        if bind is None:
            raise InvalidRequestError(
                f"No such shard: {token!r} (for {what}); the shards of this session are "
                f"{list(self.shards)!r}. Make the chooser return one of them"
            )
        return bind

    def _tokens(self, chosen: Iterable[IdentityToken], chooser: str) -> list[IdentityToken]:
        tokens = list(chosen)
        if not tokens:
            raise InvalidRequestError(
                f"the {chooser} chose no shard; it must return at least one of "
                f"{list(self.shards)!r}"
            )
        return tokens

    # -- where rows live ----------------------------------------------------------------

    def _bind_for(self, mapper: Mapper[Any], token: IdentityToken = None, /) -> Engine | Connection:
        if token is None:
            raise InvalidRequestError(
                f"a {mapper.class_.__name__} row has no shard (identity token None): an "
                "object added while the flush ran (in a before_flush listener) is given "
                "its shard at the next flush; flush again, or add it before flushing"
            )
        return self._shard(token, f"rows of {mapper.class_.__name__}")

    def get_bind(
        self,
        entity: type[Any] | None = None,
        clause: object | None = None,
        *,
        identity_token: IdentityToken = None,
    ) -> Engine | Connection:
        """The bind of one shard: the one ``identity_token`` names.

        Raises:
            UnboundExecutionError: without ``identity_token`` (a sharded session has no
                single bind for an entity or a statement).
            InvalidRequestError: for a token that names no shard.
        """
        if identity_token is None:
            what = f"{entity.__name__}" if entity is not None else "this statement"
            raise UnboundExecutionError(
                f"Could not locate a bind for {what}: in a ShardedSession every row lives "
                f"on one of the shards {list(self.shards)!r}; name it with "
                "get_bind(..., identity_token=token), or use session.shards[token]. "
                "Relationships of sharded objects are not loaded by the session yet: "
                "query the related rows on their shard, with "
                "select(...).execution_options(identity_token=token)"
            )
        return self._shard(identity_token, "get_bind()")

    def flush(self) -> None:
        """Choose the shard of each pending object, then flush (see ``Session.flush``).

        Raises:
            InvalidRequestError: if the shard chooser names no shard of this session.
        """
        chooser = self.shard_chooser
        for state, obj in self._new.items():
            token = chooser(state.mapper.class_, obj)
            if token not in self.shards:  # the message is made only when it is needed
                self._shard(token, f"new object {describe(obj)}, from the shard chooser")
            if token != state.identity_token:
                lifecycle.to_shard(state, token)
        super().flush()

    # -- reading ------------------------------------------------------------------------

    def get(
        self,
        entity: type[_O],
        ident: object,
        /,
        *,
        populate_existing: bool = False,
        with_for_update: ForUpdate = None,
        identity_token: IdentityToken = None,
    ) -> _O | None:
        """The object with this primary key, on the shard ``identity_token`` names.

        Without a token, the shards the identity chooser names are tried in order: the
        identity map of each first (no SQL), then a SELECT on each until one has the row.
        """
        if identity_token is not None:
            self._shard(identity_token, f"get({entity.__name__}, {ident!r})")
            return super().get(
                entity,
                ident,
                populate_existing=populate_existing,
                with_for_update=with_for_update,
                identity_token=identity_token,
            )
        mapper = mapper_of(entity)
        identity = mapper.normalize_identity(ident)
        key = identity if isinstance(identity, tuple) else (identity,)
        chooser = self.identity_chooser
        chosen = self.shards if chooser is None else chooser(entity, key)
        tokens = self._tokens(chosen, "identity chooser")
        if not (populate_existing or with_for_update):
            for token in tokens:
                state = self._identity_map.lookup(mapper, identity, token)
                if state is not None and not lifecycle.fully_expired(state):
                    return state.obj()
        for token in tokens:
            found = self.get(
                entity,
                identity,
                populate_existing=populate_existing,
                with_for_update=with_for_update,
                identity_token=token,
            )
            if found is not None:
                return found
        return None

    def _run(
        self, statement: Executable, params: Params, execution_options: ExecutionOptions
    ) -> Result[*tuple[Any, ...]]:
        """Autoflush, then run the statement on each chosen shard; merge the results."""
        self._autoflush()
        one = (execution_options or {}).get(SHARD_OPTION)
        if one is None:
            one = statement.get_execution_options().get(SHARD_OPTION)
        if one is not None:
            tokens = [one]
        else:
            chooser = self.query_chooser
            tokens = self._tokens(
                self.shards if chooser is None else chooser(statement), "query chooser"
            )
        imap = self._identity_map
        results = [
            loading.execute(
                self.connection(bind=self._shard(token, "a statement")),
                imap,
                statement,
                params,
                execution_options,
                token=token,
            )
            for token in tokens
        ]
        first = results[0]
        return first if len(results) == 1 else first.merge(*results[1:])
