"""What a flush needs from the database before it can plan: the seed's loads, in one place.

Objects to update or delete whose primary key is expired are loaded first (they keep
their values, and a row gone meanwhile is found before any write). A pending object
whose key a fully expired persistent object holds gets that object's row checked: if it
is gone, the old object becomes deleted and the new one takes the key (the seed's
``was_already_deleted``). The loading goes through the callable the session passes in,
so this module sends no SQL itself and knows no session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from typed_session import _lifecycle as lifecycle
from typed_session._dependency import Dependencies
from typed_session._state import InstanceState, instance_state
from typed_session._unitofwork import BindFor, FlushPlan, plan_flush
from typed_session.exc import FlushError, ObjectDeletedError

__all__ = ["load_expired_keys", "plan_with_rows_checked"]

Load = Callable[[InstanceState[Any]], None]


def load_expired_keys(objects: lifecycle.SessionObjects, load: Load) -> None:
    """Load the objects to update or delete whose primary key (or version) is expired.

    Raises:
        ObjectDeletedError: if one's row is gone.
    """
    for state in [*objects.deleted, *objects.identity_map.modified]:
        expired = state.expired
        if expired and (
            not expired.isdisjoint(state.mapper.pk_keys) or state.mapper.version_key in expired
        ):
            load(state)  # an expired version too: the WHERE checks it
        elif expired and state in objects.deleted and state.mapper.relationship_keys:
            load(state)  # its foreign keys order the deletes of a self-referential table


def plan_with_rows_checked(
    objects: lifecycle.SessionObjects,
    bind_for: BindFor,
    load: Load,
    records: Callable[[], lifecycle.TransactionRecords],
    dependencies: Dependencies | None = None,
) -> FlushPlan:
    """Plan the flush; a key conflict with a fully expired object checks its row first.

    Raises:
        FlushError: for a conflict with a row that exists, or any refusal of the planner.
    """
    while True:
        try:
            return plan_flush(
                objects.new,  # in the order the objects were added
                list(objects.identity_map.modified),
                objects.deleted,
                identity_map=objects.identity_map,
                bind_for=bind_for,
                dependencies=dependencies,
            )
        except FlushError as conflict:
            existing = conflict.existing
            state = None if existing is None else instance_state(existing)
            if state is None or not lifecycle.fully_expired(state):
                raise
            try:
                load(state)
            except ObjectDeletedError:
                lifecycle.to_deleted(objects, records(), [state])
                continue
            raise conflict from None
