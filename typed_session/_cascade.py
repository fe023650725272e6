"""Which related objects an operation on one object reaches, by the relationships' cascades.

``session.add``, ``delete``, ``expunge``, ``refresh`` and ``expire`` (and ``merge``)
follow the relationships whose ``cascade=`` names them, transitively, each object once.
This module only walks: it says which objects are reached and leaves the operation to
the session. Values not loaded are not loaded (an object that was never loaded cannot
have pending changes to cascade), except where ``load`` is given: the ``delete``
cascade must find every child, so it loads unloaded relationships through the owner,
unless ``passive_deletes`` leaves the children to the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

from typed_session._mapping.mapper import mapper_of_instance
from typed_session._mapping.relationships import Relationship
from typed_session._state import InstanceState, state_in

__all__ = ["CascadeName", "cascade_iterator"]

CascadeName = Literal["save_update", "merge", "expunge", "delete", "refresh_expire"]

Load = Callable[[InstanceState[Any], Relationship], object]


def _values(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, list | set):
        return list(value)
    return [value]


def cascade_iterator(
    obj: object,
    name: CascadeName,
    *,
    load: Load | None = None,
    halt: Callable[[object], bool] | None = None,
) -> Iterator[object]:
    """The objects reached from ``obj`` through relationships cascading ``name``.

    ``obj`` itself is not yielded; every other object at most once, parents before
    the objects reached through them. An object for which ``halt`` is true is neither
    yielded nor walked through.
    """
    seen = {id(obj)}
    stack = [obj]
    while stack:
        current = stack.pop()
        mapper = mapper_of_instance(current)
        if not mapper.relationship_keys:
            continue
        d = current.__dict__
        for rel in mapper.relationships.values():
            if not getattr(rel.cascade, name):
                continue
            if rel.key in d:
                value = d[rel.key]
            elif load is not None and not (name == "delete" and rel.passive_deletes):
                state = state_in(current, d)
                if state is None or state.identity is None:
                    continue
                value = load(state, rel)
            else:
                continue
            for related in _values(value):
                if id(related) not in seen:
                    seen.add(id(related))
                    if halt is not None and halt(related):
                        continue
                    yield related
                    stack.append(related)
