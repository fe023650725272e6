"""What can be asked of, or done to, one object outside the session's methods.

The seed's module-level functions: ``object_session``, ``make_transient`` and
``make_transient_to_detached``. They sit above the session (they name its type) and
move objects only through ``lifecycle``.
"""

from __future__ import annotations

from typed_session import _lifecycle as lifecycle
from typed_session._session import Session
from typed_session._state import instance_state
from typed_session.exc import ObjectStateError, describe

__all__ = ["make_transient", "make_transient_to_detached", "object_session"]


def make_transient(instance: object) -> None:
    """Turn an object back into a transient one: no session, no identity, no history.

    Loaded attribute values stay; expired ones are forgotten (reading them then raises
    ``UnsetAttributeError``). Adding the object afterwards INSERTs it as a new row, which
    is the way to re-insert an object whose row was deleted.

    Raises:
        UnmappedInstanceError: if the object is not an entity instance.
    """
    state = instance_state(instance)
    owner = state.owner
    lifecycle.to_transient(None if owner is None else owner.objects, state)


def make_transient_to_detached(instance: object) -> None:
    """Make a transient object detached, as if loaded and then expunged.

    Its primary-key values must be set; the attributes it does not hold are expired, so
    that they load when it is added to a session.

    Raises:
        UnmappedInstanceError: if the object is not an entity instance.
        ObjectStateError: if the object is not transient, or has no full primary key.
    """
    state = instance_state(instance)
    if state.session is not None or state.identity is not None:
        raise ObjectStateError(
            instance,
            f"Given object must be transient: {describe(instance)} is "
            f"{state.object_state.value}; call make_transient(obj) first",
        )
    mapper = state.mapper
    d = instance.__dict__
    ident = mapper.identity_of(d)
    if ident is None:
        raise ObjectStateError(
            instance,
            f"{describe(instance)} has no complete primary key {mapper.pk_keys}; set it "
            "before calling make_transient_to_detached(obj)",
        )
    lifecycle.to_detached_from_transient(state, ident)


def object_session(instance: object) -> Session | None:
    """The session an object belongs to, or ``None``.

    Raises:
        UnmappedInstanceError: if the object is not an entity instance.
    """
    session = instance_state(instance).session
    return session if isinstance(session, Session) else None
