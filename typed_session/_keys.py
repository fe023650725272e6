"""``identity_key()``: the identity key of a row, in the seed's three call forms.

* ``identity_key(User, 5)`` (or a tuple / mapping for a composite key), with an optional
  ``identity_token``;
* ``identity_key(instance=user)``: the key the object has, or would have from its
  primary-key values;
* ``identity_key(User, row=row)``: the key of a row that holds the entity's key columns.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, TypeVar, overload

from sqlalchemy import Row
from sqlalchemy.exc import InvalidRequestError

from typed_session._identity import IdentityKey
from typed_session._mapping.mapper import mapper_of
from typed_session._state import instance_state
from typed_session._typing import MISSING

__all__ = ["identity_key"]

_O = TypeVar("_O")


@overload
def identity_key(
    class_: type[_O], ident: object, /, *, identity_token: Hashable = None
) -> IdentityKey[_O]: ...


@overload
def identity_key(*, instance: _O) -> IdentityKey[_O]: ...


@overload
def identity_key(
    class_: type[_O], /, *, row: Row[*tuple[Any, ...]], identity_token: Hashable = None
) -> IdentityKey[_O]: ...


def identity_key(
    class_: type[Any] | None = None,
    ident: object = MISSING,
    /,
    *,
    instance: object = None,
    row: Row[*tuple[Any, ...]] | None = None,
    identity_token: Hashable = None,
) -> IdentityKey[Any]:
    """The identity key of a row, from a key value, an object, or a result row.

    Raises:
        UnmappedClassError / UnmappedInstanceError: for a class or object not mapped.
        InvalidRequestError: if the arguments match none of the three forms, the key
            does not fit the primary key, or the object has no complete key yet.
    """
    if instance is not None and class_ is None and row is None and ident is MISSING:
        state = instance_state(instance)
        key = state.key
        if key is not None:
            return key
        values = state.mapper.identity_of(instance.__dict__)
        if values is None:
            raise InvalidRequestError(
                f"{type(instance).__name__} object has no complete primary key "
                f"{state.mapper.pk_keys} yet: assign it, or flush to have it generated"
            )
        pk = values if isinstance(values, tuple) else (values,)
        return IdentityKey(state.mapper.class_, pk, state.identity_token)
    if class_ is not None and instance is None:
        mapper = mapper_of(class_)
        if row is not None and ident is MISSING:
            mapping = row._mapping
            return IdentityKey(
                class_, tuple(mapping[a.column] for a in mapper.primary_key), identity_token
            )
        if row is None and ident is not MISSING:
            normal = mapper.normalize_identity(ident)
            pk = normal if isinstance(normal, tuple) else (normal,)
            return IdentityKey(class_, pk, identity_token)
    raise InvalidRequestError(
        "identity_key() takes (class, ident), (class, row=row) or (instance=obj); "
        f"got class={class_!r}, ident given: {ident is not MISSING}, "
        f"instance={instance!r}, row={row!r}"
    )
