"""Tracked collections: the ``list`` and ``set`` a one-to-many or many-to-many attribute holds.

They are subclasses of the built-in types, so ``parent.children`` is the ``list[Child]``
the annotation says (``isinstance``, slicing, ``==`` with a plain list all work), and
every method that changes membership reports each object joining or leaving to the
relationship's hooks: the other side is kept in sync, the change is recorded for the
flush, and cascades follow. Reordering (``sort``, ``reverse``) changes no membership and
reports nothing. A collection filled by a load reports nothing either.

The owner is held weakly: the collection lives in the owner's ``__dict__``, and a strong
reference back would make every loaded parent a reference cycle for the garbage collector.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import Any, Protocol, Self, SupportsIndex, TypeVar, overload

__all__ = ["CollectionHooks", "TrackedList", "TrackedSet", "loaded_collection"]

_T = TypeVar("_T")


class CollectionHooks(Protocol):
    """What a collection reports to: the relationship attribute it belongs to."""

    def check(self, item: object, /) -> None:
        """Refuse an object the collection cannot hold (before it changes)."""
        ...

    def appended(self, owner: object, item: object, /) -> None:
        """An object joined the owner's collection."""
        ...

    def removed(self, owner: object, item: object, /) -> None:
        """An object left the owner's collection."""
        ...


class _Tracked:
    """The link from a collection to its owner and its relationship attribute."""

    __slots__ = ()

    _owner: Callable[[], object | None]
    _hooks: CollectionHooks

    def _check(self, items: Iterable[object]) -> None:
        check = self._hooks.check
        for item in items:
            check(item)

    def _added(self, items: Iterable[object]) -> None:
        owner = self._owner()
        if owner is not None:
            for item in items:
                self._hooks.appended(owner, item)

    def _gone(self, items: Iterable[object]) -> None:
        owner = self._owner()
        if owner is not None:
            for item in items:
                self._hooks.removed(owner, item)


class TrackedList(list[_T], _Tracked):
    """A ``list`` that reports objects appended to and removed from it."""

    __slots__ = ("_hooks", "_owner")

    def __init__(self, owner: object, hooks: CollectionHooks, items: Iterable[_T] = ()) -> None:
        super().__init__(items)
        self._owner, self._hooks = weakref.ref(owner), hooks

    def __reduce__(self) -> tuple[type[list[_T]], tuple[list[_T]]]:
        return (list, (list(self),))  # a copy is a plain list, not a second tracked one

    def append(self, item: _T, /) -> None:
        self._hooks.check(item)
        super().append(item)
        self._added((item,))

    def extend(self, items: Iterable[_T], /) -> None:
        new = list(items)
        self._check(new)
        super().extend(new)
        self._added(new)

    def insert(self, index: SupportsIndex, item: _T, /) -> None:
        self._hooks.check(item)
        super().insert(index, item)
        self._added((item,))

    def remove(self, item: _T, /) -> None:
        super().remove(item)
        self._gone((item,))

    def pop(self, index: SupportsIndex = -1, /) -> _T:
        item = super().pop(index)
        self._gone((item,))
        return item

    def clear(self) -> None:
        old = list(self)
        super().clear()
        self._gone(old)

    def __iadd__(self, items: Iterable[_T]) -> Self:  # type: ignore[override,misc]  # as list's
        self.extend(items)
        return self

    def __imul__(self, n: SupportsIndex) -> Self:
        raise TypeError("a relationship collection cannot be multiplied in place")

    @overload
    def __setitem__(self, index: SupportsIndex, item: _T, /) -> None: ...

    @overload
    def __setitem__(self, index: slice, items: Iterable[_T], /) -> None: ...

    def __setitem__(self, index: SupportsIndex | slice, item: Any, /) -> None:
        if isinstance(index, slice):
            old = self[index]
            new = list(item)
            self._check(new)
            super().__setitem__(index, new)
            self._gone(old)
            self._added(new)
        else:
            self._hooks.check(item)
            previous = self[index]
            super().__setitem__(index, item)
            self._gone((previous,))
            self._added((item,))

    def __delitem__(self, index: SupportsIndex | slice, /) -> None:
        old = self[index] if isinstance(index, slice) else [self[index]]
        super().__delitem__(index)
        self._gone(old)


class TrackedSet(set[_T], _Tracked):
    """A ``set`` that reports objects added to and removed from it."""

    __slots__ = ("_hooks", "_owner")

    def __init__(self, owner: object, hooks: CollectionHooks, items: Iterable[_T] = ()) -> None:
        super().__init__(items)
        self._owner, self._hooks = weakref.ref(owner), hooks

    def __reduce__(self) -> tuple[type[set[_T]], tuple[list[_T]]]:
        return (set, (list(self),))

    def add(self, item: _T, /) -> None:
        self._hooks.check(item)
        if item not in self:
            super().add(item)
            self._added((item,))

    def discard(self, item: object, /) -> None:
        if item in self:
            super().discard(item)
            self._gone((item,))

    def remove(self, item: _T, /) -> None:
        super().remove(item)
        self._gone((item,))

    def pop(self) -> _T:
        item = super().pop()
        self._gone((item,))
        return item

    def clear(self) -> None:
        old = list(self)
        super().clear()
        self._gone(old)

    def update(self, *others: Iterable[_T]) -> None:
        items = [item for other in others for item in other]
        self._check(items)
        for item in items:
            self.add(item)

    def difference_update(self, *others: Iterable[Any]) -> None:
        for other in others:
            for item in other:
                self.discard(item)

    def intersection_update(self, *others: Iterable[Any]) -> None:
        keep = set(self).intersection(*others)
        for item in [i for i in self if i not in keep]:
            self.discard(item)

    def symmetric_difference_update(self, other: Iterable[_T], /) -> None:
        items = set(other)
        self._check(items)
        for item in items:
            if item in self:
                self.discard(item)
            else:
                self.add(item)

    def __ior__(self, other: AbstractSet[_T]) -> Self:  # type: ignore[override,misc]  # set's returns set[_T | _S]
        self.update(other)
        return self

    def __iand__(self, other: AbstractSet[object]) -> Self:
        self.intersection_update(other)
        return self

    def __isub__(self, other: AbstractSet[object]) -> Self:
        self.difference_update(other)
        return self

    def __ixor__(self, other: AbstractSet[_T]) -> Self:  # type: ignore[override,misc]  # set's returns set[_T | _S]
        self.symmetric_difference_update(other)
        return self


def loaded_collection(
    kind: type[list[Any]] | type[set[Any]],
    owner: object,
    hooks: CollectionHooks,
    items: Iterable[Any],
) -> TrackedList[Any] | TrackedSet[Any]:
    """A tracked collection filled without reporting (what a load or a new object starts with)."""
    if kind is set:
        return TrackedSet(owner, hooks, items)
    return TrackedList(owner, hooks, items)
