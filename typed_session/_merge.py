"""``merge``: copy the state of an object into the session's object of the same identity.

The seed's rules: the session's own object for the identity is found in the identity map,
else (``load=True``) loaded from the database, else made new (pending); the given
object's loaded attributes are copied onto it, and its relationships cascading ``merge``
are merged the same way, each object once (the memo). The given object is never
attached; the session's copy is returned. With ``load=False`` nothing is loaded and no
SQL is sent: the copy becomes persistent as it is, which only makes sense for an object
whose state is what the database holds, so a transient or modified object is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import InvalidRequestError

from typed_session import _lifecycle as lifecycle
from typed_session._collections import loaded_collection
from typed_session._identity import IdentityMap
from typed_session._mapping.mapper import Mapper, mapper_of_instance
from typed_session._related import hooks_for
from typed_session._state import instance_state
from typed_session.exc import StaleDataError, describe

__all__ = ["MergeMethods", "merge_into"]

_O = TypeVar("_O")

Get = Callable[[Mapper[Any], Any], object | None]
"""Load the object of an identity (the session's ``get``)."""
Add = Callable[[object], None]
"""Attach an object to the session (its ``add``)."""


def merge_into(
    instance: _O,
    *,
    identity_map: IdentityMap,
    get: Get,
    add: Add,
    load: bool,
    memo: dict[int, object] | None = None,
) -> _O:
    """Merge ``instance`` (see the module docstring) and return the session's copy.

    Raises:
        InvalidRequestError: with ``load=False``, for a transient or modified object.
    """
    memo = {} if memo is None else memo
    done = memo.get(id(instance))
    if done is not None:
        return done  # type: ignore[return-value]  # the memo holds what this merged to
    mapper = mapper_of_instance(instance)
    state = instance_state(instance)
    d = instance.__dict__
    if not load:
        _check_mergeable_without_load(state.identity is None, state.modified)
    ident = state.identity if state.identity is not None else mapper.identity_of(d)
    if isinstance(ident, tuple) and None in ident:
        ident = None
    merged: Any = None
    if ident is not None:
        existing = identity_map.lookup(mapper, ident)
        merged = None if existing is None else existing.obj()
        if merged is None and load:
            merged = get(mapper, ident)
    if merged is not None and mapper.version_key is not None:
        _check_version(mapper.version_key, instance, merged)
    fresh = merged is None
    if merged is None:
        merged = mapper.class_.__new__(mapper.class_)
        if not load:
            assert ident is not None
            lifecycle.to_detached_from_transient(instance_state(merged), ident)
    memo[id(instance)] = merged
    if merged is instance:
        return instance
    md = merged.__dict__
    for key in mapper.column_keys:
        if key in d:
            if load:
                if md.get(key, _ABSENT) is not d[key]:
                    setattr(merged, key, d[key])
            else:
                md[key] = d[key]
    if fresh:
        if not load:
            lifecycle.mark_loaded_keys(instance_state(merged), frozenset(md))
        add(merged)
    _merge_relationships(mapper, instance, merged, identity_map, get, add, load, memo)
    return merged  # type: ignore[no-any-return]  # an object of instance's class


_ABSENT = object()


def _merge_relationships(
    mapper: Mapper[Any],
    instance: object,
    merged: object,
    identity_map: IdentityMap,
    get: Get,
    add: Add,
    load: bool,  # noqa: FBT001
    memo: dict[int, object],
) -> None:
    if not mapper.relationship_keys:
        return
    d = instance.__dict__
    for rel in mapper.relationships.values():
        if not rel.cascade.merge or rel.key not in d:
            continue

        def one(obj: object) -> object:
            return merge_into(
                obj, identity_map=identity_map, get=get, add=add, load=load, memo=memo
            )

        value = d[rel.key]
        if rel.collection_class is not None:
            assert isinstance(value, list | set)
            items = [one(x) for x in value]
            if load:
                setattr(merged, rel.key, rel.collection_class(items))
            else:
                merged.__dict__[rel.key] = loaded_collection(
                    rel.collection_class, merged, hooks_for(rel), items
                )
        else:
            target = None if value is None else one(value)
            if load:
                setattr(merged, rel.key, target)
            else:
                merged.__dict__[rel.key] = target


def _check_version(key: str, given: object, merged: object) -> None:
    """Refuse to merge a versioned object whose version is not the row's.

    Raises:
        StaleDataError: naming both versions; an unset version skips the check.
    """
    mine = given.__dict__.get(key)
    if mine is None:
        return
    current = getattr(merged, key)
    if mine != current:
        raise StaleDataError(
            f"Version id '{mine}' on merged state {describe(given)} does not match existing "
            f"version '{current}'. Leave the version attribute unset when merging to skip "
            "the version check, or reload the object and apply the changes again",
            instance=given,
            expected_version=mine,
        )


def _check_mergeable_without_load(transient: bool, modified: bool) -> None:  # noqa: FBT001
    if transient:
        raise InvalidRequestError(
            "merge() with load=False option does not support objects transient (i.e. "
            "unpersisted) objects.  flush() all changes on mapped instances before merging "
            "with load=False."
        )
    if modified:
        raise InvalidRequestError(
            "merge() with load=False option does not support objects marked as 'dirty'.  "
            "flush() all changes on mapped instances before merging with load=False."
        )


class MergeMethods:
    """``merge`` and ``merge_all``, as the session offers them (a base of ``Session``)."""

    __slots__ = ()

    if TYPE_CHECKING:
        _identity_map: IdentityMap
        _transaction: object | None

        def _autobegin(self) -> object: ...

        def get(self, entity: type[_O], ident: object, /) -> _O | None:
            """The session's ``get``."""

        def add(self, instance: object) -> None:
            """The session's ``add``."""

    def merge(self, instance: _O, *, load: bool = True) -> _O:
        """Copy an object's state into this session's object of the same identity.

        That object is found in the identity map, else loaded (``load=True``), else made
        new; the given object is not attached. Relationships cascading ``merge`` are
        merged too. Returns the session's object, of the given object's type.

        Raises:
            InvalidRequestError: with ``load=False``, for a transient or modified object.
        """
        return self.merge_all([instance], load=load)[0]

    def merge_all(self, instances: Iterable[_O], *, load: bool = True) -> list[_O]:
        """``merge`` each object (shared objects merged once); the session's copies, in order."""
        if self._transaction is None:
            self._autobegin()
        memo: dict[int, object] = {}
        return [
            merge_into(
                obj,
                identity_map=self._identity_map,
                get=self._merge_get,
                add=self.add,
                load=load,
                memo=memo,
            )
            for obj in instances
        ]

    def _merge_get(self, mapper: Mapper[Any], ident: Any) -> object | None:
        return self.get(mapper.class_, ident)
