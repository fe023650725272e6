"""``expire`` / ``refresh`` / ``is_modified``: what the session offers to reload objects.

Kept apart from the facade (``RefreshMethods`` is a base of ``Session``) because it is
one topic: discarding loaded values, loading them again, and telling whether an object
has changes to write. ``expire`` and ``refresh`` of a whole object follow the
relationships cascading ``refresh-expire``, as the seed's ``_expire_state`` does: a
related persistent object is expired too, a related pending one leaves the session.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from typed_session import _cascade as cascade
from typed_session import _lifecycle as lifecycle
from typed_session import _loaders as loaders
from typed_session import _loading as loading
from typed_session._loading import ForUpdate
from typed_session._state import InstanceState, instance_state
from typed_session._typing import IdentityToken
from typed_session.exc import ObjectDeletedError, ObjectStateError, describe

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from typed_session._identity import IdentityMap
    from typed_session._mapping.mapper import Mapper

__all__ = ["RefreshMethods"]


class RefreshMethods:
    """What the session offers to expire and reload objects; see the module docstring."""

    __slots__ = ()

    if TYPE_CHECKING:
        _identity_map: IdentityMap
        _objects: lifecycle.SessionObjects

        def _autoflush(self) -> None: ...

        def _connection_for_mapper(
            self, mapper: Mapper[Any], token: IdentityToken = None
        ) -> Connection: ...

        def expunge(self, instance: object) -> None:
            """Remove an object from the session (the session's)."""

    def expire(self, instance: object, attribute_names: Iterable[str] | None = None) -> None:
        """Discard loaded values of an object so that the next read reloads them.

        Without names, every attribute is expired and the ``refresh-expire`` cascade is
        followed; relationship names expire the relationship (reloaded on access).

        Raises:
            ObjectStateError: if the object is not persistent in this session.
            AttributeError: if a name is not a mapped attribute.
        """
        state = self._persistent_state(instance, "expire")
        if attribute_names is None:
            self._expire_cascading(state, instance)
            return
        keys = list(attribute_names)
        mapper = state.mapper
        unknown = [k for k in keys if k not in mapper.columns and k not in mapper.relationship_keys]
        if unknown:
            raise AttributeError(
                f"{type(instance).__name__} has no mapped attribute(s) {unknown}; its "
                f"mapped attributes are {[*mapper.column_keys, *sorted(mapper.relationship_keys)]}"
            )
        lifecycle.expire(state, instance.__dict__, keys)

    def _expire_cascading(self, state: InstanceState[Any], instance: object) -> None:
        """Expire the object, and what its ``refresh-expire`` relationships reach."""
        reached = (
            list(cascade.cascade_iterator(instance, "refresh_expire"))
            if state.mapper.relationship_keys
            else []
        )
        lifecycle.expire(state, instance.__dict__)
        for related in reached:
            rstate = instance_state(related)
            if rstate.identity_map is not self._identity_map:
                continue
            if rstate.identity is not None and not rstate.deleted:
                lifecycle.expire(rstate, related.__dict__)
            elif rstate.identity is None:
                self.expunge(related)

    def is_modified(self, instance: object, include_collections: bool = True) -> bool:  # noqa: FBT001, FBT002
        """Whether the object has changes a flush would write (a net change, not a write).

        An attribute set back to its loaded value is no change; a pending object's set
        attributes are. A many-to-one changed is a change; with ``include_collections``
        (the default) so is an object appended to or removed from a collection.
        """
        state = instance_state(instance)
        d = instance.__dict__
        mapper = state.mapper
        if state.identity is None:
            return any(key in d for key in mapper.column_keys) or any(
                key in d for key in mapper.relationship_keys
            )
        if state.changes(d):
            return True
        for key, change in (state.related or {}).items():
            if not (change.added or change.removed):
                continue
            if include_collections or mapper.relationships[key].collection_class is None:
                return True
        return False

    def expire_all(self) -> None:
        """Expire every persistent object of the session."""
        lifecycle.expire_all(self._objects)

    def refresh(
        self,
        instance: object,
        attribute_names: Iterable[str] | None = None,
        with_for_update: ForUpdate = None,
    ) -> None:
        """Reload attributes of a persistent object (all, or those named) from the database.

        Its own unflushed changes to them are discarded; other objects' are flushed
        first. ``with_for_update`` (``True`` or ``with_for_update()``'s keywords) locks the
        row where the backend has ``FOR UPDATE``. A relationship named is loaded again
        at once; without names, relationships load again on access.

        Raises:
            ObjectStateError: if the object is not persistent in this session.
            AttributeError: if a name is not a mapped attribute.
            ObjectDeletedError: if its row is gone ("Could not refresh instance").
        """
        state = self._persistent_state(instance, "refresh")
        names = None if attribute_names is None else list(attribute_names)
        self.expire(instance, names)  # its own changes to them are discarded
        try:
            loading.require_identity(state)
            self._autoflush()  # the others' changes
            connection = self._connection_for_mapper(state.mapper, state.identity_token)
            loading.load_expired(state, connection, with_for_update)
        except ObjectDeletedError as gone:
            raise ObjectDeletedError(
                instance,
                message=f"Could not refresh instance {describe(instance)}: its row is gone "
                "(deleted, or its key changed, outside this session). Expunge it with "
                "session.expunge(obj)",
            ) from gone
        for key in names or ():
            if key in state.mapper.relationship_keys:
                rel = state.mapper.relationships[key]
                loaders.lazy_load(state, rel, self._connection_for_mapper)

    def _persistent_state(self, instance: object, verb: str) -> InstanceState[Any]:
        state = instance_state(instance)
        if state.identity is None or state.deleted or state.identity_map is not self._identity_map:
            raise ObjectStateError(
                instance,
                f"Instance {describe(instance)} is not persistent within this Session, so "
                f"it cannot {verb} (it is {state.object_state.value}). Add it and flush "
                "first; a deleted object has nothing to load",
            )
        return state
