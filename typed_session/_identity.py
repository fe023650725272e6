"""Identity: ``IdentityKey[T]``, the value users see, and ``IdentityMap``, the session's index.

The map keeps one state per row per session. Inside, it is a dictionary per mapper keyed
by the bare primary-key value (a tuple only for composite keys): building an
``IdentityKey`` on every lookup would cost ~30x more (``../shared/bench/FLOORS.md``).
``IdentityKey`` objects are made only when a user asks for them.

Objects are referenced weakly: an entry whose object has been garbage-collected is
treated as absent at once and swept out of the dictionaries in batches (no callback, no
reference cycle). Modified objects are held strongly by their state until they are
flushed.

An entry is the object's state (a weak reference itself) or, for an object loaded and
not touched since, a plain ``weakref.ref``: a *bare* entry (issue 17). Such an object's
``__dict__`` holds the map's ``mark`` (an int) where a state would be, so the dict holds
atomic values only and the cyclic collector does not track it: two tracked objects per
loaded row (the object, its reference) and no Python frame to build a record. The state
is made the first time anything asks for it (``state_at``); every map method that hands
out states makes them, and the bare entries are otherwise read as their objects.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import count
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, final

from typed_session._mapping.mapper import mapper_of
from typed_session._typing import Identity, IdentityToken

if TYPE_CHECKING:
    from typed_session._mapping.mapper import Mapper
    from typed_session._state import InstanceState, StateOwner

__all__ = ["BARE", "MARKED", "Entry", "IdentityKey", "IdentityMap"]

_O = TypeVar("_O")
_O_co = TypeVar("_O_co", covariant=True)

_SWEEP_MIN = 1024

Entry = weakref.ref[Any]
"""What a map table holds per identity: the object's state, or a bare weak reference."""

#: the class of a bare entry (a state is a subclass): ``entry.__class__ is BARE``
BARE: Final = weakref.ref

_MARKS = count(1)
#: the maps that have marked objects, by mark (an object may outlive its session's map)
#: (a plain dict of weak references with a callback: read in C, where a
#: ``WeakValueDictionary`` reads in Python, once per loaded object that gets a state)
MARKED: dict[int, weakref.ref[IdentityMap]] = {}


def _forget_mark(mark: int, _ref: object) -> None:
    """A marked map is gone: its mark leads nowhere (its objects are detached)."""
    MARKED.pop(mark, None)


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
        "_mark",
        "_owner",
        "_sweep_at",
        "default_tables",
        "modified",
        "transaction_begun",
    )

    def __init__(self, owner: StateOwner | None = None) -> None:
        #: token ``None`` -> mapper -> internal identity -> state
        #: mapper -> identity -> state, for the default identity token (the hot path's)
        self.default_tables: dict[Mapper[Any], dict[Identity, Entry]] = {}
        self._maps: dict[IdentityToken, dict[Mapper[Any], dict[Identity, Entry]]] = {
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
        self._mark = 0

    @property
    def mark(self) -> int:
        """The int the loader leaves in a bare-entry object's ``__dict__`` (made on first use)."""
        mark = self._mark
        if not mark:
            mark = self._mark = next(_MARKS)
            MARKED[mark] = weakref.ref(self, partial(_forget_mark, mark))
        return mark

    @property
    def owner(self) -> StateOwner | None:
        """The session, as its states see it (check ``owner.session`` for a live one)."""
        ref = self._owner
        return None if ref is None else ref()

    # -- internal, by state ---------------------------------------------------------------

    def table_for(self, mapper: Mapper[Any], token: IdentityToken = None) -> dict[Identity, Entry]:
        """The identity -> entry dictionary of one mapper (and token), created on demand."""
        by_mapper = self._maps.get(token)
        if by_mapper is None:
            by_mapper = self._maps[token] = {}
        table = by_mapper.get(mapper)
        if table is None:
            table = by_mapper[mapper] = {}
        return table

    def state_at(
        self,
        table: dict[Identity, Entry],
        identity: Identity,
        entry: Entry,
        mapper: Mapper[_O],
        token: IdentityToken = None,
    ) -> InstanceState[_O] | None:
        """The state of a table's entry, made now for a bare one; ``None`` if its object is gone.

        A bare entry's object is a persistent, unchanged row of this map: its state is
        born so, takes the entry's place and replaces the mark in the object's dict.
        """
        obj = entry()
        if obj is None:
            return None
        if entry.__class__ is not BARE:
            return entry  # type: ignore[return-value]  # a state (the only other kind)
        state = table[identity] = _states.new_instance_state(mapper, obj, identity, token, self)
        return state

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
        entry = table.get(identity)
        return None if entry is None else self.state_at(table, identity, entry, mapper, token)

    def add(self, state: InstanceState[Any]) -> InstanceState[Any] | None:
        """Index a state by its identity; return the live state already there, if another.

        Indexing is all this does: attaching the state to the map is a lifecycle move,
        made by ``_lifecycle.py``.
        """
        mapper, ident, token = state.mapper, state.identity, state.identity_token
        table = self.table_for(mapper, token)
        existing = table.get(ident)
        if existing is not None and existing is not state:
            held = self.state_at(table, ident, existing, mapper, token)
            if held is not None:
                return held
        table[ident] = state
        self.note_added(1)
        return None

    def replace(self, state: InstanceState[Any]) -> InstanceState[Any] | None:
        """Index a state by its identity, displacing whatever held it; return the displaced.

        The displaced state is only unindexed: detaching it is a lifecycle move.
        """
        mapper, ident, token = state.mapper, state.identity, state.identity_token
        table = self.table_for(mapper, token)
        existing = table.get(ident)
        if existing is None:
            table[ident] = state
            self.note_added(1)
            return None
        if existing is state:
            return None
        displaced = self.state_at(table, ident, existing, mapper, token)
        table[ident] = state
        if displaced is not None:
            self.modified.pop(displaced, None)
        return displaced

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
                dead = [ident for ident, entry in table.items() if entry() is None]
                for ident in dead:
                    del table[ident]
                count += len(table)
        self._count = count
        self._sweep_at = max(_SWEEP_MIN, 2 * count)

    def all_states(self) -> list[InstanceState[Any]]:
        """Every state whose object is alive, made now for the bare entries."""
        out: list[InstanceState[Any]] = []
        append = out.append
        for token, by_mapper in self._maps.items():
            for mapper, table in by_mapper.items():
                bare: list[tuple[Identity, Entry]] = []
                for ident, entry in table.items():
                    if entry.__class__ is BARE:
                        bare.append((ident, entry))  # made below: making one writes table
                    elif entry() is not None:
                        append(entry)  # type: ignore[arg-type]  # not bare: a state
                for ident, entry in bare:
                    state = self.state_at(table, ident, entry, mapper, token)
                    if state is not None:
                        append(state)
        return out

    def made_states(self) -> list[InstanceState[Any]]:
        """The states made so far whose objects are alive (bare entries left out).

        For what only concerns objects that were written to, expired, or asked about:
        a bare entry's object is a clean persistent row, and forgetting it is enough.
        """
        return [
            entry  # type: ignore[misc]  # not bare: a state
            for by_mapper in self._maps.values()
            for table in by_mapper.values()
            for entry in table.values()
            if entry.__class__ is not BARE and entry() is not None
        ]

    def clear(self) -> None:
        """Forget every entry."""
        self.default_tables.clear()
        self._maps = {None: self.default_tables}
        self.modified.clear()
        self._count = 0
        self._sweep_at = _SWEEP_MIN

    def _live(self) -> Iterator[tuple[Mapper[Any], Identity, IdentityToken, object]]:
        """Every live entry as (mapper, identity, token, object), bare ones left bare."""
        for token, by_mapper in self._maps.items():
            for mapper, table in by_mapper.items():
                for ident, entry in table.items():
                    obj = entry()
                    if obj is not None:
                        yield mapper, ident, token, obj

    # -- public, mapping-like (reads objects; makes no state) -----------------------------

    def _object_for_key(self, key: IdentityKey[_O]) -> _O | None:
        mapper = mapper_of(key.entity)
        ident = key.primary_key[0] if mapper.single_pk else tuple(key.primary_key)
        by_mapper = self._maps.get(key.identity_token)
        table = None if by_mapper is None else by_mapper.get(mapper)
        entry = None if table is None else table.get(ident)
        return None if entry is None else entry()

    def get(self, key: IdentityKey[_O]) -> _O | None:
        """The object with this identity in the session, or ``None``."""
        return self._object_for_key(key)

    def __getitem__(self, key: IdentityKey[_O]) -> _O:
        obj = self.get(key)
        if obj is None:
            raise KeyError(key)
        return obj

    def __contains__(self, key: object) -> bool:
        return isinstance(key, IdentityKey) and self._object_for_key(key) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self._live())

    def __iter__(self) -> Iterator[IdentityKey[object]]:
        return iter(self.keys())

    def keys(self) -> list[IdentityKey[object]]:
        """The identity keys of every live object."""
        return [
            IdentityKey(mapper.class_, ident if isinstance(ident, tuple) else (ident,), token)
            for mapper, ident, token, _obj in self._live()
        ]

    def values(self) -> list[object]:
        """Every live object in the map."""
        return [obj for _mapper, _ident, _token, obj in self._live()]

    def __repr__(self) -> str:
        return f"<IdentityMap of {len(self)} object(s)>"


# at the end: ``_state`` imports this module, and a bare entry's state is made by it
from typed_session import _state as _states  # noqa: E402
