"""Identity: ``IdentityKey[T]``, the value users see, and ``IdentityMap``, the session's index.

The map keeps one state per row per session. Inside, it is a dictionary per mapper keyed
by the bare primary-key value (a tuple only for composite keys): building an
``IdentityKey`` on every lookup would cost ~30x more (``../shared/bench/FLOORS.md``).
``IdentityKey`` objects are made only when a user asks for them.

Objects are referenced weakly: an entry whose object has been garbage-collected is
treated as absent at once and swept out of the dictionaries in batches, which keeps the
per-row cost at a plain ``weakref.ref`` (no callback, no reference cycle). Modified
objects are held strongly by their state until they are flushed.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from typed_session._mapping.mapper import mapper_of
from typed_session._typing import Identity, IdentityToken

if TYPE_CHECKING:
    from typed_session._mapping.mapper import Mapper
    from typed_session._state import InstanceState, StateOwner

__all__ = ["IdentityKey", "IdentityMap"]

_O = TypeVar("_O")
_O_co = TypeVar("_O_co", covariant=True)

_SWEEP_MIN = 1024


@final
@dataclass(frozen=True, slots=True)
class IdentityKey(Generic[_O_co]):
    """The identity of one row as an entity: class, primary-key values, identity token.

    Attributes:
        entity: the entity class.
        primary_key: the primary-key values, in the table's primary-key order.
        identity_token: which shard or database the row lives in (``None``: the only one).
    """

    entity: type[_O_co]
    primary_key: tuple[Hashable, ...]
    identity_token: IdentityToken = None


@final
class IdentityMap:
    """One state per identity for a session; objects weakly referenced.

    Read it like a mapping from ``IdentityKey`` to object: ``key in imap``,
    ``imap.get(key)``, ``len(imap)``, iteration over keys, ``imap.values()``.
    """

    __slots__ = (
        "__weakref__",
        "_count",
        "_maps",
        "_owner",
        "_sweep_at",
        "default_tables",
        "modified",
        "transaction_begun",
    )

    def __init__(self, owner: StateOwner | None = None) -> None:
        #: token ``None`` -> mapper -> internal identity -> state
        #: mapper -> identity -> state, for the default identity token (the hot path's)
        self.default_tables: dict[Mapper[Any], dict[Identity, InstanceState[Any]]] = {}
        self._maps: dict[IdentityToken, dict[Mapper[Any], dict[Identity, InstanceState[Any]]]] = {
            None: self.default_tables
        }
        #: states written to since their last flush (a dict: ordered, O(1) removal)
        self.modified: dict[InstanceState[Any], None] = {}
        #: held weakly: the owner holds this map (through the session's objects)
        self._owner = None if owner is None else weakref.ref(owner)
        self._count = 0
        self._sweep_at = _SWEEP_MIN
        #: whether the owning session has a transaction: the first change to a persistent
        #: object begins one (autobegin) when it has not, and this check costs nothing
        self.transaction_begun: bool = False

    @property
    def owner(self) -> StateOwner | None:
        """The session, as its states see it (check ``owner.session`` for a live one)."""
        ref = self._owner
        return None if ref is None else ref()

    # -- internal, by state ---------------------------------------------------------------

    def table_for(
        self, mapper: Mapper[Any], token: IdentityToken = None
    ) -> dict[Identity, InstanceState[Any]]:
        """The identity -> state dictionary of one mapper (and token), created on demand."""
        by_mapper = self._maps.get(token)
        if by_mapper is None:
            by_mapper = self._maps[token] = {}
        table = by_mapper.get(mapper)
        if table is None:
            table = by_mapper[mapper] = {}
        return table

    def lookup(
        self, mapper: Mapper[_O], identity: Identity, token: IdentityToken = None
    ) -> InstanceState[_O] | None:
        """The live state for an identity, or ``None``."""
        by_mapper = self._maps.get(token)
        if by_mapper is None:
            return None
        table = by_mapper.get(mapper)
        if table is None:
            return None
        state = table.get(identity)
        if state is None or state.obj() is None:
            return None
        return state

    def add(self, state: InstanceState[Any]) -> InstanceState[Any] | None:
        """Index a state by its identity; return the live state already there, if another.

        Indexing is all this does: attaching the state to the map is a lifecycle move,
        made by ``_lifecycle.py``.
        """
        table = self.table_for(state.mapper, state.identity_token)
        existing = table.get(state.identity)
        if existing is not None and existing is not state and existing.obj() is not None:
            return existing
        table[state.identity] = state
        self.note_added(1)
        return None

    def replace(self, state: InstanceState[Any]) -> InstanceState[Any] | None:
        """Index a state by its identity, displacing whatever held it; return the displaced.

        The displaced state is only unindexed: detaching it is a lifecycle move.
        """
        table = self.table_for(state.mapper, state.identity_token)
        existing = table.get(state.identity)
        table[state.identity] = state
        if existing is None:
            self.note_added(1)
            return None
        if existing is state or existing.obj() is None:
            return None
        self.modified.pop(existing, None)
        return existing

    def holds(self, state: InstanceState[Any]) -> bool:
        """Whether ``state`` is the one indexed under its identity."""
        by_mapper = self._maps.get(state.identity_token)
        table = None if by_mapper is None else by_mapper.get(state.mapper)
        return table is not None and table.get(state.identity) is state

    def note_added(self, n: int) -> None:
        """Count entries added in bulk by the loader; sweep dead ones now and then."""
        self._count += n
        if self._count >= self._sweep_at:
            self.sweep()

    def discard(self, state: InstanceState[Any], identity: Identity | None = None) -> None:
        """Remove a state from the index if it is the one indexed under its identity.

        Args:
            state: the state.
            identity: the identity it is indexed under, when that is no longer
                ``state.identity`` (a primary key that has just changed).
        """
        ident = state.identity if identity is None else identity
        by_mapper = self._maps.get(state.identity_token)
        if by_mapper is not None:
            table = by_mapper.get(state.mapper)
            if table is not None and table.get(ident) is state:
                del table[ident]
                self._count -= 1
        self.modified.pop(state, None)

    def sweep(self) -> None:
        """Drop the entries whose objects have been garbage-collected."""
        count = 0
        for by_mapper in self._maps.values():
            for table in by_mapper.values():
                dead = [ident for ident, st in table.items() if st.obj() is None]
                for ident in dead:
                    del table[ident]
                count += len(table)
        self._count = count
        self._sweep_at = max(_SWEEP_MIN, 2 * count)

    def all_states(self) -> list[InstanceState[Any]]:
        """Every state whose object is alive."""
        return [
            st
            for by_mapper in self._maps.values()
            for table in by_mapper.values()
            for st in table.values()
            if st.obj() is not None
        ]

    def clear(self) -> None:
        """Forget every entry."""
        self.default_tables.clear()
        self._maps = {None: self.default_tables}
        self.modified.clear()
        self._count = 0
        self._sweep_at = _SWEEP_MIN

    # -- public, mapping-like --------------------------------------------------------------

    def _state_for_key(self, key: IdentityKey[_O]) -> InstanceState[_O] | None:
        mapper = mapper_of(key.entity)
        ident = key.primary_key[0] if mapper.single_pk else tuple(key.primary_key)
        return self.lookup(mapper, ident, key.identity_token)

    def get(self, key: IdentityKey[_O]) -> _O | None:
        """The object with this identity in the session, or ``None``."""
        state = self._state_for_key(key)
        return None if state is None else state.obj()

    def __getitem__(self, key: IdentityKey[_O]) -> _O:
        obj = self.get(key)
        if obj is None:
            raise KeyError(key)
        return obj

    def __contains__(self, key: object) -> bool:
        return isinstance(key, IdentityKey) and self._state_for_key(key) is not None

    def __len__(self) -> int:
        return len(self.all_states())

    def __iter__(self) -> Iterator[IdentityKey[object]]:
        return iter(self.keys())

    def keys(self) -> list[IdentityKey[object]]:
        """The identity keys of every live object."""
        return [k for st in self.all_states() if (k := st.key) is not None]

    def values(self) -> list[object]:
        """Every live object in the map."""
        return [o for st in self.all_states() if (o := st.obj()) is not None]

    def __repr__(self) -> str:
        return f"<IdentityMap of {len(self)} object(s)>"
