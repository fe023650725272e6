"""What a session shows of its objects: ``new``, ``dirty``, ``deleted``, membership.

Read-only views over the session's ``SessionObjects``, kept apart from ``_session.py``
so that the facade holds behaviour; ``Session`` inherits them.
"""

from __future__ import annotations

from collections.abc import Iterator

from typed_session._identity import IdentityMap
from typed_session._lifecycle import SessionObjects
from typed_session._state import instance_state

__all__ = ["ObjectViews"]


class ObjectViews:
    """The session's views of its objects (``Session`` provides ``_objects``)."""

    __slots__ = ()
    _objects: SessionObjects

    @property
    def identity_map(self) -> IdentityMap:
        """The persistent objects of the session, by identity key."""
        return self._objects.identity_map

    @property
    def new(self) -> list[object]:
        """Pending objects: added, not inserted yet."""
        return list(self._objects.new.values())

    @property
    def deleted(self) -> list[object]:
        """Objects marked for deletion, not deleted yet."""
        return list(self._objects.deleted.values())

    @property
    def dirty(self) -> list[object]:
        """Persistent objects with attributes written since the last flush."""
        out: list[object] = []
        for state in self._objects.identity_map.modified:
            obj = state.obj()
            if obj is not None and state not in self._objects.deleted:
                out.append(obj)
        return out

    def __contains__(self, instance: object) -> bool:
        return self._objects.owns(instance_state(instance))

    def __iter__(self) -> Iterator[object]:
        return iter([*self._objects.new.values(), *self._objects.identity_map.values()])
